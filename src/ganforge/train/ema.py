"""Exponential moving average of a network's weights (buffers are copied, not averaged)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, copy_only: bool = False) -> None:
        """ema = decay * ema + (1 - decay) * current; ``copy_only`` sets ema = current."""
        w = 1.0 if copy_only else 1.0 - self.decay
        for e, p in zip(self.module.parameters(), module.parameters(), strict=True):
            e.lerp_(p.detach(), w)
        for e, b in zip(self.module.buffers(), module.buffers(), strict=True):
            e.copy_(b)
