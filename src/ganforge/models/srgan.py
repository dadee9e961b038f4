"""SRGAN (Ledig et al., CVPR 2017): the SRResNet generator and the VGG-style discriminator.

G maps a low-resolution image LR [N, channels, h, w] in [-1, 1] to [N, channels, h * scale, w * scale] (not
squashed: the inference object clamps to [-1, 1]); it is fully convolutional, so any h, w work. As the paper
draws it (figure 4):

* a 9x9 convolution to ``features`` (64) maps + PReLU;
* ``blocks`` (16) residual blocks: conv 3x3, batch norm, PReLU, conv 3x3, batch norm, summed with the block's
  input;
* conv 3x3 + batch norm, summed with the maps before the residual blocks (the long skip);
* log2(scale) upsampling blocks: conv 3x3 to 4 x features maps, PixelShuffle x2 (sub-pixel convolution,
  Shi et al. 2016), PReLU;
* a 9x9 convolution to ``channels``.

Every convolution has a bias and every PReLU one slope, which gives the paper's 1.55 million parameters
(1,549,462 for x4, 16 blocks, 64 maps).

``bicubic_skip`` (off by default, not in the paper): the output is the network's plus the bicubic upscaling of
the input (torch's bicubic, a = -0.75), and the last convolution starts at zero, so G starts as bicubic and
learns the residual, as VDSR (Kim et al. 2016) does. No parameters are added. The CPU preset uses it: from a
random start the paper's network needs thousands of steps only to reach bicubic's PSNR.

D scores an HR image [N, channels, S, S] (S = ``image_size``, 96 in the paper) with one logit per image: conv
3x3 ``d_features`` + LeakyReLU 0.2, then seven conv 3x3 + batch norm + LeakyReLU blocks with (maps, stride) =
(64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2) (for d_features = 64), a dense layer of
``d_dense`` (1024) units + LeakyReLU and a dense layer to 1. The paper's sigmoid is left to the loss (logits).
The convolutions before batch norm have no bias (the norm's shift replaces it). Padding 1 everywhere, so the
map side after the four stride-2 blocks is ceil(S / 16) (6 for 96).

Initialisation: PyTorch's defaults (the paper does not say).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec

SCALES = (2, 4, 8)
D_PLAN = ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))  # (maps / d_features, stride) after the first conv


@dataclass
class SRResNetConfig:
    scale: int = 4  # upscaling factor: 2 | 4 | 8 (log2(scale) PixelShuffle x2 blocks)
    blocks: int = 16  # residual blocks
    features: int = 64  # maps of every convolution inside G (the paper's n64)
    channels: int = 3  # image channels, in and out (taken from the data)
    image_size: int = 96  # side of the HR training crops (taken from the data); G itself takes any size
    bicubic_skip: bool = False  # add the bicubic upscaling of the input to G's output (not in the paper; see above)

    def validate(self) -> None:
        if self.scale not in SCALES:
            raise GanforgeError(f"scale must be one of {', '.join(map(str, SCALES))}, got {self.scale!r}.")
        for name in ("blocks", "features", "channels", "image_size"):
            if getattr(self, name) < 1:
                raise GanforgeError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.image_size % self.scale:
            raise GanforgeError(f"The HR crop size image_size={self.image_size} must be a multiple of scale="
                                f"{self.scale} (e.g. {self.image_size - self.image_size % self.scale or self.scale}).")


@dataclass
class SRGANConfig(SRResNetConfig):
    d_features: int = 64  # maps of D's first convolution (doubling to 8 x this)
    d_dense: int = 1024  # units of D's hidden dense layer

    def validate(self) -> None:
        super().validate()
        for name in ("d_features", "d_dense"):
            if getattr(self, name) < 1:
                raise GanforgeError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")


class ResidualBlock(nn.Module):
    """x + BN(conv(PReLU(BN(conv(x))))), 3x3 convolutions, ``features`` maps."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features), nn.PReLU(),
            nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleBlock(nn.Module):
    """conv 3x3 to 4 x features maps, PixelShuffle x2 ([N, 4F, h, w] -> [N, F, 2h, 2w]), PReLU."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(features, 4 * features, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNetGenerator(nn.Module):
    """LR [N, C, h, w] in [-1, 1] -> SR [N, C, scale h, scale w] (unbounded; about [-1, 1])."""

    def __init__(self, scale: int = 4, blocks: int = 16, features: int = 64, channels: int = 3,
                 bicubic_skip: bool = False) -> None:
        super().__init__()
        if scale not in SCALES:
            raise GanforgeError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}.")
        self.scale, self.channels = int(scale), int(channels)
        self.head = nn.Sequential(nn.Conv2d(channels, features, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlock(features) for _ in range(blocks)))
        self.body_out = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features))
        self.upsample = nn.Sequential(*(UpsampleBlock(features) for _ in range(int(math.log2(scale)))))
        self.tail = nn.Conv2d(features, channels, 9, padding=4)
        self.bicubic_skip = bool(bicubic_skip)
        if self.bicubic_skip:  # G starts as bicubic upscaling
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        out = self.tail(self.upsample(h + self.body_out(self.body(h))))
        if self.bicubic_skip:
            size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
            out = out + F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        return out


class SRGANDiscriminator(nn.Module):
    """HR image [N, C, S, S] in [-1, 1] -> one logit per image [N]."""

    def __init__(self, image_size: int = 96, channels: int = 3, features: int = 64, dense: int = 1024) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.LeakyReLU(0.2)]
        c_in, side = features, int(image_size)
        for mult, stride in D_PLAN:
            c_out = features * mult
            layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2)]
            c_in, side = c_out, -(-side // stride)
        self.features = nn.Sequential(*layers)
        self.image_size = int(image_size)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, dense), nn.LeakyReLU(0.2),
                                        nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise GanforgeError(f"The SRGAN discriminator was built for {self.image_size}x{self.image_size} HR "
                                f"crops, got {x.shape[-2]}x{x.shape[-1]}.")
        return self.classifier(self.features(x)).view(-1)


def _generator(cfg: SRResNetConfig) -> SRResNetGenerator:
    return SRResNetGenerator(cfg.scale, cfg.blocks, cfg.features, cfg.channels, cfg.bicubic_skip)


def build_srresnet(cfg: SRResNetConfig) -> dict[str, nn.Module]:
    return {"G": _generator(cfg)}


def build_srgan(cfg: SRGANConfig) -> dict[str, nn.Module]:
    """G and D, and ``G_mse``: a second SRResNet that holds G as it was at the end of the MSE stage (the task
    copies it there; no optimiser trains it), so every checkpoint can compare SRResNet and SRGAN."""
    G = _generator(cfg)
    G_mse = _generator(cfg)
    G_mse.load_state_dict(G.state_dict())
    G_mse.requires_grad_(False)
    G_mse.eval()  # a frozen copy: batch norm on its running statistics whenever it is run
    return {"G": G, "D": SRGANDiscriminator(cfg.image_size, cfg.channels, cfg.d_features, cfg.d_dense),
            "G_mse": G_mse}


SRRESNET = ModelSpec("srresnet", SRResNetConfig, build_srresnet,
                     "SRResNet (Ledig et al. 2017): residual blocks + PixelShuffle, trained on MSE alone")
SRGAN = ModelSpec("srgan", SRGANConfig, build_srgan,
                  "SRGAN (Ledig et al. 2017): SRResNet on MSE first, then content + 1e-3 x adversarial loss")
