"""Pictures: sample grids, training-progress GIFs, loss curves."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [N, C, H, W] in [-1, 1] -> uint8 [N, C, H, W] (rounded, clamped)."""
    return ((images.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def grid_image(images: torch.Tensor, nrow: int | None = None, min_width: int = 480,
               row_labels: list[str] | None = None) -> Image.Image:
    """A PIL image of uint8 [N, C, H, W] images in a grid, upscaled (nearest) to at least ``min_width``."""
    n = images.shape[0]
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=255 if images.dtype == torch.uint8 else 1.0)
    arr = grid.permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    img = Image.fromarray(np.ascontiguousarray(arr))
    if images.shape[1] == 1:
        img = img.convert("L")
    scale = max(1, math.ceil(min_width / img.width))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if row_labels:
        margin = 8 * max(len(s) for s in row_labels) + 8
        canvas = Image.new("RGB", (img.width + margin, img.height), "white")
        canvas.paste(img.convert("RGB"), (margin, 0))
        draw = ImageDraw.Draw(canvas)
        row_h = img.height / math.ceil(n / nrow)
        for i, label in enumerate(row_labels):
            draw.text((4, int(row_h * (i + 0.5)) - 5), label, fill="black")
        img = canvas
    return img


def paired_grid(A: torch.Tensor, fake: torch.Tensor, B: torch.Tensor | None, groups: int = 1) -> tuple:
    """uint8 images laid out as rows of (input, output[, target]) triplets, ``groups`` triplets per row.

    Returns (images [N * k, C, H, W], images per row) with channels made equal (gray -> RGB)."""
    parts = [A, fake] + ([B] if B is not None else [])
    c = max(p.shape[1] for p in parts)
    parts = [p.expand(-1, c, -1, -1) if p.shape[1] != c else p for p in parts]
    k = len(parts)
    n = A.shape[0]
    rows = -(-n // groups)
    out = []
    for r in range(rows):
        for g in range(groups):
            i = r + g * rows
            for p in parts:
                out.append(p[i] if i < n else torch.full_like(p[0], 255))
    return torch.stack(out), k * groups


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, **kwargs) -> Path:
    """Write uint8 [N, C, H, W] images as a PNG grid (to a temporary file, then renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(grid_image(images, nrow, **kwargs), path)
    return path


def save_image_atomic(image: Image.Image, path: Path) -> None:
    """Save a PIL image so that ``path`` holds either its old content or the whole new file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    image.save(tmp)
    os.replace(tmp, path)


def save_gif(frames: list[Path], path: str | Path, duration_ms: int = 200, captions: list[str] | None = None) -> Path:
    """Animate PNG frames (same size) into a looping GIF; the last frame is held longer."""
    path = Path(path)
    images = []
    for i, f in enumerate(frames):
        with Image.open(f) as im:
            frame = im.convert("RGB")
        if captions:
            draw = ImageDraw.Draw(frame)
            draw.rectangle([0, 0, 8 * len(captions[i]) + 8, 14], fill="white")
            draw.text((4, 2), captions[i], fill="black")
        images.append(frame.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    if not images:
        raise ValueError("no frames to animate")
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 5]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a killed process
    return rows


def plot_losses(metrics_path: str | Path, out: str | Path, title: str = "") -> Path | None:
    """Plot every loss_* (and D_real / D_fake) column of metrics.jsonl against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in read_metrics(metrics_path) if "step" in r]
    if not rows:
        return None
    keys = sorted({k for r in rows for k in r if k.startswith("loss_")})
    probs = [k for k in ("D_real", "D_fake") if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, 2 if probs else 1, figsize=(11 if probs else 6, 4), squeeze=False)
    for k in keys:
        pts = [(r["step"], r[k]) for r in rows if k in r]
        axes[0, 0].plot(*zip(*pts, strict=True), label=k)
    axes[0, 0].set_xlabel("step")
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].legend()
    axes[0, 0].grid(alpha=0.3)
    if probs:
        for k in probs:
            pts = [(r["step"], r[k]) for r in rows if k in r]
            axes[0, 1].plot(*zip(*pts, strict=True), label=k)
        axes[0, 1].set_xlabel("step")
        axes[0, 1].set_ylabel("discriminator output")
        axes[0, 1].legend()
        axes[0, 1].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
