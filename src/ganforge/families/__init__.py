"""Every model family of ganforge, listed in this one file.

A family (:class:`Family`) says, once, what shared code needs of its models: their options and networks, the
task that trains them, the inference object that generates with them, the data they train on and the
held-out images their pictures show, the reference checkpoints they import, and what the command line and the
studio offer for them. Run set-up, the API, the CLI, the studio, export and translation look a model up here
(:func:`family_of`) and call its family; none of them names a family.

    gan         gan, dcgan, cgan   images from noise (G(z, y); y empty without classes)
    toy         toy                1-D / 2-D points from noise
    pix2pix     pix2pix            paired image-to-image translation
    cyclegan    cyclegan           unpaired translation, two directions
    fast-style  fast-style         photos in one trained style
    srgan       srresnet, srgan    super-resolution x2 / x4 / x8 (SRResNet, then the GAN from it)

A new family is a :class:`Family` given to :func:`register_family` (from any module, a test's included);
its models then train, resume, load, sample, export and show in the studio with no other change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_checkpoint, load_state_into
from ..errors import GanforgeError
from ..models import ModelSpec
from ..models.pix2pix import load_state_file
from ..pipelines import Pipeline, resolve_device
from ..registry import Registry
from . import cyclegan, fast_style, gan, pix2pix, srgan, toy
from .base import VERBS, Family, FamilyCommand, ReferenceFiles, ReferenceImporter

FAMILIES: Registry[Family] = Registry("model family")
_MODEL_FAMILY: dict[str, str] = {}  # model name -> its family's name


def register_family(family: Family) -> Family:
    """Add ``family`` (its model names must be new); returns it."""
    taken = [m.name for m in family.models if m.name in _MODEL_FAMILY]
    if taken:
        raise ValueError(f"family {family.name!r}: model names {taken} are already taken")
    FAMILIES.register(family.name, family)
    for spec in family.models:
        _MODEL_FAMILY[spec.name] = family.name
    return family


def unregister_family(name: str) -> None:
    """Remove family ``name`` and its models (tests that define a family of their own)."""
    family = FAMILIES.get(name)
    for spec in family.models:
        _MODEL_FAMILY.pop(spec.name, None)
    FAMILIES._items.pop(name)


for _family in (gan.FAMILY, toy.FAMILY, pix2pix.FAMILY, cyclegan.FAMILY, fast_style.FAMILY, srgan.FAMILY):
    register_family(_family)


def model_names() -> list[str]:
    return sorted(_MODEL_FAMILY)


def family_of(model: str | Pipeline) -> Family:
    """The family of a model name or of an inference object."""
    name = model.name if isinstance(model, Pipeline) else model
    if name not in _MODEL_FAMILY:
        raise GanforgeError(f"Unknown model {name!r}; choose one of: {', '.join(model_names())}.")
    return FAMILIES.get(_MODEL_FAMILY[name])


def model_spec(name: str) -> ModelSpec:
    return family_of(name).model(name)


class ModelIndex:
    """Every model by name, across the families (``ganforge.MODELS``: ``get``, ``names``, ``in``)."""

    kind = "model"

    def get(self, name: str) -> ModelSpec:
        return model_spec(name)

    def names(self) -> list[str]:
        return model_names()

    def __contains__(self, name: object) -> bool:
        return name in _MODEL_FAMILY

    def __iter__(self) -> Iterator[str]:
        return iter(model_names())


MODELS = ModelIndex()


def model_config(name: str, options: dict[str, Any] | None = None, strict: bool = True, validate: bool = True):
    """The options dataclass of model ``name`` from a dict (see :meth:`ModelSpec.config`)."""
    return model_spec(name).config(options, strict=strict, validate=validate)


def complete_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` with model ``name``'s defaults that depend on other options (see :meth:`ModelSpec.complete`)."""
    return model_spec(name).complete(options)


def build_model(name: str, options: dict[str, Any] | None = None) -> dict[str, nn.Module]:
    """The networks of model ``name`` (e.g. ``{"G": ..., "D": ...}``) built from its options."""
    return model_spec(name).networks(options)


def new_pipeline(model: str, model_cfg, nets: dict[str, nn.Module], ema: dict[str, nn.Module] | None = None,
                 settings: dict | None = None, device: torch.device | str = "cpu", **loaded) -> Pipeline:
    """The inference object of ``model``'s family around networks that are already built."""
    return family_of(model).pipeline(model, model_cfg, nets, ema or {}, settings or {}, torch.device(device),
                                     **loaded)


def import_reference(path: str | Path | None, path_B: str | Path | None = None, options: dict | None = None,
                     mode: str = "reference", device: str | torch.device = "cpu", seed: int = 0,
                     verb: str | None = None) -> Pipeline:
    """The inference object of a reference implementation's weights file(s), by the first family (that
    offers ``verb``, when given) whose importer recognises them. Read with ``weights_only=True``."""
    files = ReferenceFiles(Path(path) if path is not None else None, Path(path_B) if path_B is not None else None,
                           dict(options or {}), mode, device if isinstance(device, torch.device)
                           else resolve_device(device), seed)
    state = load_state_file(files.path if files.path is not None else files.path_B)
    for name in FAMILIES:
        family = FAMILIES.get(name)
        if family.reference is None or (verb is not None and not family.can(verb)):
            continue
        if family.reference.accepts(files, state):
            return family.reference.load(files, state)
    known = "; ".join(FAMILIES.get(n).reference.source for n in FAMILIES if FAMILIES.get(n).reference is not None)
    raise GanforgeError(f"{str(files.path or files.path_B)!r} is a state dict that no model family recognises; "
                        f"ganforge reads: {known}.")


def load(path: str | Path, which: str = "latest", device: str | torch.device = "cpu") -> Pipeline:
    """Rebuild the inference object of a run folder (its latest / best / step-N checkpoint) or checkpoint folder
    from meta.json and the weights alone, or of a reference implementation's ``.pth`` file. Options that this
    version does not know (a file written by another version) are left out with a warning."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    p = Path(path)
    if p.is_file() and p.suffix in (".pth", ".pt") and p.name != "state.pt":
        return import_reference(p, device=dev)
    ckpt = load_checkpoint(path, which)
    meta = ckpt.meta
    name = meta.get("model")
    family = family_of(name)
    spec = family.model(name)
    model_cfg = spec.config(meta.get("model_options") or {}, strict=False)
    nets = spec.build(model_cfg)
    for net_name, net in nets.items():
        load_state_into(net, ckpt.weights.get(net_name, {}), f"{net_name} of model {name!r}", ckpt.path)
        net.to(dev).eval()
    ema = {}
    averaged = [key[4:] for key in ckpt.weights if key.startswith("ema.")]
    copies = spec.build(model_cfg) if averaged else {}  # one more build holds every EMA copy
    for net_name in averaged:
        e = copies[net_name]
        load_state_into(e, ckpt.weights[f"ema.{net_name}"], f"EMA {net_name} of model {name!r}", ckpt.path)
        ema[net_name] = e.to(dev).eval()
    settings = family.pipeline.settings_from_meta(meta)
    return family.pipeline(name, model_cfg, nets, ema, settings, dev, path=ckpt.path, step=meta.get("step"),
                           meta=meta)


__all__ = ["FAMILIES", "MODELS", "VERBS", "Family", "FamilyCommand", "ModelIndex", "ReferenceFiles",
           "ReferenceImporter", "build_model", "complete_options", "family_of", "import_reference", "load",
           "model_config", "model_names", "model_spec", "new_pipeline", "register_family", "unregister_family"]
