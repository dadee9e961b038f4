"""DCGAN (Radford et al. 2015).

``arch="examples"``: the pytorch/examples DCGAN, generalised to any image size of the form
4*2^n or 7*2^n. At 64x64 it is exactly pytorch/examples main.py (G 3,576,704 and D 2,765,568
parameters for 3 channels, same module indices, so its netG/netD state_dicts load unchanged);
D returns logits instead of ending in Sigmoid (BCE on logits is the same loss, computed stably).

``arch="tutorial"``: the TensorFlow DCGAN tutorial that lecture notebooks follow (28x28 only):
G Dense 7*7*256 -> BN -> LReLU -> ConvT 128 5x5 s1 -> ConvT 64 5x5 s2 -> ConvT C 5x5 s2 tanh;
D Conv 64 5x5 s2 -> LReLU -> Dropout 0.3 -> Conv 128 5x5 s2 -> LReLU -> Dropout 0.3 -> Dense 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec, init_normal_
from .layers import FullMapConv2d, LatentConvTranspose2d


def _base_and_ups(image_size: int) -> tuple[int, int] | None:
    """Split image_size into base * 2**n with base 4 or 7 and n >= 1."""
    for base in (4, 7):
        n, size = 0, image_size
        while size > base and size % 2 == 0:
            size //= 2
            n += 1
        if size == base and n >= 1:
            return base, n
    return None


@dataclass
class DCGANConfig:
    image_size: int = 64  # height = width of the images, 4*2^n or 7*2^n (16, 28, 32, 56, 64, 128 ...)
    channels: int = 3  # image channels (1 grayscale, 3 RGB)
    nz: int = 100  # latent size
    ngf: int = 64  # generator width (channels of the last hidden layer)
    ndf: int = 64  # discriminator width (channels of the first layer)
    num_classes: int = 0  # 0 = unconditional (conditional variants come with the cgan model)
    arch: str = "examples"  # "examples" (pytorch/examples) or "tutorial" (TF DCGAN tutorial, 28x28)
    d_norm: str = "batch"  # D's normalisation (examples arch): batch | layer | spectral | none; wgan-gp: layer

    @staticmethod
    def complete_options(options: dict[str, Any]) -> dict[str, Any]:
        """Defaults that depend on other options: the tutorial network is for 28x28 grayscale images."""
        if options.get("arch") == "tutorial":
            options = {"image_size": 28, "channels": 1, **options}
        return options

    def validate(self) -> None:
        if self.arch not in ("examples", "tutorial"):
            raise GanforgeError(f"Unknown dcgan arch {self.arch!r}; choose 'examples' or 'tutorial'.")
        if self.arch == "tutorial" and self.image_size != 28:
            raise GanforgeError(
                f"The tutorial DCGAN is built for 28x28 images, got image size {self.image_size}; "
                "use model.arch=examples for other sizes."
            )
        if self.arch == "examples" and _base_and_ups(self.image_size) is None:
            raise GanforgeError(
                f"dcgan needs an image size of the form 4*2^n or 7*2^n (e.g. 28, 32, 64, 128), "
                f"got {self.image_size}."
            )
        if self.d_norm not in D_NORMS:
            raise GanforgeError(f"Unknown d_norm {self.d_norm!r}; choose one of: {', '.join(D_NORMS)}.")
        for name in ("channels", "nz", "ngf", "ndf"):
            if getattr(self, name) < 1:
                raise GanforgeError(f"dcgan option {name} must be a positive integer, got {getattr(self, name)}.")


class DCGANGenerator(nn.Module):
    """z [N, nz] -> images [N, C, S, S] in [-1, 1]."""

    def __init__(self, image_size: int = 64, channels: int = 3, nz: int = 100, ngf: int = 64) -> None:
        super().__init__()
        base, n_up = _base_and_ups(image_size)
        self.nz = nz
        ch = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            LatentConvTranspose2d(nz, ch, base, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


D_NORMS = ("batch", "layer", "spectral", "none")


def d_norm_layer(norm: str, channels: int) -> nn.Module:
    """D's normalisation after a hidden convolution: batch norm (DCGAN), layer norm over (C, H, W) with a
    per-channel scale and shift (GroupNorm with one group; what Gulrajani et al. 2017 advise for a critic
    with a gradient penalty, which is per sample and so ill-defined through batch statistics), or none
    (also for ``spectral``, which normalises the weights instead: :func:`spectral_normalize`)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every convolution, linear layer and embedding in
    ``module``: each weight is divided by its largest singular value, estimated by one power iteration
    per training forward (``torch.nn.utils.parametrizations.spectral_norm``; the parameter count is
    unchanged, the state dict holds the weight as ``parametrizations.weight.original`` with u and v)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.utils.parametrizations.spectral_norm(m)
    return module


