"""One way to build a training run, used by ``ganforge.train``, the benchmarks and the tests.

``build_run(cfg, run_dir)`` resolves the task and data options, loads the data, builds the networks,
the model's inference object, the task and the trainer, and writes ``config.json``; ``Run.fit()``
trains. Nothing else constructs a :class:`Trainer`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import Checkpoint, holds_run, list_checkpoints, load_checkpoint, remove_stale_temporaries
from ..config import DEFAULT_BATCH, TrainConfig
from ..data import BatchStream
from ..errors import GanforgeError
from ..families import family_of, new_pipeline
from ..io import check_writable_parent, write_json
from ..pipelines import Pipeline, resolve_device
from ..tasks import LoopSettings, Task
from .distributed import DistInfo, cleanup, init_distributed
from .ema import EMA, make_ema
from .precision import resolve_precision
from .trainer import Trainer


def task_options(cfg: TrainConfig, strict: bool = True):
    """The options dataclass of ``cfg.model``'s task from ``cfg.task_options`` (types and names checked)."""
    return family_of(cfg.model).task_options(cfg, strict=strict)


def build_task(cfg: TrainConfig, model_options: dict[str, Any] | None = None, class_names=(),
               device: torch.device | str = "cpu", held_out: dict[str, Any] | None = None) -> Task:
    """The task of ``cfg.model`` around freshly built networks (``model_options`` complete, e.g. with the
    image size and channels the data would give), its options, its inference object and the family's held-out
    pictures, without data or a trainer: for looking at one phase's loss."""
    return assemble(cfg, model_options, class_names, device, held_out)[0]


def assemble(cfg: TrainConfig, model_options: dict[str, Any] | None = None, class_names=(),
             device: torch.device | str = "cpu", held_out: dict[str, Any] | None = None) -> tuple[Task, dict[str, EMA]]:
    """(the task, the EMA copies of its averaged networks) for :func:`build_task` and :func:`build_run`; the
    task's inference object generates with the EMA copies, which the trainer averages."""
    family = family_of(cfg.model)
    spec = family.model(cfg.model)
    model_cfg = spec.config(model_options if model_options is not None else cfg.model_options)
    nets = spec.build(model_cfg)
    ema = make_ema(nets, family.task.ema_nets, cfg.ema_decay, device, cfg.channels_last)
    settings = {"class_names": list(class_names), "train_batch_size": cfg.batch_size or DEFAULT_BATCH,
                "seed": cfg.seed}
    pipeline = new_pipeline(cfg.model, model_cfg, nets, {n: e.module for n, e in ema.items()}, settings, device)
    return family.task(nets, model_cfg, task_options(cfg), LoopSettings.of(cfg), pipeline, held_out), ema


def load_training_data(cfg: TrainConfig, split: str | None = None, augment: bool = True):
    """The data ``cfg`` trains on, as ``cfg.model``'s family loads it (images, pairs or two domains)."""
    return family_of(cfg.model).load_data(cfg, split or cfg.data.split, augment)


def fill_model_options(cfg: TrainConfig, data) -> dict[str, Any]:
    """``cfg.model_options`` completed from the data (image size, channels, classes) and checked against it."""
    image_size, channels = data.image_size, data.channels
    num_classes = len(data.class_names) if data.labels is not None else 0
    opts = dict(cfg.model_options)
    family = family_of(cfg.model)
    spec = family.model(cfg.model)
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    paired = (("input_nc", getattr(data, "channels_A", None)), ("output_nc", getattr(data, "channels_B", None)))
    for key, value in paired:
        if key in fields and value is not None:
            if key in opts and opts[key] != value:
                raise GanforgeError(f"Model option {key}={opts[key]} does not match the data's {value} channels.")
            opts[key] = value
    for key, value in (("image_size", image_size), ("channels", channels)):
        if key in opts and opts[key] != value:
            raise GanforgeError(
                f"Model option {key}={opts[key]} does not match the data ({key} {value}); "
                f"set {key}={opts[key]} (the top-level option) to convert the data instead."
            )
        if key in fields:
            opts[key] = value
    for key, value in family.task.model_defaults(task_options(cfg)).items():  # e.g. wgan-gp: a layer-norm critic
        if key in fields:
            opts.setdefault(key, value)
    opts = spec.complete(opts)  # defaults that depend on the data's size (pix2pix's netG)
    if "dim" in fields and opts.setdefault("dim", channels) != channels:  # toy points [N, dim]
        raise GanforgeError(f"Model option dim={opts['dim']} does not match the data, which is {channels}-D; "
                            "leave dim out to take it from the data.")
    if "num_classes" in fields and opts.get("num_classes", 0) and opts["num_classes"] != num_classes:
        raise GanforgeError(f"Model option num_classes={opts['num_classes']} does not match the data's "
                            f"{num_classes} classes.")
    if getattr(spec.config_cls, "needs_labels", False):
        if not num_classes:
            raise GanforgeError(f"{cfg.model} is class-conditional but the data {cfg.data.name!r} has no labels; use "
                                "a labelled dataset (fashion-mnist, mnist) or a folder with one subfolder per class.")
        opts["num_classes"] = num_classes
    if "cluster_sizes" in fields and opts.get("clusters"):  # a self-conditioned model: the clusters' shares
        opts["cluster_sizes"] = torch.bincount(data.labels, minlength=num_classes).tolist()
    return opts


