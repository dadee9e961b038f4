"""Toy GANs on 1-D and 2-D data (figure 1 of Goodfellow et al. 2014; the ring and grid of Gaussians): small
MLPs that generate points, drawn with D's curve or heat map as they train (``ganforge toy``).

The family's own defaults (``toy_config``) are what ``ganforge toy``, ``ganforge train toy`` without a preset
and the studio's GAN Lab start from: their length, learning rates and number of frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import TrainConfig, parse_override, resolve_config
from ..data.toy import TOY, load_toy
from ..errors import GanforgeError
from ..models.toy import TOY_GAN
from ..pipelines import PointsPipeline
from ..tasks.toy import ToyGANTask
from .base import Family
from .data import image_data

TOY_DEFAULTS: dict[str, Any] = {
    # D learns 10x faster than G, Adam without momentum: measured on gaussian1d / mixture1d, the raw G then
    # oscillates least around the data (lr 1e-3 for both with betas (0.5, 0.999) leaves p_g as jittering spikes)
    "model": "toy", "batch_size": 256, "lr_g": 2e-4, "lr_d": 2e-3, "beta1": 0.0, "beta2": 0.9,
    "log_every": 10, "ckpt_every": 0, "n_samples": 1000, "progress": False,
}
TOY_STEPS = {1: 3000, 2: 5000}  # default length for 1-D and 2-D data
TOY_FRAMES = 60  # pictures per run, the first (step 0) and the last included, unless sample_every is set


def frame_interval(steps: int, frames: int) -> int:
    """The sample_every that gives ``frames`` pictures over ``steps`` steps, counting the one of step 0 and
    the final one (written at the end when ``steps`` is not a multiple); fewer only when steps are fewer."""
    def count(every: int) -> int:
        return steps // every + 1 + (steps % every != 0)

    every = max(1, steps // frames)
    while count(every) > frames and every < steps:
        every += 1
    return every


def toy_config(data: str, flags: dict[str, Any] | None = None, overrides: list[str] | None = None,
               frames: int = TOY_FRAMES) -> TrainConfig:
    """The configuration of a toy run: TOY_DEFAULTS, 3000 (1-D) or 5000 (2-D) steps, ``frames`` frames,
    then ``flags`` (None = not given) and ``key=value`` overrides. ``data`` is a toy distribution's name
    or a file of points (.csv, .txt, .npy)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if data in TOY or data == "points":
        values = {"data": data}
    elif Path(data).expanduser().is_file():
        values = {"data": "points", "data_root": str(Path(data).expanduser())}
    else:
        raise GanforgeError(f"Unknown toy data {data!r}; choose one of: {', '.join(TOY.names())}, "
                            "or give a .csv, .txt or .npy file of 1-D or 2-D points.")
    if frames < 2:
        raise GanforgeError(f"--frames must be 2 or more (the first and the last picture count), got {frames}.")
    dim = load_toy(values["data"], flags.get("data_root", values.get("data_root"))).dim
    cfg = resolve_config(flags={**TOY_DEFAULTS, "steps": TOY_STEPS[dim], **values, **flags}, overrides=overrides)
    if cfg.model != "toy":
        raise GanforgeError(f"ganforge toy trains the toy model, not {cfg.model!r}.")
    keys = {parse_override(o)[0] for o in overrides or []} | set(flags)
    if "sample_every" not in keys:
        cfg.sample_every = frame_interval(cfg.steps or 1, frames)
    cfg.validate()
    return cfg


def _configure(data: str | None, flags: dict[str, Any], overrides: list[str] | None) -> TrainConfig:
    """``ganforge train toy --data D`` without a preset: the defaults and frames of ``ganforge toy``."""
    if not data:
        raise GanforgeError("ganforge train toy needs --data: a toy distribution (ring2d, gaussian1d, ...) or a "
                            ".csv/.txt/.npy file of points.")
    return toy_config(data, {k: v for k, v in flags.items() if k not in ("model", "data")}, overrides)


FAMILY = Family(
    name="toy",
    models=(TOY_GAN,),
    task=ToyGANTask,
    pipeline=PointsPipeline,
    offers=frozenset({"points", "export"}),
    load_data=image_data,
    configure=_configure,
    threads=1,  # networks this small run fastest on one CPU thread (measured 2.8 ms/step vs 6+ on 2)
    description="1-D / 2-D points from noise, drawn with D as they train",
)
