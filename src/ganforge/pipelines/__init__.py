"""Inference objects: what generating with a trained model needs, apart from training.

A pipeline holds a model's networks (and their EMA copies), its constructor options and what
generating needs besides: latent size, classes and their names, the inference mode, the EMA choice
and the fixed tensor signature that export and the studio rely on. Each offers only what its models
can do:

* :class:`NoisePipeline`: G(z, y) -> images (``sample``; y is empty for unconditional models);
* :class:`PointsPipeline`: G(z) -> points of 1-D / 2-D toy data;
* :class:`TranslationPipeline`: G(A) -> B (``translate``);
* :class:`CycleGANPipeline`: G_A(A) -> B or G_B(B) -> A, chosen by its ``direction`` (``translate``, ``cycle``);
* :class:`StylizationPipeline`: G(photo) -> the photo in the trained style (``stylize``).

Which pipeline a model uses, and how one is rebuilt from a checkpoint (``ganforge.load``), is said by its
family (:mod:`ganforge.families`).
"""

from __future__ import annotations

from .base import Pipeline, TensorSpec, resolve_device
from .cyclegan import CycleGANPipeline
from .noise import NoisePipeline, PointsPipeline
from .stylization import StylizationPipeline
from .translation import TranslationPipeline

__all__ = ["CycleGANPipeline", "NoisePipeline", "Pipeline", "PointsPipeline", "StylizationPipeline", "TensorSpec",
           "TranslationPipeline", "resolve_device"]
