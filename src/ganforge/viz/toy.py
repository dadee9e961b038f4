"""Pictures of toy GANs: figure-1 style 1-D frames, GAN Lab style 2-D frames, divergence curves and
side-by-side comparisons. Everything takes numpy arrays and writes PNG/GIF files (matplotlib Agg,
fixed axis limits, small figures so a frame takes a few tens of milliseconds)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import read_metrics, save_gif

DPI = 80
REAL_COLOR, FAKE_COLOR, D_COLOR = "#00441b", "#7b3294", "#2166ac"
G_COLOR = "#2ca02c"  # p_g is green in Goodfellow et al.'s figure 1
G_SAMPLE_COLOR = "#e66101"  # G(z) on the 2-D heat map: orange stands out on both its green and its pink


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _d_axis_limits(kind: str, d: np.ndarray) -> tuple[float, float]:
    if kind == "probability":
        return -0.02, 1.02
    if kind == "lsgan":
        return -0.25, 1.25
    lo, hi = float(d.min()), float(d.max())
    pad = 0.1 * max(hi - lo, 1e-3)
    return lo - pad, hi + pad


D_LABELS = {"probability": "D(x)", "lsgan": "D(x) (least squares)", "critic": "critic D(x)"}


def draw_frame_1d(path: str | Path, xs: np.ndarray, p_data: np.ndarray | None, fake: np.ndarray,
                  d_values: np.ndarray, d_kind: str, z_pos: np.ndarray, gz: np.ndarray,
                  limits: tuple[float, float], ymax: float, title: str) -> Path:
    """Goodfellow et al. 2014 figure 1: data density (black dotted), p_g (green: histogram and smoothed
    line), D(x) (blue dashed, right axis), and below the uniformly spaced z with arrows to x = G(z).

    xs: float [M] grid; p_data: density on xs (or None); fake: float [K] generated samples;
    d_values: D on xs; z_pos: float [A] display positions of the z's (their quantiles mapped onto the
    x range); gz: float [A] their images G(z)."""
    from scipy.ndimage import gaussian_filter1d

    lo, hi = limits
    fig = _figure(6.4, 4.4)
    gs = fig.add_gridspec(2, 1, height_ratios=[3.2, 1.0], hspace=0.08, left=0.09, right=0.89, top=0.9, bottom=0.05)
    ax = fig.add_subplot(gs[0])
    edges = np.linspace(lo, hi, 81)
    inside = fake[(fake >= lo) & (fake <= hi)]
    heights, _ = np.histogram(inside, bins=edges)
    scale = 1.0 / (max(len(fake), 1) * (edges[1] - edges[0]))
    ax.stairs(heights * scale, edges, fill=True, color=G_COLOR, alpha=0.18, linewidth=0)
    fine = np.linspace(lo, hi, 241)
    counts, _ = np.histogram(inside, bins=fine)
    smooth = gaussian_filter1d(counts * (1.0 / (max(len(fake), 1) * (fine[1] - fine[0]))), 2.0)
    ax.plot((fine[:-1] + fine[1:]) / 2, smooth, color=G_COLOR, lw=2, label="$p_g$ (generator)")
    if p_data is not None:
        ax.plot(xs, p_data, ":", color="black", lw=2.2, label="data")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, ymax)
    ax.set_ylabel("density")
    ax.tick_params(labelbottom=False)
    ax2 = ax.twinx()
    ax2.plot(xs, d_values, "--", color=D_COLOR, lw=2, label=D_LABELS[d_kind])
    if d_kind != "critic":
        ax2.axhline(0.5, color=D_COLOR, lw=0.8, ls="-.", alpha=0.4, label="D = 1/2")
    ax2.set_ylim(*_d_axis_limits(d_kind, d_values))
    ax2.set_ylabel(D_LABELS[d_kind], color=D_COLOR)
    ax2.tick_params(axis="y", colors=D_COLOR)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)

    low = fig.add_subplot(gs[1], sharex=ax)
    low.axhline(1.0, color="black", lw=1)
    low.axhline(0.0, color="black", lw=1)
    low.plot(z_pos, np.zeros_like(z_pos), "o", color="black", ms=2.5)
    for z, x in zip(z_pos, np.clip(gz, lo, hi), strict=True):
        low.annotate("", xy=(x, 0.97), xytext=(z, 0.03),
                     arrowprops={"arrowstyle": "->", "color": "black", "lw": 0.7, "shrinkA": 0, "shrinkB": 0})
    low.set_ylim(-0.15, 1.15)
    low.set_yticks([0.0, 1.0], ["z", "x"])
    low.tick_params(labelbottom=False, bottom=False)
    for side in ("top", "right", "bottom", "left"):
        low.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


def draw_frame_2d(path: str | Path, real: np.ndarray, fake: np.ndarray, grid_d: np.ndarray, d_kind: str,
                  mesh: np.ndarray, arrow_at: np.ndarray, arrows: np.ndarray,
                  limits: tuple[tuple[float, float], tuple[float, float]], title: str) -> Path:
    """GAN Lab style: D's decision surface as a heat map (green = "real", purple = "fake"), real (green)
    and generated (purple) samples, G's manifold (a grid of z mapped through G, drawn as a mesh) and
    arrows showing where the generator's gradient pushes its samples.

    real, fake: float [N, 2]; grid_d: D on a [R, R] grid over ``limits`` (row = y); mesh: float [S, S, 2]
    images of the z grid; arrow_at, arrows: float [A, 2] arrow tails and vectors (already scaled)."""
    (x0, x1), (y0, y1) = limits
    fig = _figure(5.8, 5.2)
    ax = fig.add_axes((0.08, 0.07, 0.74, 0.83))
    if d_kind == "probability":
        shown, vmin, vmax = grid_d, 0.0, 1.0
    elif d_kind == "lsgan":
        shown, vmin, vmax = np.clip(grid_d, 0.0, 1.0), 0.0, 1.0
    else:  # a critic has no fixed scale: centre and stretch it to [0, 1] for the picture
        centred = grid_d - np.median(grid_d)
        shown, vmin, vmax = 0.5 + 0.5 * centred / max(float(np.abs(centred).max()), 1e-8), 0.0, 1.0
    heat = ax.imshow(shown, extent=(x0, x1, y0, y1), origin="lower", cmap="PiYG", vmin=vmin, vmax=vmax,
                     alpha=0.45, interpolation="bilinear", aspect="auto")
    ax.scatter(real[:, 0], real[:, 1], s=6, color=REAL_COLOR, alpha=0.6, linewidths=0, label="data")
    for line in list(mesh) + list(mesh.transpose(1, 0, 2)):
        ax.plot(line[:, 0], line[:, 1], color=G_SAMPLE_COLOR, lw=0.5, alpha=0.45)
    ax.scatter(fake[:, 0], fake[:, 1], s=5, color=G_SAMPLE_COLOR, alpha=0.75, linewidths=0, label="G(z)")
    if len(arrows):
        ax.quiver(arrow_at[:, 0], arrow_at[:, 1], arrows[:, 0], arrows[:, 1], angles="xy", scale_units="xy",
                  scale=1.0, color="black", width=0.003, headwidth=4, alpha=0.7)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, markerscale=3, framealpha=0.7)
    bar = fig.colorbar(heat, cax=fig.add_axes((0.86, 0.12, 0.03, 0.73)))
    bar.solids.set_alpha(0.45)
    bar.set_ticks([0.0, 0.5, 1.0])
    if d_kind == "critic":  # a score without a fixed scale, shown relative to its median over the picture
        bar.set_ticklabels(["lower", "median", "higher"])
        bar.set_label("critic score D(x) (higher: more real)", fontsize=8)
    else:
        bar.set_label("D(x): probability that x is real" if d_kind == "probability"
                      else "D(x), least squares (1: real, 0: fake)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


def draw_real(path: str | Path, points: np.ndarray, limits, density=None) -> Path:
    """The real training data: a histogram (and density) in 1-D, a scatter plot in 2-D."""
    fig = _figure(5.0, 3.6 if points.shape[1] == 1 else 5.0)
    ax = fig.add_subplot(1, 1, 1)
    if points.shape[1] == 1:
        lo, hi = limits[0]
        ax.hist(points[:, 0], bins=np.linspace(lo, hi, 61), density=True, color="grey", alpha=0.5)
        if density is not None:
            xs = np.linspace(lo, hi, 400)
            ax.plot(xs, density(xs), ":", color="black", lw=2)
        ax.set_xlim(lo, hi)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=4, color=REAL_COLOR, alpha=0.5, linewidths=0)
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_aspect("equal")
    ax.set_title(f"real data ({len(points)} points)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


def _rows_by_step(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file, the last one kept for each step (a resumed run writes some twice)."""
    rows = {r["step"]: r for r in read_metrics(path) if "step" in r}
    return [rows[s] for s in sorted(rows)]


