"""What a model family is: one typed description that the shared code calls instead of asking what it holds.

A family ties together the pieces that live in their layers below it (networks in ``models``, the training
computation in ``tasks``, the inference object in ``pipelines``, data in ``data``) and says what the command
line and the studio offer for it. Run set-up, the API, the CLI, the studio, export and translation look a
model up in :mod:`ganforge.families` and call these hooks; none of them names a family.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, options_from_dict
from ..errors import GanforgeError
from ..models import ModelSpec
from ..pipelines import Pipeline
from ..tasks import Task

# What a family's models can be asked to do; the CLI's verbs and the studio's pages are offered by these.
VERBS = frozenset({
    "sample",  # images from noise (ganforge sample, the Generate page)
    "latent",  # the latent tools (interpolation, vectors, PCA, projection)
    "eval",  # FID and the other sample metrics against a dataset
    "points",  # 1-D / 2-D points (ganforge toy, the GAN Lab page)
    "translate",  # uint8 images in, translated images out (ganforge translate, the Translate page)
    "cycle",  # two directions, each the other's inverse (reconstruction columns)
    "stylize",  # photos in, stylised photos out (ganforge stylize --model)
    "export",  # ONNX / torch.export of the generating network
})

# How the data a family trains on is loaded: (config, split, augment) -> a dataset object of ganforge.data.
DataLoader = Callable[[TrainConfig, str, bool], Any]
# What the family's training pictures show besides noise: (config, n, train data, data loader) -> a dict of uint8
# image tensors (and "split": where they come from), or None.
HeldOut = Callable[[TrainConfig, int, Any, DataLoader], "dict[str, Any] | None"]


@dataclass(frozen=True)
class ReferenceFiles:
    """Weights files of a reference implementation, and the options that say how they were trained."""

    path: Path | None
    path_B: Path | None = None  # the second generator of a two-way model (CycleGAN's latest_net_G_B.pth)
    options: dict[str, Any] = field(default_factory=dict)  # netG, norm, input_nc, output_nc, ngf, dropout ...
    mode: str = "reference"  # the inference mode of translation pipelines
    device: torch.device = torch.device("cpu")
    seed: int = 0


@dataclass(frozen=True)
class ReferenceImporter:
    """Loads the published checkpoints of the implementation a family reproduces.

    ``accepts(files, state)`` says whether the files are this family's (``state``: the first file's state
    dict, read with ``weights_only=True``); ``load(files, state)`` builds the family's inference object."""

    source: str  # what the files are, in words ("pytorch/examples DCGAN netG_epoch_N.pth")
    accepts: Callable[[ReferenceFiles, dict[str, Any]], bool]
    load: Callable[[ReferenceFiles, dict[str, Any]], Pipeline]


@dataclass(frozen=True)
class FamilyCommand:
    """A command-line verb a family adds to ``ganforge`` (``ganforge upscale``), with the same habits as the
    built-in ones: ``add_arguments(parser)`` declares its options on its own sub-parser; ``run(args)`` does the
    work through the Python API and returns the exit status (a user's mistake: raise ``GanforgeError``)."""

    name: str
    help: str  # one line for ``ganforge --help``
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""


# What a family's own held-out evaluation returns for ``ganforge eval RUN`` / ``ganforge.evaluate(model)`` on
# its models: (model, options of evaluate) -> one JSON-able dict with a "table" of rows for people.
Evaluator = Callable[..., "dict[str, Any]"]


@dataclass(frozen=True)
class Family:
    """One model family: everything shared code needs to train, load, show and export its models."""

    name: str
    models: tuple[ModelSpec, ...]  # the architectures of the family, each trained by ``task``
    task: type[Task]
    pipeline: type[Pipeline]
    offers: frozenset[str]  # what its models can be asked to do (VERBS)
    load_data: DataLoader  # the training data (and held-out splits) it trains on
    held_out: HeldOut | None = None  # inputs of the training pictures from held-out data, when not noise
    reference: ReferenceImporter | None = None  # the reference implementation's checkpoints
    read_split: Callable[..., tuple] | None = None  # translation families: a held-out split's (inputs, names, targets)
    # its own defaults for `ganforge train MODEL --data D` without a preset: (data, flags, overrides) -> TrainConfig
    configure: Callable[[str | None, dict[str, Any], list[str] | None], TrainConfig] | None = None
    threads: int | None = None  # CPU threads its new runs take unless told (None: the thread policy's choice)
    description: str = ""
    commands: tuple[FamilyCommand, ...] = ()  # command-line verbs of its own (each also one of its offers)
    evaluate: Evaluator | None = None  # its own evaluation protocol, used by `ganforge eval` instead of FID

    def __post_init__(self) -> None:
        own = {c.name for c in self.commands}
        unknown = set(self.offers) - VERBS - own
        if unknown:
            raise ValueError(f"family {self.name!r} offers unknown verbs {sorted(unknown)}; known: {sorted(VERBS)}"
                             " and the names of its commands")
        if own - set(self.offers):
            raise ValueError(f"family {self.name!r}: its commands {sorted(own - set(self.offers))} must be in offers")
        if not self.models:
            raise ValueError(f"family {self.name!r} has no models")
        if not (isinstance(self.task, type) and issubclass(self.task, Task)):
            raise ValueError(f"family {self.name!r}: task must be a Task subclass")
        if not (isinstance(self.pipeline, type) and issubclass(self.pipeline, Pipeline)):
            raise ValueError(f"family {self.name!r}: pipeline must be a Pipeline subclass")
        for spec in self.models:
            if not dataclasses.is_dataclass(spec.config_cls):
                raise ValueError(f"model {spec.name!r}: its options must be a dataclass")
        if {"translate", "cycle"} & self.offers and self.read_split is None:
            raise ValueError(f"family {self.name!r} translates, so it needs read_split")

    def can(self, verb: str) -> bool:
        return verb in self.offers

    def model(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        raise GanforgeError(f"Unknown model {name!r} of family {self.name!r}.")

    def task_options(self, cfg: TrainConfig, strict: bool = True):
        """The options dataclass of the family's task from ``cfg.task_options`` (names and types checked)."""
        return options_from_dict(self.task.options_cls, cfg.task_options, f"task {self.name!r}", strict=strict)

