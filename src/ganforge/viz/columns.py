"""Grids of image columns with a header above each column (input | output | reconstruction ...)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from . import grid_image, save_image_atomic

HEADER_HEIGHT = 14  # pixels of the header strip (PIL's default bitmap font is 11 pixels high)


def column_images(columns: list[torch.Tensor], groups: int = 1) -> tuple[torch.Tensor, int]:
    """uint8 columns [N, C_k, H, W] -> (images laid out row by row, images per row): row r holds item r of
    every column, then item r + rows of every column, ... (``groups`` items side by side). Channels are
    made equal (gray repeats into RGB); empty cells are white."""
    c = max(x.shape[1] for x in columns)
    columns = [x.expand(-1, c, -1, -1) if x.shape[1] != c else x for x in columns]
    n = columns[0].shape[0]
    rows = -(-n // groups)
    out = []
    for r in range(rows):
        for g in range(groups):
            i = r + g * rows
            out += [col[i] if i < n else torch.full_like(col[0], 255) for col in columns]
    return torch.stack(out), len(columns) * groups


def column_grid(columns: list[torch.Tensor], headers: list[str] | None = None, groups: int = 1,
                min_width: int = 480) -> Image.Image:
    """A grid of ``columns`` (see :func:`column_images`) with ``headers[k]`` centred above column k of every
    group; upscaled (nearest) to at least ``min_width`` before the headers are drawn, so they stay legible."""
    images, per_row = column_images(columns, groups)
    grid = grid_image(images, nrow=per_row, min_width=min_width)
    if not headers:
        return grid
    cell = images.shape[-1] + 2  # make_grid's padding of 2 pixels
    scale = grid.width / (per_row * cell + 2)
    canvas = Image.new("RGB", (grid.width, grid.height + HEADER_HEIGHT), "white")
    canvas.paste(grid.convert("RGB"), (0, HEADER_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    for j in range(per_row):
        text = headers[j % len(columns)]
        centre = scale * (2 + j * cell + images.shape[-1] / 2)
        width = draw.textlength(text)
        draw.text((max(0, centre - width / 2), 1), text, fill="black")
    return canvas


def save_column_grid(columns: list[torch.Tensor], path: str | Path, headers: list[str] | None = None,
                     groups: int = 1, min_width: int = 480) -> Path:
    """Write :func:`column_grid` to ``path`` as a PNG (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(column_grid(columns, headers, groups, min_width), path)
    return path