def plot_divergence(toy_metrics: str | Path, out: str | Path, title: str = "") -> Path | None:
    """JS divergence (histogram grid, with its real-vs-real floor), Wasserstein-1 (sliced in 2-D) and the
    generator's gradient norm at its samples, over training."""
    rows = _rows_by_step(toy_metrics)
    if not rows:
        return None
    fig = _figure(12.0, 3.6)
    axes = fig.subplots(1, 3)
    steps = [r["step"] for r in rows]
    axes[0].plot(steps, [r["js"] for r in rows], color="C0", label="JS(data, $p_g$)")
    axes[0].axhline(rows[-1]["js_floor"], color="grey", ls="--", lw=1, label="real vs real (floor)")
    axes[0].axhline(np.log(2), color="grey", ls=":", lw=1, label="log 2 (disjoint)")
    axes[0].set_title("Jensen-Shannon divergence (histogram)", fontsize=10)
    axes[0].legend(fontsize=8)
    w_key = "w1" if "w1" in rows[0] else "sw1"
    axes[1].plot(steps, [r[w_key] for r in rows], color="C1")
    axes[1].axhline(rows[-1][f"{w_key}_floor"], color="grey", ls="--", lw=1, label="real vs real (floor)")
    axes[1].set_title("Wasserstein-1" if w_key == "w1" else "sliced Wasserstein-1", fontsize=10)
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    axes[2].plot(steps, [max(r["grad_g"], 1e-12) for r in rows], color="C2")
    axes[2].set_yscale("log")
    axes[2].set_title("|d G-loss / dx| at G's samples", fontsize=10)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=DPI)
    return out


