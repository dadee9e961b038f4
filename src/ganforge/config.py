"""Training configuration: one dataclass, presets as YAML, ``key=value`` overrides, checked in one place.

Precedence, lowest first: dataclass defaults < preset file (``--config``) < command-line flags <
``key=value`` overrides. ``model.NAME=VALUE`` sets a model constructor option (``model_options``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import GanforgeError

PRESET_DIR = Path(__file__).parent / "presets"
PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear")


@dataclass
class TrainConfig:
    # what to train
    model: str = "dcgan"  # registered model name (ganforge info lists them)
    model_options: dict[str, Any] = field(default_factory=dict)  # model constructor options (model.X=...)
    data: str = "fashion-mnist"  # registered dataset name or a folder of images
    data_root: str | None = None  # where dataset files live (else $GANFORGE_DATA, system paths, download)
    split: str = "train"  # dataset split to train on
    image_size: int | None = None  # resize images to this size (None: the dataset's own size)
    channels: int | None = None  # convert images to this many channels (None: the dataset's own)
    # paired data (pix2pix): the network input A and target B
    direction: str = "AtoB"  # AtoB | BtoA (swap the halves of a paired dataset)
    load_size: int | None = None  # resize pairs to this before the random crop of image_size (None: 286/256 x)
    flip: bool = True  # random horizontal flips (the same for both halves of a pair)
    derive: str | None = None  # make pairs from unpaired images: edges | softedges | gray2color | lowres2 | ...
    # how long
    steps: int | None = None  # generator steps; one step = d_steps D updates + one G update
    epochs: float | None = None  # alternatively, passes over the data (by D's real batches)
    batch_size: int = 64  # images per batch per process
    # the game
    loss: str = "nonsaturating"  # minimax | nonsaturating | lsgan | hinge | wgan-gp
    d_steps: int = 1  # k: discriminator updates per generator update (the lectures' algorithm)
    gp_weight: float = 10.0  # gradient penalty weight for wgan-gp
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    lr_schedule: str = "constant"  # constant | linear (constant, then linear decay to 0)
    lr_decay_start: float = 0.5  # fraction of training after which the linear decay starts
    lambda_l1: float = 100.0  # pix2pix: weight of the L1 term |G(A) - B|
    gan_weight: float = 1.0  # pix2pix: weight of the GAN term (0 = the U-Net trained with L1 alone)
    ema_decay: float = 0.0  # EMA of generator weights (0 = off, e.g. 0.999)
    ema_start: int = 0  # step at which the EMA starts averaging (before: copies G)
    # hardware
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 needs CUDA)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    channels_last: bool = False  # channels_last memory format for conv nets
    compile: bool = False  # torch.compile the networks
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

    def __post_init__(self) -> None:
        for name in ("gp_weight", "lr_g", "lr_d", "beta1", "beta2", "lr_decay_start", "ema_decay", "lambda_l1",
                     "gan_weight"):
            v = getattr(self, name)
            if isinstance(v, int) and not isinstance(v, bool):  # beta1=0 on the command line is an int
                setattr(self, name, float(v))

    def validate(self) -> None:
        """Raise GanforgeError with one sentence for the first invalid value."""
        def positive(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            bad = v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)
                                     or math.isnan(v) or (v < 0 if allow_zero else v <= 0))
            if bad:
                sign = "zero or positive" if allow_zero else "positive"
                raise GanforgeError(f"{name} must be {sign}, got {v!r}.")

        for name in ("batch_size", "d_steps", "lr_g", "lr_d", "n_samples", "log_every", "keep_ckpts", "eval_n"):
            positive(name)
        for name in ("gp_weight", "sample_every", "ckpt_every", "ema_start", "eval_every", "lambda_l1", "gan_weight"):
            positive(name, allow_zero=True)
        for name in ("steps", "epochs", "image_size", "channels", "load_size"):
            positive(name)
        for name in ("batch_size", "d_steps", "n_samples", "log_every", "keep_ckpts", "sample_every",
                     "ckpt_every", "ema_start", "eval_every", "eval_n"):
            if not isinstance(getattr(self, name), int):
                raise GanforgeError(f"{name} must be an integer, got {getattr(self, name)!r}.")
        if self.steps is not None and self.epochs is not None:
            raise GanforgeError("Give either steps or epochs, not both.")
        if self.steps is not None and not isinstance(self.steps, int):
            raise GanforgeError(f"steps must be an integer, got {self.steps!r}.")
        for name in ("beta1", "beta2", "ema_decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise GanforgeError(f"{name} must be in [0, 1), got {v!r}.")
        if not 0.0 <= self.lr_decay_start <= 1.0:
            raise GanforgeError(f"lr_decay_start must be in [0, 1], got {self.lr_decay_start!r}.")
        if self.direction not in ("AtoB", "BtoA"):
            raise GanforgeError(f"Unknown direction {self.direction!r}; choose AtoB or BtoA.")
        if not isinstance(self.flip, bool):
            raise GanforgeError(f"flip must be true or false, got {self.flip!r}.")
        if self.precision not in PRECISIONS:
            raise GanforgeError(f"Unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise GanforgeError(
                f"Unknown lr_schedule {self.lr_schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}."
            )
        if self.eval_metric not in ("fid", "kid", "is", "pr", "dc"):
            raise GanforgeError(f"Unknown eval_metric {self.eval_metric!r}; choose one of: fid, kid, is, pr, dc.")
        if not isinstance(self.model_options, dict):
            raise GanforgeError("model_options must be a mapping of model option names to values.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


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


def apply_values(base: dict[str, Any], values: dict[str, Any], source: str) -> dict[str, Any]:
    """Merge ``values`` into the config dict ``base``; ``model.X`` keys go into model_options."""
    out = dict(base)
    out["model_options"] = dict(out.get("model_options") or {})
    for key, value in values.items():
        value = _number(value)
        if key.startswith("model."):
            out["model_options"][key[len("model."):]] = value
        elif key == "model_options":
            if not isinstance(value, dict):
                raise GanforgeError(f"model_options in {source} must be a mapping.")
            out["model_options"].update({k: _number(v) for k, v in value.items()})
        elif key in FIELDS:
            out[key] = value
            other = "epochs" if key == "steps" else "steps"
            if key in ("steps", "epochs") and value is not None and values.get(other) is None:
                out[other] = None  # a later source's steps replaces an earlier source's epochs, and back
        else:
            close = [f for f in sorted(FIELDS) if key.replace("-", "_") == f]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GanforgeError(f"Unknown option {key!r} in {source}{hint}; see the TrainConfig fields in the docs.")
    return out


def resolve_config(
    preset: str | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> TrainConfig:
    """Build and validate a TrainConfig from a preset, CLI flags (None = not given) and overrides."""
    values = TrainConfig().to_dict()
    if preset:
        values = apply_values(values, load_preset(preset), f"preset {preset!r}")
    if flags:
        values = apply_values(values, {k: v for k, v in flags.items() if v is not None}, "the command line")
    if overrides:
        values = apply_values(values, dict(parse_override(o) for o in overrides), "the overrides")
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig saved in a run folder or checkpoint (unknown keys are an error)."""
    cfg = TrainConfig(**apply_values(TrainConfig().to_dict(), values, "the saved config"))
    cfg.validate()
    return cfg
