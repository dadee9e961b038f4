"""Exponential moving average of a network's weights (buffers are copied, not averaged), and the
re-estimation of its batch-norm statistics for the averaged weights."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

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


def make_ema(nets: dict[str, nn.Module], names: Iterable[str], decay: float, device: torch.device | str = "cpu",
             channels_last: bool = False) -> dict[str, EMA]:
    """EMA copies of the networks ``names`` (none when ``decay`` is 0), made once the networks are on ``device``
    in the training memory format, as the copies are used beside them."""
    if decay <= 0:
        return {}
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return {n: EMA(nets[n].to(device=device, memory_format=memory_format), decay) for n in names}


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@torch.no_grad()
def recompute_batchnorm(module: nn.Module, forward: Callable[[nn.Module, object], object],
                        batches: Iterable[object]) -> None:
    """Replace the running statistics of every batch norm in ``module`` by the exact mean and variance of
    its inputs over ``batches`` (``forward(module, batch)`` runs one), with the rest of ``module`` in eval
    mode (so dropout and the like stay off). An EMA generator's copied statistics belong to the live
    weights, not to the averaged ones; these belong to the weights they are used with (as SWA's bn_update
    does for averaged weights, Izmailov et al. 2018)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training = module.training
    module.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
        m.train()
    for batch in batches:
        forward(module, batch)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    module.train(was_training)
