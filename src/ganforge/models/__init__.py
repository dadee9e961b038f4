"""Networks, registered by short name. Models know nothing about training.

A registered model is a :class:`ModelSpec`: a dataclass of constructor options (recorded in every
run and checkpoint), a function that builds the named networks from it, and the task that trains them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..config import options_from_dict
from ..registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_cls: type
    build: Callable[[Any], dict[str, nn.Module]]
    task: str
    description: str
    pipeline: str = "noise"  # the inference object that generates with it (ganforge.pipelines)


MODELS: Registry[ModelSpec] = Registry("model")


def model_config(name: str, options: dict[str, Any] | None = None, strict: bool = True, validate: bool = True):
    """Build the config dataclass of model ``name`` from a dict of options, checking every key and type
    (``strict=False``: unknown keys, from a checkpoint of another version, are left out with a warning;
    ``validate=False``: names and types only, for options that the data will complete)."""
    spec = MODELS.get(name)
    return options_from_dict(spec.config_cls, options, f"model {name!r}", strict=strict, validate=validate)


def complete_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` with the defaults of model ``name`` that depend on other options (a config class's
    ``complete_options``, e.g. pix2pix's netG from the image size); the options given always win."""
    fill = getattr(MODELS.get(name).config_cls, "complete_options", None)
    return fill(dict(options or {})) if fill is not None else dict(options or {})


def build_model(name: str, options: dict[str, Any] | None = None) -> dict[str, nn.Module]:
    """Build the networks of model ``name`` (e.g. ``{"G": ..., "D": ...}``) from its options."""
    spec = MODELS.get(name)
    return spec.build(model_config(name, options))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation: conv/linear weights N(0, std), norm weights N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


from . import cgan, cyclegan, dcgan, mlp, pix2pix, toy, transformer_net  # noqa: E402,F401  (registers the models)
