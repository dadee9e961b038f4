"""Evaluation metrics: feature extractors (registry), FID, KID, IS, precision/recall, density/coverage,
paired metrics, and the ``evaluate`` entry point that ``ganforge.evaluate``, the CLI and the training loop share."""

from __future__ import annotations

from .evaluation import evaluate
from .features import EXTRACTORS, FeatureExtractor


def load_extractors() -> None:
    """Register the built-in extractors (imported lazily: they load weights and big modules)."""
    from . import fmnist, inception  # noqa: F401

__all__ = ["EXTRACTORS", "FeatureExtractor", "evaluate", "load_extractors"]
