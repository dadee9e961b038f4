"""How a translating G's outputs for held-out pairs compare with their inputs and targets: the numbers behind
``identity_map``, ``constant_output`` (for translation) and ``gan_term_ignored``.

All images are float [N, C, H, W] in [-1, 1]; images with different channel counts (a 1-channel edge map and its
RGB target) are compared through their channel means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gray(x: torch.Tensor) -> torch.Tensor:
    return x.float().mean(1, keepdim=True)


def _same(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (a.float(), b.float()) if a.shape == b.shape else (_gray(a), _gray(b))


def mean_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two batches of images (per pixel)."""
    a, b = _same(a, b)
    return float((a - b).abs().mean())


def spread(x: torch.Tensor) -> float:
    """Mean absolute difference between different images of the batch (per pixel; 0 when all are equal)."""
    flat = x.float().flatten(1)
    n = flat.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(flat.double(), flat.double(), p=1) / flat.shape[1]
    return float(d.sum() / (n * (n - 1)))


def high_frequency(x: torch.Tensor) -> float:
    """Mean squared response of a 3x3 Laplacian over the images' channel means: the energy of edges and texture,
    which an L1-only (blurry) output lacks."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(F.conv2d(_gray(x), kernel.to(x.device)).pow(2).mean())


def translation_numbers(inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor | None) -> dict:
    """``identity``: |G(A) - A| over |B - A| (0: G returns its input); ``output_spread`` / ``input_spread``:
    how much G's outputs of different inputs differ, against how much the inputs do; ``high_frequency``: the
    outputs' Laplacian energy over the targets' (well below 1: blurrier than the targets)."""
    out = {"pairs": int(inputs.shape[0]), "output_spread": round(spread(outputs), 5),
           "input_spread": round(spread(inputs), 5)}
    if targets is not None:
        apart = mean_abs(targets, inputs)
        out["identity"] = round(mean_abs(outputs, inputs) / apart, 5) if apart else None
        out["target_spread"] = round(spread(targets), 5)
        energy = high_frequency(targets)
        out["high_frequency"] = round(high_frequency(outputs) / energy, 5) if energy else None
    return out
