"""The fully connected GAN of Goodfellow et al. 2014 as taught in lectures: noise -> MLP -> image."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec


@dataclass
class MLPGANConfig:
    image_size: int = 28  # height = width of the images
    channels: int = 1  # image channels
    nz: int = 100  # latent size
    g_hidden: list[int] = field(default_factory=lambda: [256, 512, 1024])  # generator hidden widths
    d_hidden: list[int] = field(default_factory=lambda: [512, 256])  # discriminator hidden widths
    dropout: float = 0.3  # dropout in the discriminator
    num_classes: int = 0  # 0 = unconditional

    def validate(self) -> None:
        if self.image_size < 1 or self.channels < 1 or self.nz < 1:
            raise GanforgeError("gan options image_size, channels and nz must be positive integers.")
        if not 0.0 <= self.dropout < 1.0:
            raise GanforgeError(f"gan option dropout must be in [0, 1), got {self.dropout}.")


class MLPGenerator(nn.Module):
    """z [N, nz] -> images [N, C, S, S] in [-1, 1]."""

    def __init__(self, image_size: int, channels: int, nz: int, hidden: list[int]) -> None:
        super().__init__()
        self.nz = nz
        self.shape = (channels, image_size, image_size)
        layers: list[nn.Module] = []
        width = nz
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            width = h
        layers += [nn.Linear(width, channels * image_size * image_size), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1)).view(-1, *self.shape)


class MLPDiscriminator(nn.Module):
    """images [N, C, S, S] -> logits [N]."""

    def __init__(self, image_size: int, channels: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * image_size * image_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x).view(-1)


def build_mlp_gan(cfg: MLPGANConfig) -> dict[str, nn.Module]:
    return {
        "G": MLPGenerator(cfg.image_size, cfg.channels, cfg.nz, list(cfg.g_hidden)),
        "D": MLPDiscriminator(cfg.image_size, cfg.channels, list(cfg.d_hidden), cfg.dropout),
    }


MLP_GAN = ModelSpec("gan", MLPGANConfig, build_mlp_gan,
    "fully connected GAN of the original paper / lectures")
