"""What a stylised picture leaves behind: OUT.png, OUT.gif (the optimisation), OUT_losses.png and OUT.json
(every setting, the inputs' SHA-256, the losses at the start and end, the time taken), so that it can be made
again. Nothing is written over an existing file unless ``force``."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import shlex
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import GanforgeError
from ..io import check_writable_parent, write_atomic, write_json
from ..version import __version__
from ..viz import save_gif
from .optimize import StyleResult


def output_paths(out: str | Path, fast: bool = False) -> dict[str, Path]:
    """The files that one picture writes: image, gif, losses, json (fast style: image and json)."""
    out = Path(out).expanduser()
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise GanforgeError(f"--out must be an image file ending in .png or .jpg, got {str(out)!r}.")
    paths = {"image": out, "json": out.with_suffix(".json")}
    if not fast:
        paths.update(gif=out.with_suffix(".gif"), losses=out.with_name(f"{out.stem}_losses.png"))
    return paths


def check_outputs(paths: dict[str, Path], force: bool = False) -> None:
    """One sentence when a file would be replaced without ``force`` or cannot be written; nothing is created."""
    for p in paths.values():
        if p.is_dir():
            raise GanforgeError(f"{str(p)!r} is a folder; give --out a file name such as result.png.")
        if p.exists() and not force:
            raise GanforgeError(f"{str(p)!r} already exists; choose another --out or pass --force to replace it.")
        check_writable_parent(p, "--out")


def save_image(image: torch.Tensor, path: Path) -> None:
    """uint8 [3, H, W] -> an image file (atomically)."""
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    write_atomic(path, lambda p: pil.save(p))


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def plot_history(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """The weighted loss terms (content, style per layer, TV) and their total against the iteration, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k != "iteration"]
    its = [r["iteration"] for r in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in keys:
        ax.plot(its, [max(r.get(k, float("nan")), 1e-12) for r in history], label=k,
                linewidth=2.0 if k == "total" else 1.0, color="black" if k == "total" else None)
    ax.set_yscale("log")
    ax.set_xlabel("iteration (loss evaluations)")
    ax.set_ylabel("weighted loss")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, dpi=100))
    plt.close(fig)


def command_line(content, styles, s, out) -> str:
    """The ``ganforge stylize`` command that makes the same picture again, every setting spelled out."""
    def csv(values) -> str:
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)

    parts = ["ganforge", "stylize", *([content] if content else ["--content", "none"]), *styles, "--out", str(out),
             "--network", s.network, "--size", str(s.size), "--content-weight", f"{s.content_weight:g}",
             "--style-weight", f"{s.style_weight:g}", "--tv-weight", f"{s.tv_weight:g}", "--optimizer", s.optimizer,
             "--iterations", str(s.iterations), "--lr", f"{s.lr:g}", "--adam-eps", f"{s.adam_eps:g}", "--init", s.init,
             "--seed", str(s.seed),
             "--style-layers", csv(s.style_layers), "--style-layer-weights", csv(s.style_layer_weights),
             "--style-blend", csv(s.style_blend), "--frames", str(s.frames)]
    if s.content_layers:
        parts += ["--content-layers", csv(s.content_layers)]
    if s.network == "random":
        parts += ["--network-seed", str(s.network_seed), "--random-sizes", csv(s.random_sizes),
                  "--random-filters", str(s.random_filters)]
    else:
        parts += ["--pool", s.pool] + (["--weights", s.weights] if s.weights else [])
    if s.preserve_color:
        parts.append("--preserve-color")
    return shlex.join(parts)


def make_record(result: StyleResult, inputs: dict[str, Any]) -> dict[str, Any]:
    h = result.history
    return {
        "ganforge": __version__, "method": "gatys" if inputs.get("content") else "texture",
        "inputs": inputs, "settings": dataclasses.asdict(result.settings),
        "iterations_run": len(h), "seconds": round(result.seconds, 3),
        "iterations_per_s": round(len(h) / max(result.seconds, 1e-9), 3),
        "loss_start": h[0] if h else None, "loss_end": result.final or (h[-1] if h else None),
        "loss_end_is": "the weighted terms of the written picture (clamped to [0, 1]), evaluated once more",
        "output_size": list(result.image.shape[-2:]), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "remake": "ganforge.stylize(inputs['content'], inputs['styles'], **settings), or the command in 'command'",
    }


def write_result(result: StyleResult, paths: dict[str, Path], record: dict[str, Any]) -> dict[str, Path]:
    """Write the image, the GIF of the frames, the loss plot and the JSON record to ``paths``."""
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    save_image(result.image, paths["image"])
    tmp_dir = paths["image"].parent
    frame_files = []
    try:
        for i, frame in enumerate(result.frames):
            f = tmp_dir / f".{paths['image'].stem}.frame{i:04d}.png"
            Image.fromarray(frame.permute(1, 2, 0).numpy()).save(f)
            frame_files.append(f)
        write_atomic(paths["gif"], lambda p: save_gif(frame_files, p, duration_ms=150,
                                                      captions=[f"it {i}" for i in result.frame_iterations]),
                     suffix=".gif")
    finally:
        for f in frame_files:
            f.unlink(missing_ok=True)
    s = result.settings
    plot_history(result.history, paths["losses"], title=f"{s.network} network, {s.optimizer}, {len(result.history)} "
                                                         f"iterations")
    write_json(paths["json"], record)
    return paths
