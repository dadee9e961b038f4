"""Optimisers by name: the one place where a phase and the config become a ``torch.optim`` optimiser.

Which optimiser a phase gets, first match wins: ``cfg.phase_optimizers[phase.name]`` (``optimizer.D=sgd``
on the command line) > ``phase.optimizer`` (the task's choice) > ``cfg.optimizer`` (default adam).
Its arguments: the learning rate from the phase; betas from the phase for adam / adamw (and beta2 as
RMSprop's alpha, the same running average of squared gradients); momentum, weight_decay and
lbfgs_max_iter from the config; ``phase.optimizer_options`` last, overriding any of them. Adam and AdamW run
fused (one kernel over all parameters, on the CPU too) unless the options say ``fused`` or ``foreach``; a
resumed run keeps what its checkpoint's optimiser used.

L-BFGS evaluates the loss several times per step, so the trainer drives it with a closure
(:func:`needs_closure`): one that zeroes the gradients, computes the task's loss under autocast and
backpropagates.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch

from ..config import TRAINING_OPTIMIZERS, TrainConfig
from ..errors import GanforgeError
from ..tasks import Phase

CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "lbfgs": torch.optim.LBFGS,
}


def optimizer_name(phase: Phase, cfg: TrainConfig) -> str:
    """The optimiser ``phase`` trains with: the config's per-phase choice, else the task's, else the default."""
    return cfg.phase_optimizers.get(phase.name) or phase.optimizer or cfg.optimizer


def check_phase_names(phases: list[Phase], cfg: TrainConfig) -> None:
    """Every ``optimizer.PHASE`` of the config names a phase of the task."""
    names = [p.name for p in phases]
    for key in cfg.phase_optimizers:
        if key not in names:
            raise GanforgeError(f"optimizer.{key} names no phase of {cfg.model}'s task; its phases are: "
                                f"{', '.join(names)}.")


def optimizer_kwargs(name: str, phase: Phase, cfg: TrainConfig) -> dict[str, object]:
    """Constructor arguments of optimiser ``name`` for ``phase`` (see the module docstring)."""
    kwargs: dict[str, object] = {"lr": phase.lr}
    if name in ("adam", "adamw"):
        kwargs.update(betas=tuple(phase.betas), weight_decay=cfg.weight_decay)
    elif name == "sgd":
        kwargs.update(momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif name == "rmsprop":
        kwargs.update(alpha=phase.betas[1], momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif name == "lbfgs":
        if cfg.weight_decay:
            raise GanforgeError(f"L-BFGS (phase {phase.name}) has no weight decay; set weight_decay=0 or choose "
                                f"another optimizer for phase {phase.name}.")
        kwargs.update(max_iter=cfg.lbfgs_max_iter)
    kwargs.update(dict(phase.optimizer_options))
    return kwargs


def build_optimizer(phase: Phase, params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser of ``phase`` over ``params``; a GanforgeError sentence for a name or option it lacks."""
    name = optimizer_name(phase, cfg)
    if name not in CLASSES:
        raise GanforgeError(f"Unknown optimizer {name!r} for phase {phase.name}; choose one of: "
                            f"{', '.join(TRAINING_OPTIMIZERS)}.")
    if name == "lbfgs" and cfg.precision == "fp16":
        raise GanforgeError(f"L-BFGS (phase {phase.name}) cannot run with precision fp16, because the fp16 "
                            "gradient scaler cannot scale its repeated loss evaluations; use fp32 or bf16.")
    cls = CLASSES[name]
    kwargs = optimizer_kwargs(name, phase, cfg)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(k for k in kwargs if k not in accepted or k == "params")
    if unknown:
        raise GanforgeError(f"Phase {phase.name}'s optimizer option {unknown[0]!r} is not an argument of "
                            f"{cls.__name__}; its arguments are: {', '.join(k for k in accepted if k != 'params')}.")
    params = list(params)
    if name in ("adam", "adamw") and "fused" not in kwargs and "foreach" not in kwargs and params and all(
            p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        kwargs["fused"] = True  # one kernel over every parameter: the demo's G + D step took 1.9 ms, not 4.0
    return cls(params, **kwargs)


def needs_closure(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt.step`` must be given a closure that re-evaluates the loss (L-BFGS)."""
    return isinstance(opt, torch.optim.LBFGS)


def lr_factor(step: int, total: int, schedule: str, decay_start: float) -> float:
    """Multiplier of the base learning rate at ``step``: 1, or 1 then linear decay to 0 at ``total``."""
    if schedule == "constant":
        return 1.0
    start = int(total * decay_start)
    if step < start:
        return 1.0
    return max(0.0, (total - step) / max(1, total - start))
