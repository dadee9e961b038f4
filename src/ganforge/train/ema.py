"""Exponential moving average of a network's weights (buffers are copied, not averaged)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """ema = d * ema + (1 - d) * current after every generator step.

    The decay warms up as d_t = min(decay, (1 + t) / (10 + t)) (t = updates so far), the rule of
    TensorFlow's ExponentialMovingAverage with num_updates: early in training the average forgets
    the random initial weights quickly instead of dragging them along for 1 / (1 - decay) steps.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def decay_at(self, t: int) -> float:
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, module: nn.Module, t: int, copy_only: bool = False) -> None:
        """Average in ``module``'s weights at update ``t`` (``copy_only``: ema = current)."""
        w = 1.0 if copy_only else 1.0 - self.decay_at(t)
        for e, p in zip(self.module.parameters(), module.parameters(), strict=True):
            e.lerp_(p.detach(), w)
        for e, b in zip(self.module.buffers(), module.buffers(), strict=True):
            e.copy_(b)
