"""Toy GAN runs as ``ganforge toy`` makes them: one run with its divergence summary, or one run per loss side
by side (``compare_toy``). The toy family's defaults are :func:`ganforge.families.toy.toy_config`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .errors import GanforgeError
from .families.toy import TOY_FRAMES, frame_interval, toy_config
from .losses import LOSSES
from .training import train
from .viz import read_metrics
from .viz.toy import compare_runs


def train_toy(cfg: TrainConfig, out: str | Path) -> dict[str, Any]:
    """Train one toy run into ``out`` (frames, progress.gif, losses.png, divergence.png); returns
    {"run_dir", "step", "nets", and the last frame's divergence estimates}."""
    result = train(cfg, out)  # on the toy family's one thread unless cfg.threads says otherwise
    run_dir = Path(out)
    rows = read_metrics(run_dir / "toy_metrics.jsonl")
    return {"run_dir": run_dir, "step": result.step, "nets": result.nets, "stopped_by": result.stopped_by,
            **(rows[-1] if rows else {})}


def parse_variants(text: str | list[str]) -> list[tuple[str, str, int | None]]:
    """``"minimax,nonsaturating,wgan-gp:5"`` -> [(label, loss, k or None)]: a loss, optionally with its
    number of D steps per G step after a colon."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    out = []
    for item in items:
        loss, _, k = item.partition(":")
        LOSSES.get(loss)
        if k and (not k.isdigit() or int(k) < 1):
            raise GanforgeError(f"Cannot read {item!r}: write LOSS or LOSS:K with K D steps per G step (e.g. "
                                "minimax:5).")
        out.append((f"{loss}-k{k}" if k else loss, loss, int(k) if k else None))
    labels = [label for label, _, _ in out]
    if len(out) < 2 or len(set(labels)) != len(labels):
        raise GanforgeError(f"--compare needs two or more different losses (LOSS or LOSS:K), got {text!r}.")
    return out


def compare_toy(cfg: TrainConfig, variants: str | list[str], out: str | Path) -> dict[str, Any]:
    """Train ``cfg`` once per variant (same data, seed and frames) into OUT/<label>/, then write
    OUT/compare.gif, OUT/compare.png and OUT/compare_curves.png; returns each run's summary."""
    out = Path(out)
    parsed = parse_variants(variants)
    for label, _, _ in parsed:
        if (out / label / "config.json").exists():
            raise GanforgeError(f"{str(out / label)!r} already holds a run; choose another --out.")
    runs = {}
    for label, loss, k in parsed:
        options = dict(cfg.task_options, loss=loss)
        if k:
            options["d_steps"] = k
        v = dataclasses.replace(cfg, task_options=options)
        v.validate()
        runs[label] = train_toy(v, out / label)
        if runs[label].get("stopped_by") not in (None, "time"):  # Ctrl-C: stopped cleanly; start no other run
            return runs
    compare_runs([out / label for label, _, _ in parsed], [label for label, _, _ in parsed], out)
    return runs


__all__ = ["TOY_FRAMES", "compare_toy", "frame_interval", "parse_variants", "toy_config", "train_toy"]
