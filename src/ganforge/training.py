"""Training, resuming and what a resumed run may change: the part of the public API that runs the loop
(``ganforge.train``, ``ganforge.resume``, ``ganforge.api.plan_resume``)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from .config import DATA_ALIASES, TASK_ALIASES, TrainConfig, config_from_dict, parse_override
from .doctor.live import watch
from .errors import GanforgeError
from .families import family_of
from .pipelines import resolve_device
from .threads import use_threads
from .train.events import EVENTS
from .train.run import RunResult, build_run


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False,
          events: Mapping[str, Callable[..., Any]] | None = None) -> RunResult:
    """Train ``cfg`` into ``run_dir`` (or continue the run there when ``resume``).

    ``events``: {event name: function} subscribed to the trainer's events before the loop starts (the names and
    arguments of :mod:`ganforge.train.events`, e.g. ``{"on_checkpoint": lambda path, step: ...}``).

    Under torchrun (WORLD_SIZE > 1) every process calls this; gradients are averaged with DDP and
    only rank 0 writes files. CPU threads: ``cfg.threads``, else the policy of :mod:`ganforge.threads`
    (a resumed run continues with the count it recorded); the run records the count it used.
    """
    unknown = [name for name in (events or {}) if name not in EVENTS]
    if unknown:  # before anything is written
        raise GanforgeError(f"Unknown training event {unknown[0]!r}; the events are {', '.join(EVENTS)}.")
    recorded = (load_checkpoint(run_dir).meta.get("config") or {}).get("threads") if resume else None
    asked = cfg.threads if cfg.threads is not None or resume else family_of(cfg.model).threads
    with use_threads(asked, recorded, announce=_says_threads(cfg)) as n:
        run = build_run(dataclasses.replace(cfg, threads=n), run_dir, resume=resume)
        watch(run.trainer)  # the doctor's rules every health_every log rows (main process)
        for name, fn in (events or {}).items():
            run.trainer.events.subscribe(name, fn)
        try:
            return run.fit()
        finally:
            run.close()


def _says_threads(cfg: TrainConfig) -> bool:
    """Whether this process says its choice of CPU threads: training on the CPU, rank 0 under torchrun."""
    return os.environ.get("RANK", "0") == "0" and resolve_device(cfg.device).type == "cpu"


RESUME_CHANGES = ("steps", "epochs", "max_minutes", "progress", "log_every", "sample_every", "ckpt_every",
                  "keep_ckpts", "device", "precision", "eval_every", "eval_n", "threads",
                  "health_every")  # what a continued run may change


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
        watch(run.trainer)
        try:
            return run.fit()
        finally:
            run.close()


__all__ = ["RESUME_CHANGES", "RunResult", "plan_resume", "resume", "train"]
