"""What a latent tool returns (:class:`LatentFigure`), the JSON record it carries, and how both are written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import GanforgeError
from ..io import write_atomic, write_json
from ..version import __version__
from ..viz.latent import save_frames_gif
from .render import num_classes, source
from .vectors import Z_RULE


@dataclass
class LatentFigure:
    """What a tool made: uint8 images and the float latents behind them (same keys), the picture, the record.

    For the grid tools ``images["grid"]`` is uint8 [rows, columns, C, H, W] and ``latents["grid"]``
    float [rows, columns, nz]; :func:`~ganforge.latent.arithmetic` keys them by group name,
    ``"<name>.mean"`` and ``"result"``. ``files`` maps "png", "gif", "json" to the paths written
    (empty without ``out``).
    """

    tool: str
    images: dict[str, torch.Tensor]
    latents: dict[str, torch.Tensor]
    picture: Image.Image
    record: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    gif_frames: list[Image.Image] = field(default_factory=list, repr=False)
    gif_durations: list[int] = field(default_factory=list, repr=False)


def make_record(model, tool: str, ema: bool | None, params: dict[str, Any], **info: Any) -> dict[str, Any]:
    """The JSON record of a figure: the tool, the checkpoint and its step, the EMA choice, the latent rule,
    what the tool derived (``info``) and the ``params`` that :func:`~ganforge.latent.regenerate` calls
    the tool with again."""
    path = source(model)
    return {
        "tool": tool,
        "ganforge_version": __version__,
        "checkpoint": str(Path(path).resolve()) if path else None,
        "model": model.name,
        "step": model.step,
        "ema": model.uses_ema(ema),
        "nz": int(model.nz),
        "num_classes": num_classes(model),
        "z_rule": Z_RULE,
        **info,
        "params": params,
    }


def save_figure(fig: LatentFigure, out: str | Path | None) -> LatentFigure:
    """Write TOOL.png (TOOL.gif when the figure has frames) and TOOL.json into the folder ``out``; none
    without ``out``. Each file is written to a temporary name and renamed."""
    if out is None:
        return fig
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out must be a folder, but {str(out)!r} is a file.")
    out.mkdir(parents=True, exist_ok=True)
    fig.files["png"] = write_atomic(out / f"{fig.tool}.png", fig.picture.save)
    if fig.gif_frames:
        fig.files["gif"] = save_frames_gif(fig.gif_frames, out / f"{fig.tool}.gif", fig.gif_durations)
    fig.record["files"] = {k: p.name for k, p in fig.files.items()} | {"json": f"{fig.tool}.json"}
    fig.files["json"] = write_json(out / f"{fig.tool}.json", fig.record)
    return fig