# ----------------------------------------------------------------------------- comparisons
def _labelled(path: Path, label: str) -> Image.Image:
    with Image.open(path) as im:
        frame = im.convert("RGB")
    canvas = Image.new("RGB", (frame.width, frame.height + 18), "white")
    canvas.paste(frame, (0, 18))
    ImageDraw.Draw(canvas).text((frame.width // 2 - 3 * len(label), 3), label, fill="black")
    return canvas


def _side_by_side(images: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out


def compare_runs(run_dirs: list[Path], labels: list[str], out_dir: str | Path) -> dict[str, Path]:
    """Side-by-side pictures of runs trained with the same data, seed and frame steps: compare.gif (every
    frame), compare.png (the last frame) and compare_curves.png (losses, D on fakes and divergences)."""
    out_dir = Path(out_dir)
    steps = sorted(set.intersection(*[{p.name for p in (d / "samples").glob("step_*.png")} for d in run_dirs]))
    written: dict[str, Path] = {}
    if steps:
        with tempfile.TemporaryDirectory() as tmp:
            frames = []
            for name in steps:
                frame = _side_by_side([_labelled(d / "samples" / name, lab) for d, lab in zip(run_dirs, labels,
                                                                                           strict=True)])
                frames.append(Path(tmp) / name)
                frame.save(frames[-1])
            written["gif"] = save_gif(frames, out_dir / "compare.gif",
                                      captions=[f"step {int(Path(n).stem[5:])}" for n in steps])
            Image.open(frames[-1]).save(out_dir / "compare.png")
            written["png"] = out_dir / "compare.png"
    written["curves"] = plot_comparison(run_dirs, labels, out_dir / "compare_curves.png")
    return written


def plot_comparison(run_dirs: list[Path], labels: list[str], out: str | Path) -> Path:
    """One panel per quantity (D loss, G loss, D on fakes, JS, W1, G's gradient norm), one line per run."""
    fig = _figure(13.0, 6.6)
    axes = fig.subplots(2, 3).ravel()
    panels = [("metrics.jsonl", "loss_D", "D loss", False), ("metrics.jsonl", "loss_G", "G loss", False),
              ("metrics.jsonl", "D_fake", "D on fakes (probability, or score)", False),
              ("toy_metrics.jsonl", "js", "JS divergence (histogram)", False),
              ("toy_metrics.jsonl", "w1", "Wasserstein-1 (sliced in 2-D)", True),
              ("toy_metrics.jsonl", "grad_g", "|d G-loss / dx| at G's samples", True)]
    for ax, (file, key, name, log) in zip(axes, panels, strict=True):
        for i, (d, label) in enumerate(zip(run_dirs, labels, strict=True)):
            rows = _rows_by_step(d / file)
            k = key if key != "w1" or not rows or "w1" in rows[0] else "sw1"
            pts = [(r["step"], r[k]) for r in rows if k in r]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, np.maximum(ys, 1e-12) if log else ys, color=f"C{i}", lw=1.2, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=DPI)
    return out