class DCGANDiscriminator(nn.Module):
    """images [N, C, S, S] in [-1, 1] -> logits [N]."""

    def __init__(self, image_size: int = 64, channels: int = 3, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        base, n_down = _base_and_ups(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), d_norm_layer(norm, ch * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        layers += [FullMapConv2d(ch, 1, base, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        init_normal_(self)
        if norm == "spectral":
            spectral_normalize(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x).view(-1)


class TutorialGenerator(nn.Module):
    """The TF DCGAN tutorial generator: z [N, nz] -> images [N, C, 28, 28] in [-1, 1]."""

    def __init__(self, channels: int = 1, nz: int = 100) -> None:
        super().__init__()
        self.nz = nz
        self.fc = nn.Linear(nz, 7 * 7 * 256, bias=False)
        self.bn0 = nn.BatchNorm1d(7 * 7 * 256, eps=1e-3, momentum=0.01)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False),
            nn.BatchNorm2d(128, eps=1e-3, momentum=0.01),
            nn.LeakyReLU(0.3),
            nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False),
            nn.BatchNorm2d(64, eps=1e-3, momentum=0.01),
            nn.LeakyReLU(0.3),
            nn.ConvTranspose2d(64, channels, 5, 2, 2, output_padding=1, bias=False),
            nn.Tanh(),
        )
        # Keras defaults: Glorot-uniform kernels, BN gamma 1 / beta 0.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.bn0(self.fc(z.view(z.shape[0], -1))), 0.3)
        return self.main(h.view(-1, 256, 7, 7))


class TutorialDiscriminator(nn.Module):
    """The TF DCGAN tutorial discriminator: images [N, C, 28, 28] -> logits [N]."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, 64, 5, 2, 2),
            nn.LeakyReLU(0.3),
            nn.Dropout(0.3),
            nn.Conv2d(64, 128, 5, 2, 2),
            nn.LeakyReLU(0.3),
            nn.Dropout(0.3),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1),
        )
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x).view(-1)


def options_from_reference(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """The DCGAN options of a pytorch/examples ``netG_epoch_N.pth`` state dict (keys ``main.0.weight`` ...),
    read from its weight shapes: nz, ngf, channels and the image size."""
    convs = sorted((int(k.split(".")[1]), v) for k, v in state.items()
                   if k.startswith("main.") and k.endswith(".weight") and v.dim() == 4)
    if len(convs) < 2:
        raise GanforgeError("This state dict is not a pytorch/examples DCGAN generator (no main.N.weight "
                            "transposed convolutions found).")
    first, last = convs[0][1], convs[-1][1]
    n_up = len(convs) - 1
    base = int(first.shape[-1])
    return {"nz": int(first.shape[0]), "ngf": int(last.shape[0]), "channels": int(last.shape[1]),
            "image_size": base * 2**n_up}


def build_dcgan(cfg: DCGANConfig) -> dict[str, nn.Module]:
    if cfg.arch == "tutorial":
        return {"G": TutorialGenerator(cfg.channels, cfg.nz), "D": TutorialDiscriminator(cfg.channels)}
    return {
        "G": DCGANGenerator(cfg.image_size, cfg.channels, cfg.nz, cfg.ngf),
        "D": DCGANDiscriminator(cfg.image_size, cfg.channels, cfg.ndf, cfg.d_norm),
    }


DCGAN = ModelSpec("dcgan", DCGANConfig, build_dcgan,
    "DCGAN (pytorch/examples at 64x64; 28/32/... variants; TF-tutorial arch)")
