"""Configuration in three parts, each a dataclass: the loop's settings (:class:`TrainConfig`), the
data's (:class:`DataConfig`, ``data.NAME=value``) and the task's (each task's own options dataclass,
``task.NAME=value``), beside the model's constructor options (``model.NAME=value``).

Precedence, lowest first: dataclass defaults < preset file (``--config``) < command-line flags <
``key=value`` overrides. The names of the first release still work at the top level (``loss=hinge``,
``lambda_l1=100``, ``direction=BtoA``, ``image_size=32`` ...): they are aliases of the task and data
options. Every value is checked against its field's type here, in one place (:func:`check_value`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import GanforgeError

PRESET_DIR = Path(__file__).parent / "presets"
DEFAULT_BATCH = 64  # the batch size when none is given (capped at the dataset's size per process)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
LR_SCHEDULES = ("constant", "linear")
TRAINING_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "lbfgs")  # torch.optim optimisers a training phase can use

# ----------------------------------------------------------------------------- typed fields
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_value(value: Any, annotation: Any, name: str) -> Any:
    """``value`` as the type ``annotation`` names (int, float, bool, str, X | None, dict, tuple, list),
    or a GanforgeError naming the option, the bad value and what is accepted. Integers are accepted
    for floats (``beta1=0``) and numbers for strings (a folder named ``2020``)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_value(value, arg, name)
            except GanforgeError as e:
                errors.append(e)
        raise errors[0]
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise GanforgeError(f"{name} must be true or false (a yes/no setting), got {value!r}.")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                return int(value)
            raise GanforgeError(f"{name} must be an integer (a whole number such as 500), got {value!r}.")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GanforgeError(f"{name} must be a number (such as 0.0002, 2e-4 or 1), got {value!r}.")
        return float(value)
    if annotation is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise GanforgeError(f"{name} must be text (a name or a path such as 'fashion-mnist'), got {value!r}.")
        return str(value)
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise GanforgeError(f"{name} must be a mapping of names to values, got {value!r}.")
        return dict(value)
    if origin in (tuple, list) or annotation in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise GanforgeError(f"{name} must be a list, got {value!r}.")
        return (tuple if (origin or annotation) is tuple else list)(value)
    return value


def options_from_dict(cls: type, values: dict[str, Any] | None, what: str, strict: bool = True,
                      validate: bool = True):
    """Build the options dataclass ``cls`` from ``values``, each value checked against its field's type,
    then ``validate()`` if it has one. Unknown keys are an error, or (``strict=False``, a file written by
    another version) a warning and left out."""
    values = dict(values or {})
    hints = _hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        if strict:
            raise GanforgeError(f"Unknown option {unknown[0]!r} for {what}; its options are: {', '.join(fields)}.")
        warnings.warn(f"ganforge: ignoring unknown option(s) {', '.join(unknown)} of {what} "
                      "(written by another version of ganforge)", stacklevel=2)
    kwargs = {k: check_value(_number(values[k]), hints[k], f"{what} option {k}") for k in fields if k in values}
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None) if validate else None
    if check is not None:
        check()
    return obj


def check_sync_bn(device: str) -> None:
    """sync_bn=true needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only): one sentence for another device
    (``auto`` passes here; the trainer checks the device it resolves to)."""
    if device != "auto" and not device.startswith("cuda"):
        raise GanforgeError(f"sync_bn=true needs CUDA GPUs (PyTorch's SyncBatchNorm runs on GPUs only), but the "
                            f"device is {device}; leave sync_bn false there (each process then normalises by its "
                            "own batch).")


