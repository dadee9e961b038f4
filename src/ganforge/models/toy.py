"""Small MLP generator and discriminator for 1-D and 2-D toy data (Goodfellow et al.'s figure 1, GAN Lab)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec

Z_DISTS = ("uniform", "normal")


@dataclass
class ToyGANConfig:
    dim: int = 1  # data dimension, 1 or 2 (training takes it from the data)
    nz: int = 0  # latent size; 0 = the data dimension, so z -> x arrows (1-D) and G's manifold (2-D) can be drawn
    z_dist: str = "uniform"  # uniform on [-1, 1]^nz (as in figure 1) | normal
    g_hidden: list[int] = field(default_factory=lambda: [128, 128])  # generator hidden widths
    d_hidden: list[int] = field(default_factory=lambda: [128, 128])  # discriminator hidden widths

    @property
    def latent_dim(self) -> int:
        return self.nz or self.dim

    def validate(self) -> None:
        if self.dim not in (1, 2):
            raise GanforgeError(f"toy option dim must be 1 or 2, got {self.dim!r}.")
        if not isinstance(self.nz, int) or self.nz < 0:
            raise GanforgeError(f"toy option nz must be 0 (= dim) or a positive integer, got {self.nz!r}.")
        if self.z_dist not in Z_DISTS:
            raise GanforgeError(f"toy option z_dist must be one of: {', '.join(Z_DISTS)}; got {self.z_dist!r}.")
        for name in ("g_hidden", "d_hidden"):
            widths = getattr(self, name)
            if not isinstance(widths, (list, tuple)) or not all(isinstance(w, int) and w > 0 for w in widths):
                raise GanforgeError(f"toy option {name} must be a list of positive widths, got {widths!r}.")


def _mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    """z [N, nz] -> points [N, dim]; the output is linear (no tanh), so any range can be reached."""

    def __init__(self, nz: int, dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.nz = nz
        self.main = _mlp(nz, hidden, dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(z)


class ToyDiscriminator(nn.Module):
    """points [N, dim] -> logits [N]."""

    def __init__(self, dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.main = _mlp(dim, hidden, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x).view(-1)


def build_toy_gan(cfg: ToyGANConfig) -> dict[str, nn.Module]:
    return {
        "G": ToyGenerator(cfg.latent_dim, cfg.dim, list(cfg.g_hidden)),
        "D": ToyDiscriminator(cfg.dim, list(cfg.d_hidden)),
    }


TOY_GAN = ModelSpec("toy", ToyGANConfig, build_toy_gan,
    "small MLP G and D for 1-D / 2-D toy data (ganforge toy)")
