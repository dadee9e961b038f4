"""Drawing for the latent-space tools: labelled image grids, animation frames and GIFs, the arithmetic
figure. Everything takes plain uint8 tensors [.., C, H, W], strings and lists; nothing here knows a model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..io import write_atomic
from . import grid_image


def font(size: int):
    """Pillow's default font at ``size`` pixels (the fixed bitmap font where Pillow has no FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def text_width(draw: ImageDraw.ImageDraw, text: str, face) -> float:
    return draw.textlength(text, font=face)


def grid_picture(images: torch.Tensor, row_labels: Sequence[str] | None = None,
                 col_labels: Sequence[str] | None = None, right_labels: Sequence[str] | None = None,
                 title: str | None = None, cell: int = 64) -> Image.Image:
    """uint8 [R, K, C, H, W] -> a PIL grid (rows x columns), each image upscaled (nearest) to about ``cell``
    pixels, with optional labels left of the rows, above the columns, right of the rows and a title."""
    R, K, C, H, W = images.shape
    grid = grid_image(images.reshape(R * K, C, H, W), nrow=K, min_width=max(480, K * max(cell, W + 2) + 2))
    scale = grid.width / (K * (W + 2) + 2)
    face = font(12)
    draw = ImageDraw.Draw(grid)
    left = int(max((text_width(draw, s, face) for s in row_labels), default=0)) + 10 if row_labels else 0
    right = int(max((text_width(draw, s, face) for s in right_labels), default=0)) + 10 if right_labels else 0
    top = (18 if col_labels else 0) + (20 if title else 0)
    canvas = Image.new("RGB", (grid.width + left + right, grid.height + top + 2), "white")
    canvas.paste(grid.convert("RGB"), (left, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((6, 3), title, fill="black", font=font(14))
    for i, label in enumerate(row_labels or []):
        y = top + scale * (2 + i * (H + 2) + H / 2)
        draw.text((4, y), label, fill="black", font=face, anchor="lm")
    for i, label in enumerate(right_labels or []):
        y = top + scale * (2 + i * (H + 2) + H / 2)
        draw.text((left + grid.width + 4, y), label, fill="black", font=face, anchor="lm")
    for j, label in enumerate(col_labels or []):
        if label:
            half = text_width(draw, label, face) / 2
            x = min(max(left + scale * (2 + j * (W + 2) + W / 2), half + 2), canvas.width - half - 2)
            draw.text((x, top - 3), label, fill="black", font=face, anchor="ms")
    return canvas


def tile(image: torch.Tensor, scale: int) -> Image.Image:
    """One uint8 image [C, H, W] as an RGB PIL image, upscaled ``scale`` times (nearest)."""
    arr = image.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).convert("RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def gif_frames(images: torch.Tensor, captions: list[str], cell: int = 160) -> list[Image.Image]:
    """uint8 [R, T, C, H, W] -> T frames, each the R images of one step side by side under a caption."""
    R, T, C, H, W = images.shape
    frames = []
    face = font(12)
    for t in range(T):
        g = grid_image(images[:, t], nrow=R, min_width=max(240, R * cell)).convert("RGB")
        frame = Image.new("RGB", (g.width, g.height + 18), "white")
        frame.paste(g, (0, 18))
        ImageDraw.Draw(frame).text((4, 3), captions[t], fill="black", font=face)
        frames.append(frame)
    return frames


def save_frames_gif(frames: list[Image.Image], path: str | Path, durations: list[int]) -> Path:
    """Write PIL frames (same size) as a looping GIF with per-frame durations (ms), atomically."""
    quantized = [f.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT) for f in frames]
    return write_atomic(path, lambda tmp: quantized[0].save(tmp, save_all=True, append_images=quantized[1:],
                                                            duration=durations, loop=0))


def _operator(name: str, weight: float, first: bool) -> str:
    """The sign drawn before a block: "=" before the result, else -/+ (none first) and a weight if not 1."""
    if name == "result":
        return "="
    sign = "-" if weight < 0 else ("+" if not first else "")
    return sign + ("" if abs(weight) == 1 else f"{abs(weight):g}x")


def arithmetic_picture(terms: list[tuple[float, str]], images: dict[str, torch.Tensor], expression: str,
                       variants: int, noise: float) -> Image.Image:
    """The figure of latent arithmetic from uint8 images [M, C, H, W]: ``images[name]`` (a group's
    samples), ``images[name + ".mean"]`` (its mean latent's image) and ``images["result"]`` (G(result),
    then the noisy variants).

    One column block per group (samples, then the image of the mean latent on the bottom row), operator
    signs between the blocks on the bottom row, and the result block (noisy variants, then the result)."""
    W = images["result"].shape[-1]
    scale = max(1, math.ceil(72 / W))
    cell, pad, gap, max_rows = W * scale, 4, 44, 6
    weights: dict[str, float] = {}
    for w, n in terms:
        weights[n] = weights.get(n, 0.0) + w
    blocks = [(n, images[n], images[f"{n}.mean"][0]) for n in weights]
    blocks.append(("result", images["result"][1:], images["result"][0]))
    rows_above = max(min(max_rows, len(top)) for _, top, _ in blocks)
    top_y = 24 + 18
    bottom_y = top_y + rows_above * (cell + pad) + (12 if rows_above else 0)
    widths = [max(1, math.ceil(len(top) / max_rows)) * (cell + pad) - pad for _, top, _ in blocks]
    ops = [_operator(name, weights.get(name, 1.0), b == 0) for b, (name, _, _) in enumerate(blocks)]
    face, big = font(12), font(22)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    gaps = [max(gap, int(text_width(measure, op, big)) + 16) for op in ops]
    canvas = Image.new("RGB", (sum(gaps) + sum(widths) + 8, bottom_y + cell + 22), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 4), f"{expression}   (above the result: result + {noise:g} * N(0, I), {variants} variants)",
              fill="black", font=font(14))
    x = 0
    for b, (name, top, bottom) in enumerate(blocks):
        x += gaps[b]
        if ops[b]:
            draw.text((x - gaps[b] / 2, bottom_y + cell / 2), ops[b], fill="black", font=big, anchor="mm")
        cx = x + widths[b] / 2
        head = name if name == "result" else f"{name} ({len(top)})"
        draw.text((cx, top_y - 4), head, fill="black", font=face, anchor="ms")
        for i in range(len(top)):
            col, row = divmod(i, max_rows)
            canvas.paste(tile(top[i], scale), (x + col * (cell + pad), top_y + row * (cell + pad)))
        canvas.paste(tile(bottom, scale), (int(cx - cell / 2), bottom_y))
        draw.text((cx, bottom_y + cell + 4), "result" if name == "result" else f"mean {name}", fill="black",
                  font=face, anchor="mt")
        x += widths[b]
    return canvas


__all__ = ["arithmetic_picture", "font", "gif_frames", "grid_picture", "save_frames_gif", "text_width", "tile"]
