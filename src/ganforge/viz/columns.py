"""Grids of image columns with a header above each column (input | output | reconstruction ...)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
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


def auto_groups(n: int, k: int, height: int = 1, width: int = 1) -> int:
    """How many groups of ``k`` columns side by side make a grid of ``n`` rows of ``height`` x ``width``
    images closest to square (so 64 triplets wrap into a block rather than a tall strip)."""
    return max(1, min(n, round(math.sqrt(n * height / (k * width)))))


def fit_cells(images: list[torch.Tensor], size: tuple[int, int], channels: int) -> torch.Tensor:
    """uint8 images [C, H, W] of any sizes and 1 or 3 channels -> [N, channels, *size]: each scaled to fit
    the cell with its aspect ratio kept (bilinear, antialiased), centred on white; gray repeats into RGB."""
    h, w = size
    out = torch.full((len(images), channels, h, w), 255, dtype=torch.uint8)
    for i, img in enumerate(images):
        x = img.expand(channels, -1, -1) if img.shape[0] != channels else img
        ih, iw = x.shape[-2:]
        scale = min(h / ih, w / iw)
        th, tw = max(1, min(h, round(ih * scale))), max(1, min(w, round(iw * scale)))
        if (th, tw) != (ih, iw):
            x = F.interpolate(x[None].float(), size=(th, tw), mode="bilinear", antialias=True,
                              align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
        top, left = (h - th) // 2, (w - tw) // 2
        out[i, :, top:top + th, left:left + tw] = x
    return out


def column_grid(columns: list[torch.Tensor], headers: list[str] | None = None, groups: int | None = None,
                min_width: int = 480, title: str | None = None) -> Image.Image:
    """A grid of ``columns`` (see :func:`column_images`) with ``headers[k]`` centred above column k of every
    group and an optional ``title`` line above; upscaled (nearest) to at least ``min_width`` before the
    text is drawn, so it stays legible. ``groups`` None: :func:`auto_groups`."""
    if groups is None:
        groups = auto_groups(columns[0].shape[0], len(columns), *columns[0].shape[-2:])
    images, per_row = column_images(columns, groups)
    grid = grid_image(images, nrow=per_row, min_width=min_width)
    if not headers and not title:
        return grid
    top = (HEADER_HEIGHT if headers else 0) + (HEADER_HEIGHT if title else 0)
    canvas = Image.new("RGB", (grid.width, grid.height + top), "white")
    canvas.paste(grid.convert("RGB"), (0, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 1), title, fill="black")
    if headers:
        cell = images.shape[-1] + 2  # make_grid's padding of 2 pixels
        scale = grid.width / (per_row * cell + 2)
        y = top - HEADER_HEIGHT + 1
        for j in range(per_row):
            text = headers[j % len(columns)]
            centre = scale * (2 + j * cell + images.shape[-1] / 2)
            width = draw.textlength(text)
            draw.text((max(0, centre - width / 2), y), text, fill="black")
    return canvas


def save_column_grid(columns: list[torch.Tensor], path: str | Path, headers: list[str] | None = None,
                     groups: int | None = None, min_width: int = 480, title: str | None = None) -> Path:
    """Write :func:`column_grid` to ``path`` as a PNG (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(column_grid(columns, headers, groups, min_width, title), path)
    return path
