"""Neural style transfer's building blocks: the Gram matrix and losses as pure functions
(:mod:`.losses`), and the feature networks they are computed on (:mod:`.features`, weights in
:mod:`.weights`). The optimisation that uses them (Gatys et al.) lives in :mod:`ganforge.style_transfer`;
the fast feed-forward network (Johnson et al.) is the ``fast-style`` model."""

from .features import FEATURES, FeatureNet, RandomMultiScale, VGGFeatures, build_features
from .losses import (
                     blended_gram,
                     content_loss,
                     gram,
                     luminance,
                     match_luminance,
                     rgb_to_yiq,
                     style_loss,
                     total_loss,
                     tv_loss,
                     yiq_to_rgb,
)

__all__ = ["FEATURES", "FeatureNet", "RandomMultiScale", "VGGFeatures", "blended_gram", "build_features",
           "content_loss", "gram", "luminance", "match_luminance", "rgb_to_yiq", "style_loss", "total_loss",
           "tv_loss", "yiq_to_rgb"]
