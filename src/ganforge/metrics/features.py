"""Feature extractors for evaluation, registered by name.

An extractor maps uint8 images [N, C, H, W] (any size, 1 or 3 channels) to
``{"features": float [N, D], "logits": float [N, K]}`` (logits only when it classifies, K = its
class count). It converts the images to what its network expects, in a documented way (resize
method, channel conversion), and records that in ``protocol`` so every reported number says how it
was computed. Register your own with ``EXTRACTORS.register("name", factory)`` where
``factory(weights: str | None, device: torch.device) -> FeatureExtractor``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..registry import Registry


class FeatureExtractor(nn.Module):
    name: str = ""
    feature_dim: int = 0
    num_classes: int = 0  # 0 = no class predictions (no IS / class coverage)
    class_names: list[str] = []

    def protocol(self) -> dict:
        """How images are prepared and which weights are used, recorded with every metric value."""
        return {"extractor": self.name}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:  # uint8 [N, C, H, W]
        raise NotImplementedError


ExtractorFactory = Callable[[str | None, torch.device], FeatureExtractor]
EXTRACTORS: Registry[ExtractorFactory] = Registry("feature extractor")
