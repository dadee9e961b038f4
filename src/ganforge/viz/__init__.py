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
               row_labels: list[str] | None = None, title: str | None = None) -> Image.Image:
    """A PIL image of uint8 [N, C, H, W] images in a grid, upscaled (nearest) to at least ``min_width``,
    with ``row_labels`` left of the rows and a ``title`` line above, when given."""
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
    if title:
        canvas = Image.new("RGB", (img.width, img.height + 15), "white")
        canvas.paste(img.convert("RGB"), (0, 15))
        ImageDraw.Draw(canvas).text((4, 2), title, fill="black")
        img = canvas
    return img


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


CAPTION_HEIGHT = 15  # pixels of the strip above each GIF frame that holds its caption


def save_gif(frames: list[Path], path: str | Path, duration_ms: int = 200, captions: list[str] | None = None) -> Path:
    """Animate PNG frames (same size) into a looping GIF; the last frame is held longer."""
    path = Path(path)
    images = []
    for i, f in enumerate(frames):
        with Image.open(f) as im:
            frame = im.convert("RGB")
        if captions:  # in a strip above the frame, so that it covers no sample and no title
            canvas = Image.new("RGB", (frame.width, frame.height + CAPTION_HEIGHT), "white")
            canvas.paste(frame, (0, CAPTION_HEIGHT))
            ImageDraw.Draw(canvas).text((4, 2), captions[i], fill="black")
            frame = canvas
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


LEGEND_NAMES = {"D_real": "D(x), real", "D_fake": "D(G(z)), fake", "gp": "gradient penalty",
                "eval_fid": "FID (lower is better)", "eval_kid": "KID (lower is better)",
                "eval_is": "IS (higher is better)", "eval_precision": "precision", "eval_recall": "recall",
                "eval_density": "density", "eval_coverage": "coverage"}
EVAL_PLOTTED = ("eval_fid", "eval_kid", "eval_is", "eval_precision", "eval_recall", "eval_density", "eval_coverage")


def health_onsets(rows: list[dict]) -> list[tuple[int, str, str]]:
    """(step, kind, severity) of each finding where it began: the health rows of metrics.jsonl (the doctor's, written
    during training) in which a kind appears that the health row before did not list."""
    onsets, before = [], set()
    for r in rows:
        if isinstance(r.get("health"), list) and "step" in r:
            now = {h.get("kind"): h.get("severity") for h in r["health"] if isinstance(h, dict)}
            onsets += [(int(r["step"]), str(k), str(v)) for k, v in now.items() if k not in before]
            before = set(now)
    return onsets


def plot_losses(metrics_path: str | Path, out: str | Path, title: str = "", score: str = "D output",
                probabilities: bool = True) -> Path | None:
    """Panels of metrics.jsonl against step: every loss_* column; D_real / D_fake (``score`` names them:
    a probability when ``probabilities``, else a critic's score); the gradient penalty (gp) when logged;
    the evaluations made during training (eval_fid, eval_kid ...) when there are any. Few points are
    drawn as markers, so a run with one logged step still shows it. Where the doctor's health rows say that a
    finding began, a dashed vertical line on every panel, labelled with its kind on the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in read_metrics(metrics_path) if "step" in r]
    if not rows:
        return None

    def series(key: str) -> list[tuple[float, float]]:
        return [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]

    losses = sorted({k for r in rows for k in r if k.startswith("loss_")})
    scores = [k for k in ("D_real", "D_fake") if series(k)]
    evals = [k for k in EVAL_PLOTTED if series(k)]
    what = "probability" if probabilities else "score"
    panels = [("loss", losses, "loss")]
    if scores:
        panels.append((f"{score} ({what})", scores, f"{score}: real x and G(z)"))
    if series("gp"):
        panels.append(("gradient penalty", ["gp"], "gradient penalty"))
    if evals:
        panels.append(("evaluation", evals, "measured during training (eval_every)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (ylabel, keys, panel_title) in zip(axes[0], panels, strict=True):
        for k in keys:
            pts = series(k)
            if pts:
                ax.plot(*zip(*pts, strict=True), label=LEGEND_NAMES.get(k, k), marker="o" if len(pts) < 20 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title, fontsize=10)
        if probabilities and keys is scores:
            ax.set_ylim(-0.02, 1.02)
        if any(series(k) for k in keys):
            ax.legend()
        ax.grid(alpha=0.3)
    for step, kind, severity in health_onsets(rows):
        for i, ax in enumerate(axes[0]):
            ax.axvline(step, color="red" if severity == "error" else "orange", linestyle="--", linewidth=1)
            if i == 0:
                ax.text(step, 0.97, f" {kind}", transform=ax.get_xaxis_transform(), rotation=90, va="top", ha="right",
                        fontsize=8, color="red" if severity == "error" else "darkorange")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
