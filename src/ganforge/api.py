"""The public Python API; the command line is a thin layer over these functions.

    import ganforge
    cfg = ganforge.resolve_config("fmnist-demo", overrides=["steps=200"])
    run = ganforge.train(cfg, "runs/demo")
    model = ganforge.load("runs/demo")
    images = model.sample(16, seed=1)          # uint8 [16, H, W, C]
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import TrainConfig, config_from_dict
from .data import BatchStream, load_dataset, resolve_class
from .errors import GanforgeError
from .models import MODELS, count_parameters, model_config
from .tasks import TASKS, Task
from .train.checkpoint import Checkpoint, load_checkpoint, load_state_into, resolve_checkpoint
from .train.distributed import cleanup, init_distributed
from .train.trainer import Trainer
from .viz import to_uint8


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """auto -> cuda (the process's local rank under torchrun) if available, else mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanforgeError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError(f"Device {name!r} was asked for but CUDA is not available here; use cpu or auto.")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


def info(model: str, options: dict[str, Any] | None = None) -> dict[str, int]:
    """Parameter count of each network of ``model`` built with ``options``, e.g. {"G": ..., "D": ...}."""
    spec = MODELS.get(model)
    nets = spec.build(model_config(model, options))
    return {name: count_parameters(net) for name, net in nets.items()}


def load_training_data(cfg: TrainConfig, task_cls: type[Task], split: str | None = None, augment: bool = True):
    """The data ``cfg`` trains on: ImageData, or PairedData for paired tasks (pix2pix)."""
    split = split or cfg.split
    if getattr(task_cls, "data_kind", "images") == "paired":
        from .data.paired import load_paired

        # without augmentation: resized straight to image_size, no crop, no flip
        load_size, flip = (cfg.load_size, cfg.flip) if augment else (cfg.image_size, False)
        return load_paired(cfg.data, cfg.data_root, split, direction=cfg.direction, load_size=load_size,
                           crop_size=cfg.image_size, flip=flip, channels_B=cfg.channels, derive=cfg.derive)
    if cfg.derive:
        raise GanforgeError(f"derive={cfg.derive} makes input/target pairs; it applies to paired models such as "
                            f"pix2pix, not to {cfg.model}.")
    return load_dataset(cfg.data, cfg.data_root, split, cfg.image_size, cfg.channels)


def held_out_pairs(cfg: TrainConfig, task_cls: type[Task], n: int, train_data) -> dict[str, torch.Tensor]:
    """The first ``n`` pairs of the held-out split (test, else val, else train) without augmentation, with
    the training data's size and channels."""
    from .data import convert_images

    cfg = dataclasses.replace(cfg, image_size=train_data.image_size)
    for split in ("test", "val", "train"):
        try:
            data = load_training_data(cfg, task_cls, split, augment=False)
        except GanforgeError:
            continue
        return {"A": convert_images(data.A[:n].clone(), None, train_data.channels_A),
                "B": convert_images(data.B[:n].clone(), None, train_data.channels_B)}
    raise GanforgeError(f"No split of {cfg.data!r} could be read for the sample pictures.")


def _fill_model_options(cfg: TrainConfig, data) -> dict[str, Any]:
    image_size, channels = data.image_size, data.channels
    num_classes = len(data.class_names) if data.labels is not None else 0
    opts = dict(cfg.model_options)
    fields = {f.name for f in dataclasses.fields(MODELS.get(cfg.model).config_cls)}
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
    if "dim" in fields and opts.setdefault("dim", channels) != channels:  # toy points [N, dim]
        raise GanforgeError(f"Model option dim={opts['dim']} does not match the data, which is {channels}-D; "
                            "leave dim out to take it from the data.")
    if "num_classes" in fields and opts.get("num_classes", 0) and opts["num_classes"] != num_classes:
        raise GanforgeError(f"Model option num_classes={opts['num_classes']} does not match the data's "
                            f"{num_classes} classes.")
    if getattr(MODELS.get(cfg.model).config_cls, "needs_labels", False):
        if not num_classes:
            raise GanforgeError(f"{cfg.model} is class-conditional but the data {cfg.data!r} has no labels; use a "
                                "labelled dataset (fashion-mnist, mnist) or a folder with one subfolder per class.")
        opts["num_classes"] = num_classes
    return opts


def _total_steps(cfg: TrainConfig, stream: BatchStream, task: Task) -> int:
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


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> RunResult:
    """Train ``cfg`` into ``run_dir`` (or continue the run there when ``resume``).

    Under torchrun (WORLD_SIZE > 1) every process calls this; gradients are averaged with DDP and
    only rank 0 writes files.
    """
    cfg.validate()
    run_dir = Path(run_dir)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(run_dir)
    elif (run_dir / "checkpoints").is_dir() or (run_dir / "config.json").is_file():
        raise GanforgeError(
            f"{str(run_dir)!r} already holds a run; continue it with --resume {run_dir} or choose another --out."
        )
    MODELS.get(cfg.model)
    device_probe = resolve_device(cfg.device)
    dist = init_distributed(device_probe.type)
    try:
        device = resolve_device(cfg.device, dist.local_rank)
        torch.manual_seed(cfg.seed)
        spec = MODELS.get(cfg.model)
        task_cls = TASKS.get(spec.task)
        if getattr(task_cls, "data_kind", "images") == "paired" and cfg.eval_every:
            raise GanforgeError(f"eval_every is for models that sample from noise; evaluate {cfg.model} on held-out "
                                "pairs with ganforge translate RUN --data DATA --split test.")
        data = load_training_data(cfg, task_cls)
        model_cfg = model_config(cfg.model, _fill_model_options(cfg, data))
        nets = spec.build(model_cfg)
        task: Task = task_cls(nets, model_cfg, cfg)
        task.class_names = list(data.class_names)
        if getattr(task_cls, "data_kind", "images") == "paired":
            task.pairs = held_out_pairs(cfg, task_cls, cfg.n_samples, data)
        stream = BatchStream(data, cfg.batch_size, cfg.seed, dist.rank, dist.world_size)
        total = _total_steps(cfg, stream, task)
        if dist.rank > 0:
            torch.manual_seed(cfg.seed + dist.rank)
        meta = {
            "model": cfg.model,
            "model_options": dataclasses.asdict(model_cfg),
            "task": spec.task,
            "dataset": {"name": data.name or cfg.data, "image_size": data.image_size, "channels": data.channels,
                        "class_names": data.class_names, "size": len(data),
                        **({"channels_A": data.channels_A} if hasattr(data, "channels_A") else {})},
            "total_steps": total,
        }
        evaluator = None
        if cfg.eval_every:
            from .metrics.evaluation import training_evaluator

            evaluator = training_evaluator(data, cfg.eval_metric, min(cfg.eval_n, len(data)), cfg.eval_extractor,
                                           device, seed=cfg.seed) if dist.is_main else (lambda sample: None)
        trainer = Trainer(task, cfg, stream, run_dir, meta, total, device, dist, resume=ckpt, evaluator=evaluator)
        if dist.is_main:  # only once everything is checked, so a refused run leaves no folder behind
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_json(run_dir / "config.json", {**meta, "config": cfg.to_dict(), "world_size": dist.world_size})
        trainer.fit(resumed=ckpt is not None)
        return RunResult(run_dir, trainer.step, trainer.raw)
    finally:
        cleanup(dist)


def resume(run_dir: str | Path, changes: dict[str, Any] | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its latest checkpoint, with its saved config.

    ``changes`` may lengthen or shorten it (steps / epochs) or change what is written (progress,
    log/sample/checkpoint intervals); the rest must stay as it was for an exact continuation.
    """
    ckpt = load_checkpoint(run_dir)
    values = dict(ckpt.meta.get("config") or {})
    allowed = {"steps", "epochs", "progress", "log_every", "sample_every", "ckpt_every", "keep_ckpts", "device"}
    for key, value in (changes or {}).items():
        if value is None:
            continue
        if key not in allowed and values.get(key) != value:
            raise GanforgeError(f"Cannot change {key} when resuming; only {', '.join(sorted(allowed))} may change.")
        values[key] = value
    if changes and changes.get("steps") is not None:
        values["epochs"] = None
    if changes and changes.get("epochs") is not None:
        values["steps"] = None
    return train(config_from_dict(values), run_dir, resume=True)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


class LoadedModel:
    """A trained model read back from a checkpoint: its networks, config and task."""

    def __init__(self, ckpt: Checkpoint, device: torch.device) -> None:
        meta = ckpt.meta
        self.path = ckpt.path
        self.meta = meta
        self.name = meta.get("model")
        self.step = meta.get("step")
        spec = MODELS.get(self.name)
        self.model_cfg = model_config(self.name, meta.get("model_options") or {})
        self.nets = spec.build(self.model_cfg)
        for net_name, net in self.nets.items():
            load_state_into(net, ckpt.weights.get(net_name, {}), net_name, ckpt.path)
            net.to(device).eval()
        self.ema: dict[str, nn.Module] = {}
        for key, sd in ckpt.weights.items():
            if key.startswith("ema."):
                net_name = key[4:]
                e = spec.build(self.model_cfg)[net_name]
                load_state_into(e, sd, f"EMA {net_name}", ckpt.path)
                self.ema[net_name] = e.to(device).eval()
        self.config = config_from_dict(meta.get("config") or {})
        self.task: Task = TASKS.get(spec.task)(self.nets, self.model_cfg, self.config)
        self.device = device
        self.class_names: list[str] = list((meta.get("dataset") or {}).get("class_names") or [])
        self.task.class_names = self.class_names
        self._inputs_key: tuple[int, int] | None = None
        self._inputs: dict[str, torch.Tensor] = {}

    def uses_ema(self, ema: bool | None = None) -> bool:
        """Whether sampling uses EMA weights: by default when the checkpoint has them."""
        return (self.task.sample_net in self.ema) if ema is None else ema

    def generator(self, ema: bool | None = None) -> nn.Module:
        name = self.task.sample_net
        if self.uses_ema(ema) and name not in self.ema:
            raise GanforgeError(f"{str(self.path)!r} has no EMA weights (train with ema_decay > 0); use --no-ema.")
        return self.ema[name] if self.uses_ema(ema) else self.nets[name]

    @property
    def num_classes(self) -> int:
        """Number of classes of a class-conditional model (0 for an unconditional one)."""
        return int(getattr(self.task, "num_classes", 0))

    def class_index(self, name_or_index: str | int) -> int:
        """The label index of a class given by name (case-insensitive) or index."""
        k = self.num_classes
        if not k:
            raise GanforgeError(f"{str(self.path)!r} is an unconditional {self.name} model; it takes no class.")
        return resolve_class(name_or_index, self.class_names or [str(i) for i in range(k)])

    def inputs(self, n: int, seed: int, label: int | None = None) -> dict[str, torch.Tensor]:
        """The generator inputs of ``sample(n, seed, label=...)`` (CPU tensors; z and, if conditional, y)."""
        if self._inputs_key != (n, seed):
            self._inputs = self.task.fixed_inputs(n, seed)
            self._inputs_key = (n, seed)
        inputs = dict(self._inputs)
        if label is not None:
            if not self.num_classes:
                raise GanforgeError(f"{str(self.path)!r} is an unconditional {self.name} model; it takes no class.")
            inputs["y"] = torch.full((n,), int(label), dtype=torch.long)
        return inputs

    @torch.no_grad()
    def sample_batch(self, n: int, seed: int, start: int, count: int, ema: bool | None = None,
                     label: int | None = None) -> torch.Tensor:
        """Images ``start`` .. ``start + count`` of ``sample(n, seed)`` as uint8 [count, C, H, W]."""
        if not self.task.makes_images:
            raise GanforgeError(f"{str(self.path)!r} is a {self.name} run: it generates points, not images, so it "
                                "cannot be sampled as images or evaluated; its pictures are in the run's samples/.")
        if not getattr(self.task, "samples_from_noise", True):
            raise GanforgeError(f"{str(self.path)!r} is a {self.name} model: it translates input images rather than "
                                "sampling noise; use ganforge translate.")
        chunk = {k: v[start:start + count].to(self.device) for k, v in self.inputs(n, seed, label).items()}
        return to_uint8(self.task.generate(self.generator(ema), chunk))

    def sample(self, n: int, seed: int = 0, ema: bool | None = None, batch_size: int = 256,
               label: int | str | None = None) -> np.ndarray:
        """n images as uint8 [n, H, W, C], reproducible for a given seed.

        Conditional models: by default rows of classes (image i has class (i // columns) % K, see
        ``task.fixed_inputs``); ``label`` (a class name or index) makes every image that class."""
        if n < 1:
            raise GanforgeError(f"The number of samples must be positive, got {n}.")
        index = None if label is None else self.class_index(label)  # an int is an index, text a name first
        out = [self.sample_batch(n, seed, s, min(batch_size, n - s), ema, index) for s in range(0, n, batch_size)]
        return torch.cat(out).permute(0, 2, 3, 1).numpy()


def load(path: str | Path, which: str = "latest", device: str = "cpu") -> LoadedModel:
    """Load a run folder (its latest/best/step-N checkpoint) or a checkpoint folder."""
    return LoadedModel(load_checkpoint(path, which), resolve_device(device))


__all__ = ["LoadedModel", "RunResult", "info", "load", "resolve_checkpoint", "resolve_device", "resume", "train"]
