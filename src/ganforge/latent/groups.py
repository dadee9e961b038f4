"""Operand groups of latent arithmetic: written as text (``seeds:1,5,9``, ``grid:7,12@seed=0,n=64``,
``class:Sandal@min=0.8``), read into a :class:`GroupSpec`, and resolved to the latents they name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data import resolve_class
from ..data.idx import FASHION_CLASSES
from ..errors import GanforgeError
from .render import fmnist_extractor, model_class, num_classes, render, seed_classes
from .vectors import seed_list, z_from_seeds


@dataclass(frozen=True)
class GroupSpec:
    """One operand group of :func:`~ganforge.latent.arithmetic`, written as text:

    - ``seeds:1,5,9``: the latents of these seeds (:func:`~ganforge.latent.z_from_seeds`);
    - ``grid:7,12@seed=0,n=64``: images 7 and 12 of the grid ``ganforge sample --seed 0 --n 64`` makes
      (rows of ``model.fixed_inputs(64, 0)["z"]``; seed and n default to 0 and 64 as there);
    - ``class:Sandal@seed=0,n=512,min=0.8,take=8``: among the n candidates ``fixed_inputs(n, seed)``,
      those the Fashion-MNIST classifier assigns to the class with probability >= min, the ``take``
      most confident (the class by name, case-insensitive, or index 0-9 of the classifier's classes).
    """

    kind: str
    items: tuple[int, ...] = ()  # seeds, grid indices, or (class index,)
    seed: int = 0
    n: int = 64
    min_confidence: float = 0.8
    take: int = 8

    def __str__(self) -> str:
        if self.kind == "seeds":
            return "seeds:" + ",".join(map(str, self.items))
        if self.kind == "grid":
            return f"grid:{','.join(map(str, self.items))}@seed={self.seed},n={self.n}"
        return (f"class:{FASHION_CLASSES[self.items[0]]}@seed={self.seed},n={self.n},"
                f"min={self.min_confidence:g},take={self.take}")


_GROUP_OPTIONS = {"seeds": (), "grid": ("seed", "n"), "class": ("seed", "n", "min", "take")}
_GROUP_HELP = "seeds:1,5,9 | grid:7,12@seed=0,n=64 | class:NAME@seed=0,n=512,min=0.8,take=8"


def _int(text: str, what: str, minimum: int | None = 0) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise GanforgeError(f"{what} must be an integer, got {text.strip()!r}.") from None
    if minimum is not None and value < minimum:
        raise GanforgeError(f"{what} must be at least {minimum}, got {value}.")
    return value


def parse_group(text: str | GroupSpec) -> GroupSpec:
    """Read a group written as in :class:`GroupSpec` (``kind:values[@key=value,...]``)."""
    if isinstance(text, GroupSpec):
        return text
    kind, sep, rest = str(text).partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in _GROUP_OPTIONS or not rest.strip():
        raise GanforgeError(f"Cannot read the group {text!r}; write {_GROUP_HELP}.")
    values, _, options = rest.partition("@")
    opts: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in options.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in _GROUP_OPTIONS[kind]:
            allowed = ", ".join(f"{k}=" for k in _GROUP_OPTIONS[kind]) or "no options"
            raise GanforgeError(f"Unknown option {item!r} in the group {text!r}; a {kind} group takes {allowed}.")
        opts[key] = value
    seed = _int(opts.get("seed", "0"), f"seed= in the group {text!r}")
    if kind == "class":
        n = _int(opts.get("n", "512"), f"n= in the group {text!r}", 1)
        take = _int(opts.get("take", "8"), f"take= in the group {text!r}", 1)
        try:
            min_conf = float(opts.get("min", "0.8"))
        except ValueError:
            raise GanforgeError(f"min= in the group {text!r} must be a number in [0, 1].") from None
        if not 0 <= min_conf <= 1:
            raise GanforgeError(f"min= in the group {text!r} must be in [0, 1], got {min_conf}.")
        c = resolve_class(values.strip(), FASHION_CLASSES, "Fashion-MNIST classifier class")
        return GroupSpec("class", (c,), seed, n, min_conf, take)
    items = tuple(_int(v, f"Each value of the group {text!r}") for v in values.split(","))
    if kind == "grid":
        n = _int(opts.get("n", "64"), f"n= in the group {text!r}", 1)
        for i in items:
            if i >= n:
                raise GanforgeError(f"Grid index {i} in the group {text!r} is outside a grid of n={n} images "
                                    f"(indices 0..{n - 1}).")
        return GroupSpec("grid", items, seed, n)
    return GroupSpec("seeds", items)


def select_by_class(probs: torch.Tensor, cls: int, min_confidence: float, take: int) -> torch.Tensor:
    """Indices of the rows of probs [N, K] whose argmax is ``cls`` with probability >= min_confidence,
    the ``take`` most confident first (ties by index)."""
    conf = probs[:, cls]
    ok = (probs.argmax(1) == cls) & (conf >= min_confidence)
    idx = torch.nonzero(ok).reshape(-1)
    order = torch.argsort(-conf[idx].double(), stable=True)
    return idx[order][:take]


@dataclass
class GroupLatents:
    """The latents of one operand group: z float [M, nz], classes int64 [M] (conditional models) and what
    was chosen (seeds, grid indices, classifier confidences) for the record."""

    spec: GroupSpec
    z: torch.Tensor
    y: torch.Tensor | None
    info: dict[str, Any]


def group_latents(model, spec: str | GroupSpec, class_: int | str | None = None, ema: bool | None = None,
                  extractor=None, cache: dict | None = None) -> GroupLatents:
    """Resolve an operand group (see :class:`GroupSpec`) to its latents.

    ``cache``: a dict shared between calls, so class groups over the same candidates classify them once.
    """
    spec = parse_group(spec)
    nz, cls = model.nz, model_class(model, class_)
    if spec.kind == "seeds":
        seeds = seed_list(list(spec.items))
        return GroupLatents(spec, z_from_seeds(seeds, nz), seed_classes(model, seeds, cls), {"seeds": seeds})
    inputs = model.fixed_inputs(spec.n, spec.seed)
    y_all = None
    if num_classes(model):
        y_all = torch.full((spec.n,), cls, dtype=torch.int64) if cls is not None else inputs["y"].to(torch.int64)
    z_all = inputs["z"].float()
    if spec.kind == "grid":
        idx = torch.tensor(spec.items, dtype=torch.int64)
        return GroupLatents(spec, z_all[idx], None if y_all is None else y_all[idx],
                            {"grid_seed": spec.seed, "grid_n": spec.n, "indices": list(spec.items)})
    cache = {} if cache is None else cache
    key = (spec.seed, spec.n, cls)
    if key not in cache:
        extractor = extractor or fmnist_extractor(model)
        cache[key] = torch.softmax(extractor(render(model, z_all, y_all, ema=ema))["logits"].cpu().double(), 1)
    probs = cache[key]
    chosen = select_by_class(probs, spec.items[0], spec.min_confidence, spec.take)
    if len(chosen) == 0:
        best = float(probs[:, spec.items[0]].max())
        raise GanforgeError(f"None of the {spec.n} candidates (seed {spec.seed}) is classified "
                            f"{FASHION_CLASSES[spec.items[0]]} with confidence >= {spec.min_confidence:g} (the "
                            f"highest is {best:.3f}); lower min= or raise n= in the group {str(spec)!r}.")
    return GroupLatents(spec, z_all[chosen], None if y_all is None else y_all[chosen],
                        {"grid_seed": spec.seed, "grid_n": spec.n, "indices": chosen.tolist(),
                         "confidences": [round(float(probs[i, spec.items[0]]), 6) for i in chosen]})
