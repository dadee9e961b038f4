"""The public Python API; the command line is a thin layer over these functions.

    import ganforge
    cfg = ganforge.resolve_config("fmnist-demo", overrides=["steps=200"])
    run = ganforge.train(cfg, "runs/demo")
    model = ganforge.load("runs/demo")         # the inference object: no training task, no training config
    images = model.sample(16, seed=1)          # uint8 [16, H, W, C]
    ganforge.stylize("photo.jpg", ["style.jpg"], out="result.png")   # neural style transfer (Gatys et al.)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import DATA_ALIASES, TASK_ALIASES, TrainConfig, config_from_dict, parse_override, resolve_config
from .data.toy import TOY, load_toy
from .errors import GanforgeError
from .families import family_of, load, model_spec
from .losses import LOSSES
from .metrics.evaluation import evaluate as evaluate_samples
from .models import count_parameters
from .pipelines import Pipeline, resolve_device
from .style_transfer import stylize
from .threads import applies_threads, use_threads
from .train.run import RunResult, build_run
from .translation import translate
from .viz import read_metrics
from .viz.toy import compare_runs


def info(model: str, options: dict[str, Any] | None = None) -> dict[str, int]:
    """Parameter count of each network of ``model`` built with ``options``, e.g. {"G": ..., "D": ...}."""
    spec = model_spec(model)
    nets = spec.networks(spec.complete(options))
    return {name: count_parameters(net) for name, net in nets.items()}


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> RunResult:
    """Train ``cfg`` into ``run_dir`` (or continue the run there when ``resume``).

    Under torchrun (WORLD_SIZE > 1) every process calls this; gradients are averaged with DDP and
    only rank 0 writes files. CPU threads: ``cfg.threads``, else the policy of :mod:`ganforge.threads`
    (a resumed run continues with the count it recorded); the run records the count it used.
    """
    recorded = (load_checkpoint(run_dir).meta.get("config") or {}).get("threads") if resume else None
    with use_threads(cfg.threads, recorded, announce=_says_threads(cfg)) as n:
        run = build_run(dataclasses.replace(cfg, threads=n), run_dir, resume=resume)
        try:
            return run.fit()
        finally:
            run.close()


def _says_threads(cfg: TrainConfig) -> bool:
    """Whether this process says its choice of CPU threads: training on the CPU, rank 0 under torchrun."""
    return os.environ.get("RANK", "0") == "0" and resolve_device(cfg.device).type == "cpu"


RESUME_CHANGES = ("steps", "epochs", "progress", "log_every", "sample_every", "ckpt_every", "keep_ckpts", "device",
                  "precision", "eval_every", "eval_n", "threads")  # what may change when a run continues


def plan_resume(run_dir: str | Path, changes: dict[str, Any] | None = None,
                overrides: list[str] | None = None) -> tuple[TrainConfig, dict[str, tuple[Any, Any]], bool]:
    """The config a resumed run continues with, the settings that change ({name: (old, new)}), and whether
    the run restarts from step 0 (it stopped before its first checkpoint; its config.json is reused).

    ``changes`` (None values: not given) and ``key=value`` ``overrides`` may change only RESUME_CHANGES
    (length, what is written, device, precision); any other setting that differs from the saved one is
    refused with one sentence, since the continuation would no longer be that run."""
    run_dir = Path(run_dir)
    restart = False
    at = total = None  # the step the run reached, and the steps it was to train
    try:
        meta = load_checkpoint(run_dir).meta
        values = dict(meta.get("config") or {})
        at, total = meta.get("step"), meta.get("total_steps")
    except GanforgeError:
        saved = run_dir / "config.json"
        if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("step_*")) \
                or not saved.is_file():
            raise
        try:
            values = dict(json.loads(saved.read_text()).get("config") or {})
        except (OSError, ValueError) as e:
            raise GanforgeError(f"{str(saved)!r} is unreadable ({type(e).__name__}); the run cannot be "
                                "restarted; start a new one with another --out.") from None
        restart = True
    if "task_options" not in values:  # the first release's flat layout held every task's names at the top level
        options = family_of(values.get("model", "dcgan")).task.options_cls
        own = {f.name for f in dataclasses.fields(options)}
        values = {k: v for k, v in values.items() if k not in TASK_ALIASES or k in own}
    before = config_from_dict(values)
    asked = {k: v for k, v in (changes or {}).items() if v is not None}
    asked.update(dict(parse_override(o) for o in overrides or []))
    for key, value in asked.items():
        if key not in RESUME_CHANGES and _saved(before, key) != value:
            raise GanforgeError(f"Cannot change {key} with --resume (the run has {key}={_saved(before, key)!r}); "
                                f"only {', '.join(RESUME_CHANGES)} may change; start a new run for another {key}.")
        values[key] = value
    if asked.get("steps") is not None:
        values["epochs"] = None
    if asked.get("epochs") is not None:
        values["steps"] = None
    after = config_from_dict(values)
    if isinstance(at, int):  # --steps is the total to reach, not a number of steps to add
        if after.steps is not None and after.steps <= at:
            raise GanforgeError(f"{str(run_dir)!r} is already at step {at}; --steps is the total to reach, so give "
                                f"more than {at} to train further.")
        if after.steps is None and after.epochs is None and isinstance(total, int) and at >= total:
            raise GanforgeError(f"{str(run_dir)!r} already reached its {total} steps; give --steps N with N above "
                                f"{at} to train further.")
    changed = {k: (getattr(before, k), getattr(after, k)) for k in RESUME_CHANGES
               if getattr(before, k) != getattr(after, k)}
    return after, changed, restart


def _saved(cfg: TrainConfig, key: str) -> Any:
    """The value of setting ``key`` (a loop setting, a task or data option, or an alias of one) in ``cfg``."""
    head, _, rest = key.partition(".")
    if key in TASK_ALIASES or head == "task":
        return cfg.task_options.get(rest or key)
    if key in DATA_ALIASES or head == "data":
        return getattr(cfg.data, rest or DATA_ALIASES[key], None)
    return getattr(cfg, key, None)


def resume(run_dir: str | Path, changes: dict[str, Any] | None = None,
           overrides: list[str] | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its latest checkpoint, with its saved config (see
    :func:`plan_resume` for what may change). A run that stopped before its first checkpoint starts
    again from step 0 with its saved config."""
    cfg, changed, restart = plan_resume(run_dir, changes, overrides)
    asked, recorded = (cfg.threads, changed["threads"][0]) if "threads" in changed else (None, cfg.threads)
    with use_threads(asked, recorded, announce=_says_threads(cfg)) as n:
        run = build_run(dataclasses.replace(cfg, threads=n), run_dir, resume=not restart, restart=restart)
        try:
            return run.fit()
        finally:
            run.close()


