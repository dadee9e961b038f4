"""Fast style transfer (Johnson et al. 2016): the image transformation network of pytorch/examples'
fast_neural_style ("TransformerNet"), trained by the ``fast-style`` task for one style image.

Layers: 9x9 conv to 32, 3x3 stride-2 convs to 64 and 128, five residual blocks of two 3x3 convs at 128,
two nearest-neighbour x2 upsamplings each followed by a 3x3 conv (64, then 32; no transposed convolution),
and a 9x9 conv to 3 channels. Every conv is preceded by reflection padding; every conv but the last is
followed by affine instance norm (and ReLU, except the second conv of a residual block). With the
defaults it has exactly 1,679,235 parameters. G maps images [N, 3, H, W] in [-1, 1] to [N, 3, H, W]
(unbounded; the pipeline clamps to [-1, 1]); H and W must be multiples of 4 (the pipeline pads others).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec


class ConvLayer(nn.Sequential):
    """Reflection padding + conv (+ affine instance norm + ReLU)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True,
                 upsample: int = 1) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=upsample, mode="nearest")] if upsample > 1 else []
        layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(c_out, affine=True))
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3), ConvLayer(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network (see the module docstring)."""

    multiple = 4  # sides must be multiples of 4 (two stride-2 convs, two x2 upsamplings)

    def __init__(self, channels: int = 3, ngf: int = 32, n_blocks: int = 5) -> None:
        super().__init__()
        self.input_nc = self.output_nc = channels
        self.encoder = nn.Sequential(ConvLayer(channels, ngf, 9), ConvLayer(ngf, 2 * ngf, 3, stride=2),
                                     ConvLayer(2 * ngf, 4 * ngf, 3, stride=2))
        self.blocks = nn.Sequential(*[ResidualBlock(4 * ngf) for _ in range(n_blocks)])
        self.decoder = nn.Sequential(ConvLayer(4 * ngf, 2 * ngf, 3, upsample=2), ConvLayer(2 * ngf, ngf, 3, upsample=2),
                                     ConvLayer(ngf, channels, 9, norm=False, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.blocks(self.encoder(x)))


@dataclass
class FastStyleConfig:
    image_size: int = 256  # side of the training crops (Johnson et al.: 256); a multiple of 4
    channels: int = 3  # image channels (3: RGB)
    ngf: int = 32  # width of the first conv (32 in the paper; 64 and 128 follow)
    n_blocks: int = 5  # residual blocks

    def validate(self) -> None:
        for name in ("image_size", "channels", "ngf", "n_blocks"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise GanforgeError(f"fast-style option {name} must be a positive integer, got {v!r}.")
        if self.image_size % 4:
            raise GanforgeError(f"fast-style needs an image_size that is a multiple of 4, got {self.image_size}.")
        if self.channels != 3:
            raise GanforgeError(f"fast-style stylises RGB images (channels=3), got channels={self.channels}.")


def build_fast_style(cfg: FastStyleConfig) -> dict[str, nn.Module]:
    return {"G": TransformerNet(cfg.channels, cfg.ngf, cfg.n_blocks)}


FAST_STYLE = ModelSpec("fast-style", FastStyleConfig, build_fast_style,
    "fast style transfer (Johnson et al. 2016): TransformerNet trained for one style image")
