"""Reading a figure's JSON record back and redrawing the figure from it (:func:`regenerate`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import GanforgeError
from ..families import load
from ..threads import applies_threads
from .figure import LatentFigure
from .project import project
from .tools import arithmetic, interpolate, interpolate_classes, sweep_dimension, sweep_pca, truncation

TOOLS: dict[str, Callable[..., LatentFigure]] = {
    "interpolate": interpolate,
    "interpolate_classes": interpolate_classes,
    "arithmetic": arithmetic,
    "sweep_dimension": sweep_dimension,
    "sweep_pca": sweep_pca,
    "truncation": truncation,
    "project": project,
}


def read_record(path: str | Path) -> dict[str, Any]:
    """A tool's JSON record, checked to name a known tool and hold its parameters."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GanforgeError(f"Cannot read the latent record {str(path)!r} ({e}).") from None
    if not isinstance(record, dict) or record.get("tool") not in TOOLS or not isinstance(record.get("params"), dict):
        raise GanforgeError(f"{str(path)!r} is not a record written by a ganforge latent tool.")
    return record


@applies_threads
def regenerate(record: str | Path | Mapping[str, Any], out: str | Path | None = None, model=None,
               device: str = "cpu", source: str | Path | None = None) -> LatentFigure:
    """Redraw a figure from its JSON record (a path or the dict): same checkpoint, EMA choice and parameters.

    ``source``: a run folder or checkpoint to load instead of ``record["checkpoint"]`` (e.g. after the run
    was moved; a run folder's checkpoint at the recorded step is used). ``model``: an already loaded model.
    """
    if not isinstance(record, Mapping):
        record = read_record(record)
    if model is None:
        step = record.get("step")
        if source is not None:
            model = load(source, str(step) if step is not None else "latest", device=device)
        elif record.get("checkpoint"):
            model = load(record["checkpoint"], device=device)
        else:
            raise GanforgeError("The record names no checkpoint; give the run folder or checkpoint to load.")
    if record.get("step") is not None and model.step != record["step"]:
        raise GanforgeError(f"The record was made at step {record['step']} but the checkpoint is at step "
                            f"{model.step}.")
    return TOOLS[record["tool"]](model, **record["params"], ema=record.get("ema"), out=out)
