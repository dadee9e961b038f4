"""The losses of neural style transfer as pure functions of feature maps and images.

Feature maps are float [N, C, H, W]; images float [N, 3, H, W] in [0, 1]. Normalisations follow the
PyTorch tutorial (the one whose weights, style 1e6 and content 1, are the defaults of ``ganforge stylize``):
the Gram matrix is divided by C * H * W and both losses are mean squared errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices of feature maps: [N, C, H, W] -> [N, C, C], ``F F^T / (C * H * W)`` with F the
    maps flattened to [C, H * W]. Invariant to any permutation of the H * W positions."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of feature maps (Gatys et al. 2016, eq. 1 up to a constant factor)."""
    return F.mse_loss(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the Gram matrix of ``features`` [N, C, H, W] and ``target_gram``
    [N or 1, C, C] (Gatys et al. 2016, eq. 4 up to a constant factor)."""
    g = gram(features)
    return F.mse_loss(g, target_gram.expand_as(g))


def blended_gram(grams: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """One target Gram matrix from several styles: the weighted mean (weights are normalised to sum 1)."""
    total = float(sum(weights))
    return sum(g * (float(w) / total) for g, w in zip(grams, weights, strict=True))


def tv_loss(images: torch.Tensor) -> torch.Tensor:
    """Total variation: sum of absolute differences of neighbouring pixels, averaged over the batch
    (as ``tf.image.total_variation``, which the TensorFlow tutorial weights by 30)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().sum(dim=(1, 2, 3))
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().sum(dim=(1, 2, 3))
    return (dh + dw).mean()


def total_loss(features: Mapping[str, torch.Tensor], content_targets: Mapping[str, torch.Tensor],
               style_targets: Mapping[str, torch.Tensor], style_layer_weights: Mapping[str, float],
               content_weight: float, style_weight: float, tv_weight: float = 0.0,
               images: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``content_weight * sum_l content_loss + style_weight * sum_l w_l style_loss + tv_weight * tv``.

    ``features`` maps layer names to the maps of the image being optimised; ``content_targets`` the
    content image's maps at the content layers (empty for texture synthesis); ``style_targets`` the target
    Gram matrices at the style layers. Returns (loss, {"content": .., "style_LAYER": .., "tv": ..}) with
    the unweighted terms detached."""
    terms: dict[str, torch.Tensor] = {}
    loss = features[next(iter(features))].new_zeros(())
    if content_targets:
        c = sum(content_loss(features[k], t) for k, t in content_targets.items())
        terms["content"] = c.detach()
        loss = loss + content_weight * c
    for k, t in style_targets.items():
        s = style_loss(features[k], t)
        terms[f"style_{k}"] = s.detach()
        loss = loss + style_weight * style_layer_weights[k] * s
    if tv_weight and images is not None:
        tv = tv_loss(images)
        terms["tv"] = tv.detach()
        loss = loss + tv_weight * tv
    return loss, terms


# ----------------------------------------------------------------------------- colour
# RGB <-> YIQ (NTSC 1953 matrix): Y is the luma of ITU-R 601 (ganforge.data.LUMA), I and Q the chroma.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(images: torch.Tensor) -> torch.Tensor:
    """float [N, 3, H, W] RGB in [0, 1] -> YIQ (Y in [0, 1], I and Q about [-0.6, 0.6])."""
    return torch.einsum("ij,njhw->nihw", _RGB2YIQ.to(images), images)


def yiq_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_yiq` (not clamped)."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB2YIQ).to(images), images)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """Y of YIQ as a three-channel gray image [N, 3, H, W] (what luminance-only transfer optimises)."""
    return rgb_to_yiq(images)[:, :1].expand(-1, 3, -1, -1)


def match_luminance(y: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Luminance ``y`` [N, 1, H, W] shifted and scaled to the mean and standard deviation of ``reference``
    (Gatys et al. 2017: the style's luminance matched to the content's before the transfer)."""
    return (y - y.mean()) / (y.std() + 1e-8) * reference.std() + reference.mean()
