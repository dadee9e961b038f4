"""The base of every inference object: networks, EMA choice, device, and the tensor signature."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import DataConfig, apply_values
from ..errors import GanforgeError


def run_padded(fn, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``fn(x)`` for a fully convolutional network whose sides must be multiples of ``multiple``: x is padded
    by reflection (replication when a side is too short to reflect), run, and cropped back to its size."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return fn(x)
    pad_mode = "reflect" if ph < h and pw < w else "replicate"
    y = fn(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=pad_mode))
    return y[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]


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
    except (RuntimeError, TypeError):
        raise GanforgeError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise GanforgeError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError(f"Device {name!r} was asked for but CUDA is not available here; use cpu or auto.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GanforgeError(f"Device {name!r} was asked for but MPS is not available here; use cpu or auto.")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


class NotOffered(GanforgeError, AttributeError):
    """A model asked for what only another kind of model does."""


OTHER_KINDS_OFFER = {  # method -> who has it
    "sample": "models that sample from noise have it (ganforge sample); translate images with ganforge translate, "
              "stylise photos with ganforge stylize --model RUN",
    "sample_batch": "models that sample from noise have it",
    "fixed_inputs": "models that sample from noise have it",
    "inputs": "models that sample from noise have it",
    "class_index": "class-conditional models that sample from noise have it",
    "translate": "image-to-image models have it (ganforge translate)",
    "cycle": "two-way translation models have it",
    "stylize": "fast-style models have it (ganforge stylize --model RUN)",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a pipeline's network: shape with -1 for free axes, dtype, value range."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" | "int64"
    range: tuple[float, float] | None = None  # value range (None: any)
    dynamic: tuple[int, ...] = (0,)  # axes that may change (batch; spatial axes for translation networks)


class Pipeline:
    """A trained model ready to generate. Subclasses say what its inputs are and how it generates.

    ``nets`` are the raw networks by name (G, D ...), ``ema`` their EMA copies; ``settings`` what the
    pipeline saves in every checkpoint's meta.json under "pipeline" (see :meth:`settings`)."""

    kind = "base"
    sample_net = "G"  # the network that generates

    def __init__(self, model: str, model_cfg, nets: dict[str, nn.Module], ema: dict[str, nn.Module],
                 settings: dict[str, Any], device: torch.device, path: Path | None = None, step: int | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.name = model
        self.model_cfg = model_cfg
        self.nets = nets
        self.ema = dict(ema)
        self.device = device
        self.class_names: list[str] = [str(c) for c in settings.get("class_names") or []]
        self.path = Path(path) if path is not None else None  # the checkpoint (folder or file) it was loaded from
        self.step = step  # the training step of that checkpoint (None: a reference file or a training run)
        self.meta: dict[str, Any] = dict(meta or {})

    # ------------------------------------------------------------------ what is saved
    def settings(self) -> dict[str, Any]:
        """What ``load`` needs besides the model options, written to meta.json["pipeline"]."""
        return {"kind": self.kind, "class_names": list(self.class_names)}

    @classmethod
    def settings_from_meta(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """The settings saved in ``meta``; checkpoints of the first release have no "pipeline" entry, so
        they are read from the dataset record."""
        saved = dict(meta.get("pipeline") or {})
        saved.setdefault("class_names", list((meta.get("dataset") or {}).get("class_names") or []))
        return saved

    def data_config(self) -> DataConfig:
        """The data the model was trained on (from the saved training config, either layout)."""
        raw = (self.meta.get("config") or {})
        values = apply_values({"data": {}}, {k: v for k, v in raw.items() if k in (
            "data", "data_root", "split", "image_size", "channels", "direction", "load_size", "flip", "derive")},
            "the saved config", strict=False)
        return DataConfig(**values["data"])

    # ------------------------------------------------------------------ networks
    def uses_ema(self, ema: bool | None = None) -> bool:
        """Whether generating uses the EMA weights: by default when there are any."""
        return (self.sample_net in self.ema) if ema is None else bool(ema)

    def generator(self, ema: bool | None = None) -> nn.Module:
        """The generating network: its EMA copy (``ema`` True, or None when one exists) or the raw one."""
        if self.uses_ema(ema) and self.sample_net not in self.ema:
            where = f"{str(self.path)!r}" if self.path else "This model"
            raise GanforgeError(f"{where} has no EMA weights (train with ema_decay > 0); use --no-ema.")
        return self.ema[self.sample_net] if self.uses_ema(ema) else self.nets[self.sample_net]

    def to(self, device: str | torch.device) -> Pipeline:
        self.device = torch.device(device)
        for group in (self.nets, self.ema):
            for net in group.values():
                net.to(self.device)
        return self

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else f"this {self.name} model"

    def __getattr__(self, name: str):
        """What another kind of model offers (``sample`` of a translation model ...): one sentence, not an
        AttributeError from deep inside (it is one too, so ``hasattr`` stays False)."""
        if name in OTHER_KINDS_OFFER:
            where = repr(str(self.__dict__["path"])) if self.__dict__.get("path") is not None else "This model"
            raise NotOffered(f"{where} is a {self.__dict__.get('name', 'ganforge')} model ({self.kind}); it has no "
                             f"{name}(): {OTHER_KINDS_OFFER[name]}.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def describe(self) -> dict[str, Any]:
        """A short JSON-able summary of what the model is and takes (for records, the studio, the CLI)."""
        return {"model": self.name, "kind": self.kind, "step": self.step, "has_ema": bool(self.ema)}

    # ------------------------------------------------------------------ the tensor signature
    def input_specs(self) -> list[TensorSpec]:
        raise NotImplementedError

    def output_spec(self) -> TensorSpec:
        raise NotImplementedError

    def example_inputs(self, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        """Inputs of the signature for a batch of ``n`` (CPU tensors)."""
        raise NotImplementedError

    def forward(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's output for ``inputs`` (on the net's device), as the signature describes it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, step={self.step}, path={str(self.path) if self.path else None})"


class ImageToImagePipeline(Pipeline):
    """A pipeline whose network maps images to images, G(A), with outputs clamped to [-1, 1] (stylisation,
    super-resolution). Subclasses say how uint8 images go in and out."""

    def forward(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """G(A) clamped: A [N, C, h, w] in [-1, 1] -> the network's images in [-1, 1]."""
        return net(inputs["A"]).clamp(-1, 1)

    def generate(self, inputs: dict[str, torch.Tensor], ema: bool | None = None,
                 net: nn.Module | None = None) -> torch.Tensor:
        """G(A) in [-1, 1], A moved to the network's device."""
        net = net if net is not None else self.generator(ema)
        return self.forward(net, {"A": inputs["A"].to(next(net.parameters()).device)})
