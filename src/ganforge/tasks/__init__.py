"""Tasks say *what* each training phase computes; the trainer decides *how* it runs.

A task lists its phases (which networks each one trains, with which optimiser settings, how many
times per step) and computes a phase's loss from a batch. The trainer owns zero_grad, autocast,
backward, optimiser steps, EMA, logging and checkpoints, so pix2pix (D then G on one paired batch)
and CycleGAN (G_A+G_B then D_A+D_B) fit the same loop as the GAN of the lectures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import DataConfig, TrainConfig
from ..viz import save_grid, to_uint8


@dataclass(frozen=True)
class Phase:
    name: str  # e.g. "D" or "G"; used in logs and to key optimiser state in checkpoints
    nets: tuple[str, ...]  # the networks this phase updates (one optimiser over their parameters)
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)
    repeat: int = 1  # updates per training step (k D steps per G step)
    new_batch: bool = True  # draw a fresh data batch for every update (else reuse the step's last one)
    optimizer: str | None = None  # adam | adamw | sgd | rmsprop | lbfgs; None: the config's choice (adam)
    optimizer_options: tuple[tuple[str, object], ...] = ()  # extra constructor arguments, e.g. (("max_iter", 20),)


@dataclass
class NoOptions:
    """A task without options of its own."""


@dataclass(frozen=True)
class LoopSettings:
    """The few settings of the training loop that a task's phases and pictures need (the rest of the
    TrainConfig is the trainer's): learning rates, Adam's betas, the seed, the optimiser choice, the data."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0
    optimizer: str = "adam"
    phase_optimizers: tuple[tuple[str, str], ...] = ()  # (phase name, optimizer) chosen per phase
    data: DataConfig = field(default_factory=DataConfig)

    @classmethod
    def of(cls, cfg: TrainConfig) -> LoopSettings:
        return cls(lr_g=cfg.lr_g, lr_d=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), seed=cfg.seed, optimizer=cfg.optimizer,
                   phase_optimizers=tuple(sorted(cfg.phase_optimizers.items())), data=cfg.data)

    def optimizer_of(self, phase: str) -> str:
        """The optimiser of phase ``phase``: its own choice, else the run's."""
        return dict(self.phase_optimizers).get(phase) or self.optimizer


class Task:
    """Base class. ``nets`` maps names to the raw networks; subclasses define the phases' losses.

    ``options`` is an instance of the task's ``options_cls`` (``task.NAME=value`` on the command line);
    ``loop`` the loop settings it needs (:class:`LoopSettings`); ``pipeline`` the model's inference object,
    through which the task's pictures are generated; ``held_out`` what the family's data gives the pictures
    (e.g. held-out pairs, uint8, and the name of their split under "split"), or None."""

    options_cls: type = NoOptions

    ema_nets: tuple[str, ...] = ()  # networks whose weights the trainer averages when ema_decay > 0
    sample_net: str = "G"  # the network that ``generate`` uses
    shared_forward: tuple[str, ...] = ()  # networks run once per step by forward(), their graph kept for phases

    def __init__(self, nets: dict[str, nn.Module], model_cfg, options: Any = None, loop: LoopSettings | None = None,
                 pipeline: Any = None, held_out: dict[str, Any] | None = None) -> None:
        self.nets = nets
        self.model_cfg = model_cfg
        self.options = options if options is not None else self.options_cls()
        self.loop = loop if loop is not None else LoopSettings()
        self.pipeline = pipeline
        self.held_out = dict(held_out or {})

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def loss(self, phase: Phase, batch: dict[str, torch.Tensor],
             nets: dict[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss to minimise, detached scalars to log) for one update of ``phase``.

        batch["image"] is float [B, C, H, W] in [-1, 1] on the training device. ``nets`` holds the
        networks to call: the ones the phase trains may be wrapped (DDP, compile), the others are raw
        with gradients off.
        """
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor], nets: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
        """Tensors computed once per training step before the phases (e.g. pix2pix's fake = G(A)),
        added to the batch. The networks in ``shared_forward`` have gradients on here, so a later phase
        that trains them can backpropagate through these tensors; phases that do not must detach them."""
        return {}

    @classmethod
    def model_defaults(cls, options: Any) -> dict[str, Any]:
        """Model options this task's ``options`` call for unless the user sets them (e.g. a layer-norm
        critic for a gradient penalty); applied to the models that have such an option."""
        return {}

    @classmethod
    def options_for_data(cls, options: Any, n_images: int, recorded: dict[str, Any] | None = None) -> Any:
        """``options`` with the choices left to the data made (e.g. augmentation for a small folder);
        called once the training data is loaded, and what it returns is recorded in the run. ``recorded``:
        on resume, the task options the checkpoint was trained with (an older version may lack a key)."""
        return options

    @classmethod
    def check_batch(cls, options: Any, batch_size: int) -> None:
        """Refuse, in one sentence, a batch size that ``options`` cannot train with; called before the run
        writes anything, once the batch size is known (also the default one chosen for a small folder)."""

    def plot_labels(self, model: str) -> dict[str, Any]:
        """The words of losses.png (``viz.plot_losses``'s title, score and probabilities arguments)."""
        return {"title": model}

    def after_update(self, phase: Phase, nets: dict[str, nn.Module]) -> None:
        """Called after every optimiser update of ``phase`` with the raw networks (e.g. WGAN's weight
        clipping); the default does nothing."""

    # ------------------------------------------------------------------ state and hooks
    def state_dict(self) -> dict:
        """Task state beyond the networks (image pools, augmentation probabilities, running statistics),
        saved in every checkpoint's state.pt and given back to ``load_state_dict`` on resume. Plain
        tensors, numbers, strings and containers only (it is read with ``torch.load(weights_only=True)``)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned. Its tensors arrive on the CPU (state.pt is read with
        ``map_location="cpu"``): move them to the networks' device where they are used."""

    def on_end(self, run_dir: Path) -> None:
        """Called once on the main process after the final checkpoint and pictures (e.g. a summary plot)."""

    def fixed_inputs(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """The inputs of the fixed sample grid (CPU tensors), the same for every run with ``seed``: the first
        ``n`` held-out images (uint8 -> [-1, 1]) when the family's data gave some, else the pipeline's."""
        images = {k: v for k, v in self.held_out.items() if isinstance(v, torch.Tensor)}
        if images:
            return {k: v[:n].float().div(127.5).sub(1) for k, v in images.items()}
        return self.pipeline.fixed_inputs(n, seed)

    def generate(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Outputs (images [N, C, H, W] in [-1, 1]) of ``net`` for ``inputs``, as the pipeline generates."""
        return self.pipeline.generate(inputs, net=net)

    def render_samples(self, net: nn.Module, inputs: dict[str, torch.Tensor], path: Path, step: int) -> None:
        """Write the picture of training at ``step`` to ``path`` (PNG); by default a grid of generated images.

        The trainer calls it every ``sample_every`` steps (net in eval mode, no grad) and animates the
        frames into progress.gif; tasks whose outputs are not images (e.g. toy 1-D/2-D data) override it.
        """
        save_grid(to_uint8(self.generate(net, inputs)), path)

    def render_real(self, batch: dict[str, torch.Tensor], path: Path, n: int) -> None:
        """Write a picture of real training data (a CPU batch as the data stream gives it) to ``path``."""
        save_grid(batch["image"][:n], path)