def check_same_data(recorded: dict[str, Any], options: dict[str, Any], run_dir: Path) -> None:
    """A run resumes on the data it was trained on: each model option that the data fills (size, channels,
    classes, a self-conditioned model's cluster sizes) must be what the checkpoint recorded."""

    def said(key: str, value: Any) -> str:  # cluster sizes as the three largest clusters'
        if key == "cluster_sizes":
            return f"clusters of {', '.join(map(str, sorted(value, reverse=True)[:3]))}, ... images"
        return f"{key} {value}"

    for key in ("image_size", "channels", "input_nc", "output_nc", "dim", "num_classes", "cluster_sizes"):
        if key in recorded and key in options and json.loads(json.dumps(recorded[key])) != options[key]:
            raise GanforgeError(f"The run in {str(run_dir)!r} was trained on data with {said(key, recorded[key])}, "
                                f"but its data now gives {said(key, options[key])}; resume it with the data it was "
                                "trained on.")


def total_steps(cfg: TrainConfig, stream: BatchStream, task: Task) -> int:
    """cfg.steps, or the steps that make cfg.epochs passes over the data (by the batches a step draws)."""
    if cfg.steps is not None:
        return cfg.steps
    epochs = cfg.epochs if cfg.epochs is not None else 5.0
    per_step = (1 if task.shared_forward else 0) + sum(p.repeat for p in task.phases() if p.new_batch)
    return max(1, math.ceil(epochs * stream.batches_per_epoch / max(1, per_step)))


@dataclass
class RunResult:
    run_dir: Path
    step: int
    nets: dict[str, nn.Module]
    stopped_by: str | None = None  # why it ended before its last step: request | SIGINT | SIGTERM (else None)
    checkpoint: Path | None = None  # the newest step checkpoint this run wrote (main process)


@dataclass
class Run:
    """A training run ready to go: its resolved config, data stream, task, inference object and trainer."""

    cfg: TrainConfig  # resolved: task_options hold every option of the task
    run_dir: Path
    task: Task
    pipeline: Pipeline
    trainer: Trainer
    stream: BatchStream
    dist: DistInfo
    resumed: bool

    def fit(self) -> RunResult:
        """Train to the end (or a stop request); returns where it stopped."""
        self.trainer.fit(resumed=self.resumed)
        t = self.trainer
        return RunResult(self.run_dir, t.step, t.raw, t.stopped_by, t.last_checkpoint)

    def close(self) -> None:
        """Leave the process group (if this run joined one)."""
        cleanup(self.dist)


def check_run_folder(cfg: TrainConfig, run_dir: Path) -> None:
    """A new run is written only into a new or empty folder that can be created, never into a folder of
    the user's own files (or the training data): one GanforgeError sentence otherwise. A folder whose run
    stopped before its first checkpoint holds nothing to lose but that run's logs: the new run replaces them
    (True is returned; build_run says so when it replaces them)."""
    if holds_run(run_dir):
        if list_checkpoints(run_dir / "checkpoints"):
            raise GanforgeError(f"{str(run_dir)!r} already holds a run; continue it with: ganforge train --resume "
                                f"{run_dir} (or choose another --out).")
        others = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_LOGS)
        if others:
            raise GanforgeError(f"{str(run_dir)!r} holds a run that stopped before its first checkpoint, beside files "
                                f"that are not its own ({', '.join(others[:3])}); choose another --out.")
        return True
    if run_dir.exists() and not run_dir.is_dir():
        raise GanforgeError(f"--out {str(run_dir)!r} is a file; give a new or empty folder for the run.")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise GanforgeError(f"--out {str(run_dir)!r} is a folder that already holds files of its own; a run is "
                            "written only into a new or empty folder, so choose another --out.")
    data = Path(cfg.data.name).expanduser()
    if data.is_dir():
        inside = run_dir.resolve()
        if inside == data.resolve() or data.resolve() in inside.parents:
            raise GanforgeError(f"--out {str(run_dir)!r} lies inside the training data folder {str(data)!r}; "
                                "choose a run folder outside the data.")
    check_writable_parent(run_dir, "--out")
    return False


RUN_LOGS = frozenset({"config.json", "metrics.jsonl", "toy_metrics.jsonl", "samples", "tb", "checkpoints",
                      "real_samples.png", "samples.png", "losses.png", "progress.gif", "divergence.png"})


