"""Super-resolution figures as the SR papers draw them: the methods side by side (bicubic | SRResNet | SRGAN |
original), each panel the whole image with a red box, and under it that box enlarged (nearest neighbour, so
pixels stay pixels).

The box is chosen where the reference image (the original when known, else the last method's output) has
the most detail: the square window of a quarter of the shorter side with the largest sum of absolute
horizontal and vertical differences of its luma (ties: the first, top-left).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import save_image_atomic

PANEL = 256  # width of each whole-image panel (height follows the aspect ratio)
LABEL_HEIGHT = 18
BOX_COLOUR = (220, 30, 30)


def detail_box(image: np.ndarray, side: int | None = None) -> tuple[int, int, int]:
    """(top, left, side) of the most detailed square window of uint8 [H, W, C] (see the module docstring)."""
    h, w = image.shape[:2]
    side = max(1, min(side or max(1, min(h, w) // 4), h, w))
    y = image.astype(np.float64).mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    energy = np.zeros((h, w))
    energy[:, 1:] += np.abs(np.diff(y, axis=1))
    energy[1:, :] += np.abs(np.diff(y, axis=0))
    table = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
    sums = table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), side


def _rgb(image: np.ndarray) -> Image.Image:
    image = image if image.ndim == 3 else image[:, :, None]
    return Image.fromarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)


def _panel(image: np.ndarray, box: tuple[int, int, int], label: str, width: int) -> Image.Image:
    """One column: label, the whole image scaled to ``width`` with the box drawn, the box enlarged to ``width``."""
    im = _rgb(image)
    h, w = image.shape[:2]
    f = width / w
    whole = im.resize((width, max(1, round(h * f))), Image.Resampling.LANCZOS if f < 1 else Image.Resampling.NEAREST)
    top, left, side = box
    draw = ImageDraw.Draw(whole)
    draw.rectangle([left * f, top * f, (left + side) * f - 1, (top + side) * f - 1], outline=BOX_COLOUR, width=2)
    zoom = im.crop((left, top, left + side, top + side)).resize((width, width), Image.Resampling.NEAREST)
    column = Image.new("RGB", (width, LABEL_HEIGHT + whole.height + 4 + width), "white")
    ImageDraw.Draw(column).text((4, 3), label, fill=(0, 0, 0))
    column.paste(whole, (0, LABEL_HEIGHT))
    column.paste(zoom, (0, LABEL_HEIGHT + whole.height + 4))
    return column


def side_by_side(rows: list[list[tuple[str, np.ndarray]]], title: str = "", width: int = PANEL) -> Image.Image:
    """A figure of ``rows``, each a list of (label, uint8 [H, W, C]) of the same size (the methods on one image,
    the reference last); every row gets its own detail box, taken from its last image."""
    columns = []
    for row in rows:
        box = detail_box(row[-1][1])
        columns.append([_panel(image, box, label, width) for label, image in row])
    gap = 6
    n = max(len(c) for c in columns)
    heights = [max(p.height for p in c) for c in columns]
    top = LABEL_HEIGHT if title else 0
    canvas = Image.new("RGB", (n * width + (n - 1) * gap, top + sum(heights) + gap * (len(rows) - 1)), "white")
    if title:
        ImageDraw.Draw(canvas).text((4, 3), title, fill=(0, 0, 0))
    y = top
    for panels, height in zip(columns, heights, strict=True):
        for k, p in enumerate(panels):
            canvas.paste(p, (k * (width + gap), y))
        y += height + gap
    return canvas


def save_side_by_side(rows: list[list[tuple[str, np.ndarray]]], path: str | Path, title: str = "",
                      width: int = PANEL) -> Path:
    """Write :func:`side_by_side` to ``path`` as a PNG (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(side_by_side(rows, title, width), path)
    return path
