"""Tasks say *what* each training phase computes; the trainer decides *how* it runs.

A task lists its phases (which networks each one trains, with which optimiser settings, how many
times per step) and computes a phase's loss from a batch. The trainer owns zero_grad, autocast,
backward, optimiser steps, EMA, logging and checkpoints, so pix2pix (D then G on one paired batch)
and CycleGAN (G_A+G_B then D_A+D_B) fit the same loop as the GAN of the lectures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..registry import Registry


@dataclass(frozen=True)
class Phase:
    name: str  # e.g. "D" or "G"; used in logs and to key optimiser state in checkpoints
    nets: tuple[str, ...]  # the networks this phase updates (one optimiser over their parameters)
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)
    repeat: int = 1  # updates per training step (k D steps per G step)
    new_batch: bool = True  # draw a fresh data batch for every update (else reuse the step's last one)


class Task:
    """Base class. ``nets`` maps names to the raw networks; subclasses define the phases' losses."""

    ema_nets: tuple[str, ...] = ()  # networks whose weights the trainer averages when ema_decay > 0
    sample_net: str = "G"  # the network that ``generate`` uses
    makes_images: bool = True  # False for tasks whose samples are points (toy data): no grids, no image metrics
    num_classes: int = 0  # > 0: generate() takes labels ("y") besides the noise
    data_kind: str = "images"  # "images" (ImageData batches {"image", "label"}) or "paired" ({"A", "B"})
    samples_from_noise: bool = True  # False: outputs come from input images (ganforge translate), not sample
    shared_forward: tuple[str, ...] = ()  # networks run once per step by forward(), their graph kept for phases
    class_names: list[str] = []  # names of the labels (set from the dataset by whoever builds the task)

    def __init__(self, nets: dict[str, nn.Module], model_cfg, train_cfg) -> None:
        self.nets = nets
        self.model_cfg = model_cfg
        self.cfg = train_cfg

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

    def fixed_inputs(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """The inputs of the fixed sample grid (CPU tensors), the same for every run with ``seed``."""
        raise NotImplementedError

    def generate(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images [N, C, H, W] in [-1, 1] from ``inputs`` (already on the net's device)."""
        raise NotImplementedError

    def render_samples(self, net: nn.Module, inputs: dict[str, torch.Tensor], path: Path, step: int) -> None:
        """Write the picture of training at ``step`` to ``path`` (PNG); by default a grid of generated images.

        The trainer calls it every ``sample_every`` steps (net in eval mode, no grad) and animates the
        frames into progress.gif; tasks whose outputs are not images (e.g. toy 1-D/2-D data) override it.
        """
        from ..viz import save_grid, to_uint8

        save_grid(to_uint8(self.generate(net, inputs)), path)

    def render_real(self, batch: dict[str, torch.Tensor], path: Path, n: int) -> None:
        """Write a picture of real training data (a CPU batch as the data stream gives it) to ``path``."""
        from ..viz import save_grid

        save_grid(batch["image"][:n], path)


TASKS: Registry[type[Task]] = Registry("task")

from . import gan, pix2pix, toy  # noqa: E402,F401  (registers the tasks; toy also registers the toy datasets)
