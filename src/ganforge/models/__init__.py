"""Networks. Models know nothing about training, tasks or inference objects.

Each model file describes its networks with a :class:`ModelSpec`: a short name, a dataclass of
constructor options (recorded in every run and checkpoint) and a function that builds the named
networks from it. Which family a model belongs to (its task, inference object, data, reference
importer) is said once, in :mod:`ganforge.families`, which lists every model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..config import options_from_dict


@dataclass(frozen=True)
class ModelSpec:
    """One model: its short name, its options dataclass and the function that builds its networks."""

    name: str
    config_cls: type
    build: Callable[[Any], dict[str, nn.Module]]
    description: str

    def config(self, options: dict[str, Any] | None = None, strict: bool = True, validate: bool = True):
        """The options dataclass from a dict, every key and type checked (``strict=False``: unknown keys, from
        a checkpoint of another version, are left out with a warning; ``validate=False``: names and types
        only, for options that the data will complete)."""
        return options_from_dict(self.config_cls, options, f"model {self.name!r}", strict=strict, validate=validate)

    def complete(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """``options`` with the defaults that depend on other options (the config class's
        ``complete_options``, e.g. pix2pix's netG from the image size); the options given always win."""
        fill = getattr(self.config_cls, "complete_options", None)
        return fill(dict(options or {})) if fill is not None else dict(options or {})

    def networks(self, options: dict[str, Any] | None = None) -> dict[str, nn.Module]:
        """The networks (e.g. ``{"G": ..., "D": ...}``) built from ``options``."""
        return self.build(self.config(options))


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