# ----------------------------------------------------------------------------- the three parts
@dataclass
class DataConfig:
    """What to train on (``data.NAME=value``; the names also work at the top level, ``data_root`` as root)."""

    name: str = "fashion-mnist"  # registered dataset name or a folder of images
    root: str | None = None  # where dataset files live (else $GANFORGE_DATA, system paths, download)
    split: str = "train"  # dataset split to train on
    image_size: int | None = None  # resize images to this size (None: the dataset's own size)
    channels: int | None = None  # convert images to this many channels (None: the dataset's own)
    # paired data (pix2pix): the network input A and target B
    direction: str = "AtoB"  # AtoB | BtoA (swap the halves of a paired dataset)
    load_size: int | None = None  # resize pairs to this before the random crop of image_size (None: 286/256 x)
    flip: bool = True  # random horizontal flips (the same for both halves of a pair)
    derive: str | None = None  # make pairs from unpaired images: edges | softedges | gray2color | lowres2 | ...
    serial_batches: bool = False  # unaligned data (cyclegan): item i pairs A[i % |A|] with B[i % |B|], not a random B

    def validate(self) -> None:
        for name in ("image_size", "channels", "load_size"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise GanforgeError(f"{name} must be positive, got {v!r}.")
        if self.direction not in ("AtoB", "BtoA"):
            raise GanforgeError(f"Unknown direction {self.direction!r}; choose AtoB or BtoA.")


@dataclass
class TrainConfig:
    """The training loop's settings, with the model, task and data it runs."""

    # what to train
    model: str = "dcgan"  # registered model name (ganforge info lists them)
    model_options: dict[str, Any] = field(default_factory=dict)  # model constructor options (model.X=...)
    task_options: dict[str, Any] = field(default_factory=dict)  # the model's task's options (task.X=...)
    data: DataConfig = field(default_factory=DataConfig)  # what to train on (data.X=...)
    # how long
    steps: int | None = None  # generator steps; one step = every phase of the task once (d_steps D updates + G)
    epochs: float | None = None  # alternatively, passes over the data (by D's real batches)
    # a time budget beside the steps: the run ends at the first step at which this many minutes of training (the
    # loop, its pictures and evaluations included) have passed in this process, with a checkpoint, as a stop request
    # ends it (stopped_by "time"); a resumed run has the budget again. Where the run ends depends on the machine's
    # speed; a learning-rate schedule follows the steps, so a run the budget ends early has not finished its decay.
    max_minutes: float | None = None
    batch_size: int | None = None  # images per batch per process; None: DEFAULT_BATCH, or the dataset when smaller
    # optimisers: the defaults of every phase (a task may choose another optimiser for a phase)
    optimizer: str = "adam"  # adam | adamw | sgd | rmsprop | lbfgs
    phase_optimizers: dict[str, str] = field(default_factory=dict)  # per phase: optimizer.D=sgd
    lr_g: float = 2e-4  # learning rate of the generator phase(s)
    lr_d: float = 2e-4  # learning rate of the discriminator phase(s)
    beta1: float = 0.5  # Adam / AdamW beta1
    beta2: float = 0.999  # Adam / AdamW beta2 (RMSprop's alpha is beta2 too)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay; L2 for the others
    momentum: float = 0.0  # SGD / RMSprop momentum
    lbfgs_max_iter: int = 20  # L-BFGS: function evaluations per optimiser step
    lr_schedule: str = "constant"  # constant | linear (constant, then linear decay to 0)
    lr_decay_start: float = 0.5  # fraction of training after which the linear decay starts
    ema_decay: float = 0.0  # EMA of generator weights (0 = off, e.g. 0.999)
    ema_start: int = 0  # step at which the EMA starts averaging (before: copies G)
    ema_bn_batches: int = 0  # re-estimate the EMA G's batch-norm statistics from this many batches before its
    # pictures, evaluations and checkpoints (0: keep the live G's statistics, copied every step)
    # hardware
    # fp32 | bf16 | fp16 (autocast; fp16 needs CUDA) | auto (bf16 on a CPU that computes in bf16 natively, else
    # fp32; train/precision.py). A run records the precision it used.
    precision: str = "fp32"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    channels_last: bool = False  # channels_last memory format for conv nets
    compile: bool = False  # torch.compile the networks
    threads: int | None = None  # CPU threads for PyTorch (None: chosen when the run starts, see ganforge.threads);
    # the run records the count it used, and a resumed run continues with it (thread counts change the floats)
    sync_bn: bool = False  # under torchrun on CUDA: batch-norm statistics over every process's batch (SyncBatchNorm)
    seed: int = 0  # seeds weights, noise, data order and the fixed sample noise
    # what to write
    log_every: int = 50  # steps between metrics.jsonl / TensorBoard / progress-bar updates
    sample_every: int = 500  # steps between fixed-noise sample grids (0 = only at the end)
    ckpt_every: int = 1000  # steps between checkpoints (0 = only at the end)
    keep_ckpts: int = 3  # how many recent checkpoints to keep
    n_samples: int = 64  # images in each fixed-noise grid
    # evaluation during training (keeps checkpoints/best by eval_metric)
    eval_every: int = 0  # steps between evaluations (0 = never)
    eval_metric: str = "fid"  # fid | kid | is | pr | dc: what "best" means
    eval_n: int = 2000  # generated (and reference) images per evaluation
    eval_extractor: str | None = None  # feature extractor (None: fmnist for small grayscale, else inception)
    progress: bool = True  # show a progress bar
    health_every: int = 10  # the doctor's rules over the rows so far, every this many log rows (0 = off)

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # TrainConfig(data="mnist")
            self.data = DataConfig(name=self.data)
        elif isinstance(self.data, dict):
            self.data = options_from_dict(DataConfig, self.data, "data")

    def validate(self) -> None:
        """Check every field's type, then its range: GanforgeError with one sentence for the first bad value."""
        hints = _hints(TrainConfig)
        for f in dataclasses.fields(self):
            if f.name != "data":
                setattr(self, f.name, check_value(getattr(self, f.name), hints[f.name], f.name))
        self.data = options_from_dict(DataConfig, dataclasses.asdict(self.data), "data")

        def positive(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            if v is not None and (math.isnan(v) or math.isinf(v) or (v < 0 if allow_zero else v <= 0)):
                sign = "zero or positive" if allow_zero else "positive"
                finite = " and finite" if math.isinf(v) else ""
                raise GanforgeError(f"{name} must be {sign}{finite}, got {v!r}.")

        for name in ("batch_size", "lr_g", "lr_d", "n_samples", "log_every", "keep_ckpts", "eval_n", "steps",
                     "epochs", "lbfgs_max_iter", "threads", "max_minutes"):
            positive(name)
        for name in ("sample_every", "ckpt_every", "ema_start", "ema_bn_batches", "eval_every", "weight_decay",
                     "momentum", "health_every"):
            positive(name, allow_zero=True)
        if self.steps is not None and self.epochs is not None:
            raise GanforgeError("Give either steps or epochs, not both.")
        if self.sync_bn:
            check_sync_bn(self.device)
        for name in ("beta1", "beta2", "ema_decay"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise GanforgeError(f"{name} must be in [0, 1), got {v!r}.")
        if not 0.0 <= self.lr_decay_start <= 1.0:
            raise GanforgeError(f"lr_decay_start must be in [0, 1], got {self.lr_decay_start!r}.")
        choices = (("precision", PRECISIONS), ("lr_schedule", LR_SCHEDULES), ("optimizer", TRAINING_OPTIMIZERS),
                   ("eval_metric", ("fid", "kid", "is", "pr", "dc")))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise GanforgeError(f"Unknown {name} {getattr(self, name)!r}; choose one of: {', '.join(allowed)}.")
        for phase, name in self.phase_optimizers.items():
            if name not in TRAINING_OPTIMIZERS:
                raise GanforgeError(f"Unknown optimizer {name!r} for phase {phase}; choose one of: "
                                    f"{', '.join(TRAINING_OPTIMIZERS)}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
DATA_FIELDS = {f.name for f in dataclasses.fields(DataConfig)}
# names of the first release, kept at the top level: they are now task or data options
TASK_ALIASES = ("loss", "d_steps", "gp_weight", "lambda_l1", "gan_weight", "augment", "r1_weight")
DATA_ALIASES = {"data_root": "root", "split": "split", "image_size": "image_size", "channels": "channels",
                "direction": "direction", "load_size": "load_size", "flip": "flip", "derive": "derive"}


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Read a preset by name (shipped in ganforge/presets) or by path to a YAML file."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = PRESET_DIR / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise GanforgeError(
                f"No preset file {name_or_path!r}; give a YAML path or one of: {', '.join(preset_names())}."
            )
        path = shipped
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise GanforgeError(f"Preset {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}.") from None
    if not isinstance(values, dict):
        raise GanforgeError(f"Preset {str(path)!r} must hold a mapping of option names to values.")
    return values


def parse_override(text: str) -> tuple[str, Any]:
    """``"lr_g=1e-4"`` -> ``("lr_g", 0.0001)``; values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise GanforgeError(f"Cannot read {text!r} as an override; write key=value (e.g. lr_g=1e-4).")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), _number(value)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf)$", re.IGNORECASE)


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read it, and nan/inf, as the float it means."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def apply_values(base: dict[str, Any], values: dict[str, Any], source: str, strict: bool = True) -> dict[str, Any]:
    """Merge ``values`` into the config dict ``base``. ``model.X`` / ``task.X`` / ``data.X`` keys (or the
    mappings ``model_options`` / ``task_options`` / ``data``) set model, task and data options; the top-level
    aliases of task and data options are accepted; ``optimizer.PHASE`` sets one phase's optimiser.
    Unknown keys are an error, or with ``strict=False`` (a file of another version) a warning."""
    out = dict(base)
    out["model_options"] = dict(out.get("model_options") or {})
    out["task_options"] = dict(out.get("task_options") or {})
    out["phase_optimizers"] = dict(out.get("phase_optimizers") or {})
    data = out.get("data")
    out["data"] = dataclasses.asdict(data) if isinstance(data, DataConfig) else dict(data or {})
    unknown = []
    for key, value in values.items():
        value = _number(value)
        head, dot, rest = key.partition(".")
        if dot and head in ("model", "task", "data", "optimizer") and rest:
            if head == "data" and rest not in DATA_FIELDS:
                raise GanforgeError(f"Unknown data option {rest!r} in {source}; the data options are: "
                                    f"{', '.join(sorted(DATA_FIELDS))}.")
            out[{"model": "model_options", "task": "task_options", "data": "data",
                 "optimizer": "phase_optimizers"}[head]][rest] = value
        elif key in ("model_options", "task_options", "phase_optimizers"):
            if not isinstance(value, dict):
                raise GanforgeError(f"{key} in {source} must be a mapping.")
            out[key].update({k: _number(v) for k, v in value.items()})
        elif key == "data":
            if isinstance(value, dict):  # a saved config
                out["data"].update({k: _number(v) for k, v in value.items() if k in DATA_FIELDS or strict})
                unknown += [f"data.{k}" for k in value if k not in DATA_FIELDS]
            else:
                out["data"]["name"] = value
        elif key in TASK_ALIASES:
            out["task_options"][key] = value
        elif key in DATA_ALIASES:
            out["data"][DATA_ALIASES[key]] = value
        elif key in FIELDS:
            out[key] = value
            other = "epochs" if key == "steps" else "steps"
            if key in ("steps", "epochs") and value is not None and values.get(other) is None:
                out[other] = None  # a later source's steps replaces an earlier source's epochs, and back
        elif strict:
            close = [f for f in sorted(FIELDS) if key.replace("-", "_") == f]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GanforgeError(f"Unknown option {key!r} in {source}{hint}; see the TrainConfig fields in the docs.")
        else:
            unknown.append(key)
    if unknown and not strict:
        warnings.warn(f"ganforge: ignoring unknown setting(s) {', '.join(unknown)} in {source} "
                      "(written by another version of ganforge)", stacklevel=2)
    elif unknown:
        raise GanforgeError(f"Unknown data option {unknown[0][5:]!r} in {source}; the data options are: "
                            f"{', '.join(sorted(DATA_FIELDS))}.")
    bad = sorted(set(out["data"]) - DATA_FIELDS)
    for k in bad:
        out["data"].pop(k)
    return out


def resolve_config(
    preset: str | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> TrainConfig:
    """Build and validate a TrainConfig from a preset, CLI flags (None = not given) and overrides.

    A preset's model and task options are for the preset's model: when the flags or overrides name another
    model, they are left out (a warning names them) and only the options given with the new model apply."""
    values = TrainConfig().to_dict()
    if preset:
        values = apply_values(values, load_preset(preset), f"preset {preset!r}")
    later = []
    if flags:
        later.append(({k: v for k, v in flags.items() if v is not None}, "the command line"))
    if overrides:
        later.append((dict(parse_override(o) for o in overrides), "the overrides"))
    final = _apply_all(values, later)
    dropped = [f"model.{k}={v}" for k, v in values["model_options"].items()]
    dropped += [f"task.{k}={v}" for k, v in values["task_options"].items()]
    if preset and final["model"] != values["model"] and dropped:
        warnings.warn(f"ganforge: the preset {preset!r} is for model {values['model']!r}; its options "
                      f"{', '.join(dropped)} are left out for model {final['model']!r} (give any of them "
                      "again to keep it)", stacklevel=2)
        final = _apply_all({**values, "model_options": {}, "task_options": {}}, later)
    return _build(final)


def _apply_all(values: dict[str, Any], sources: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """``values`` with each (settings, source name) of ``sources`` applied in order."""
    for given, source in sources:
        values = apply_values(values, given, source)
    return values


def _build(values: dict[str, Any]) -> TrainConfig:
    data = options_from_dict(DataConfig, values.pop("data"), "data")
    try:
        cfg = TrainConfig(data=data, **values)
    except TypeError as e:  # pragma: no cover - apply_values only passes known fields
        raise GanforgeError(f"Cannot build the configuration: {e}.") from None
    cfg.validate()
    return cfg


def config_from_dict(values: dict[str, Any], strict: bool = False) -> TrainConfig:
    """Rebuild a TrainConfig saved in a run folder or checkpoint, in today's layout or the first release's
    flat one. Unknown keys (a file written by another version) are left out with a warning."""
    return _build(apply_values(TrainConfig().to_dict(), values, "the saved config", strict=strict))