@applies_threads
def evaluate(source: str | Path | Pipeline, against: str | None = None, metrics=("fid",), extractor: str | None = None,
             n: int | None = None, ckpt: str = "latest", seed: int = 0, weights: str | None = None,
             device: str = "cpu", batch_size: int = 100, ema: bool | None = None, data_root: str | None = None,
             split: str = "train", real_vs_real: bool = True, record: bool = True,
             progress: bool = False) -> dict[str, Any]:
    """FID / KID / IS / precision-recall / density-coverage of a run folder or checkpoint (``n`` generated
    images, default 10,000), an inference object, an .npz of samples or a folder of images, against a
    dataset, a folder or FID statistics. Returns one JSON-able dict recording the protocol; a run's
    result is also appended to its metrics.jsonl (``record``). ``progress``: progress bars on stderr."""
    model = source if isinstance(source, Pipeline) else None
    path = Path(model.path) if model is not None and model.path is not None else Path(str(source))
    if model is None and not (path.suffix == ".npz" and path.is_file()) and not (
            path.is_dir() and not (path / "checkpoints").is_dir() and not (path / "meta.json").is_file()):
        model = load(path, ckpt, device)
    if model is not None and not family_of(model).can("eval"):
        what = ("generates points, not images" if family_of(model).can("points") else
                "translates images; evaluate it on held-out pairs with ganforge translate RUN --split test")
        raise GanforgeError(f"{model.source!r} is a {model.name} model: it {what}.")
    return evaluate_samples(path, against=against, metrics=metrics, extractor=extractor, n=n, seed=seed,
                            weights=weights, device=device, batch_size=batch_size, ema=ema, data_root=data_root,
                            split=split, real_vs_real=real_vs_real, record=record, model=model,
                            progress=progress)


# ----------------------------------------------------------------------------- toy GANs (ganforge toy)
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


def train_toy(cfg: TrainConfig, out: str | Path) -> dict[str, Any]:
    """Train one toy run into ``out`` (frames, progress.gif, losses.png, divergence.png); returns
    {"run_dir", "step", "nets", and the last frame's divergence estimates}."""
    if cfg.threads is None:  # networks this small run fastest on one CPU thread (measured 2.8 ms/step vs 6+ on 2)
        cfg = dataclasses.replace(cfg, threads=1)
    result = train(cfg, out)
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
        if runs[label].get("stopped_by"):  # Ctrl-C: the run stopped cleanly; do not start the next one
            return runs
    compare_runs([out / label for label, _, _ in parsed], [label for label, _, _ in parsed], out)
    return runs


__all__ = ["RunResult", "compare_toy", "evaluate", "info", "load", "parse_variants", "plan_resume",
           "resolve_checkpoint", "resolve_device", "resume", "stylize", "toy_config", "train", "train_toy",
           "translate"]