def build_run(cfg: TrainConfig, run_dir: str | Path, resume: bool | Checkpoint = False, write: bool = True,
              evaluate: bool = True, restart: bool = False) -> Run:
    """Everything a run needs, checked before anything is written; ``resume`` continues the run in
    ``run_dir`` from its latest checkpoint (or the Checkpoint given); ``restart`` starts again from step
    0 a run that stopped before its first checkpoint (its config.json and logs are replaced).
    ``write=False`` writes no config.json (benchmarks). Under torchrun (WORLD_SIZE > 1) every process
    calls this; a process restarted by torchrun (--max-restarts) resumes the run it finds by itself."""
    cfg.validate()
    run_dir = Path(run_dir)
    if not resume and not restart and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 \
            and list_checkpoints(run_dir / "checkpoints"):
        resume = True  # torchrun restarted the workers after a failure: continue from the latest checkpoint
    ckpt = None
    if resume:
        ckpt = resume if isinstance(resume, Checkpoint) else load_checkpoint(run_dir)
    elif restart:
        if list_checkpoints(run_dir / "checkpoints"):
            raise GanforgeError(f"{str(run_dir)!r} holds checkpoints; resume it rather than restarting it.")
    replacing = check_run_folder(cfg, run_dir) if write and not (resume or restart) else False
    family = family_of(cfg.model)
    cfg = dataclasses.replace(cfg, task_options=dataclasses.asdict(task_options(cfg)))
    family.model(cfg.model).config(cfg.model_options, validate=False)  # names and types, before the data loads
    device_probe = resolve_device(cfg.device)
    dist = init_distributed(device_probe.type)
    try:
        device = resolve_device(cfg.device, dist.local_rank)
        cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))  # recorded as used
        torch.manual_seed(cfg.seed)
        if cfg.eval_every and not family.can("eval"):
            raise GanforgeError(f"eval_every is for models that sample from noise; evaluate {cfg.model} on held-out "
                                "pairs with ganforge translate RUN --data DATA --split test.")
        data = load_training_data(cfg)
        # choices left to the data (augment=auto), made again alike on the same data when a run resumes
        # (torchrun's restarts pass the command line's options); a run of an older version recorded none
        recorded = ckpt.meta.get("task_options") if ckpt is not None else None
        chosen = family.task.options_for_data(task_options(cfg), len(data), recorded)
        cfg = dataclasses.replace(cfg, task_options=dataclasses.asdict(chosen))
        if cfg.batch_size is None:  # the default batch, or every image of a smaller folder
            cfg = dataclasses.replace(cfg, batch_size=max(1, min(DEFAULT_BATCH, len(data) // dist.world_size)))
        family.task.check_batch(chosen, cfg.batch_size)
        held = family.held_out(cfg, cfg.n_samples, data, family.load_data) if family.held_out else None
        options = fill_model_options(cfg, data)
        if ckpt is not None:
            check_same_data(ckpt.meta.get("model_options") or {}, options, run_dir)
        task, ema = assemble(cfg, options, data.class_names, device, held)
        model_cfg, pipeline = task.model_cfg, task.pipeline
        stream = BatchStream(data, cfg.batch_size, cfg.seed, dist.rank, dist.world_size)
        total = total_steps(cfg, stream, task)
        if dist.rank > 0:
            torch.manual_seed(cfg.seed + dist.rank)
        meta = {
            "model": cfg.model,
            "model_options": dataclasses.asdict(model_cfg),
            "task": family.name,
            "task_options": cfg.task_options,
            "pipeline": pipeline.settings(),
            "dataset": {"name": data.name or cfg.data.name, "image_size": data.image_size, "channels": data.channels,
                        "class_names": data.class_names, "size": len(data),
                        **({"channels_A": data.channels_A} if hasattr(data, "channels_A") else {})},
            "total_steps": total,
        }
        evaluator = None
        if cfg.eval_every and evaluate:
            from ..metrics.evaluation import training_evaluator

            evaluator = training_evaluator(data, cfg.eval_metric, min(cfg.eval_n, len(data)), cfg.eval_extractor,
                                           device, seed=cfg.seed) if dist.is_main else (lambda sample: None)
        trainer = Trainer(task, cfg, stream, run_dir, meta, total, device, dist, resume=ckpt, evaluator=evaluator,
                          ema=ema)
        if dist.is_main and write:  # only once everything is checked, so a refused run leaves no folder behind
            if restart or replacing:  # the logs of the attempt that stopped before its first checkpoint
                if replacing:
                    warnings.warn(f"{str(run_dir)!r} held a run that stopped before its first checkpoint; this new "
                                  "run replaces its logs", stacklevel=2)
                for name in RUN_LOGS - {"config.json", "checkpoints"}:
                    target = run_dir / name
                    shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
            remove_stale_temporaries(run_dir / "checkpoints")  # left by a process killed while it wrote one
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise GanforgeError(f"Cannot create the run folder {str(run_dir)!r} ({e.strerror}).") from None
            write_json(run_dir / "config.json", {**meta, "config": cfg.to_dict(), "world_size": dist.world_size})
        return Run(cfg, run_dir, task, pipeline, trainer, stream, dist, ckpt is not None)
    except BaseException:
        cleanup(dist)
        raise
