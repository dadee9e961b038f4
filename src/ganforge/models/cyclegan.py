"""CycleGAN (Zhu et al. 2017): two generators and two discriminators, the junyanz reference networks.

Names as in the reference: G_A maps domain A to B (the paper's G), G_B maps B to A (F); D_A judges
images of domain B (D_Y), D_B judges images of domain A (D_X). ``input_nc`` is the channel count of
domain A and ``output_nc`` that of domain B::

    G_A: [N, input_nc, S, S] -> [N, output_nc, S, S]      D_A: [N, output_nc, S, S] -> logits [N, 1, h, w]
    G_B: [N, output_nc, S, S] -> [N, input_nc, S, S]      D_B: [N, input_nc, S, S] -> logits [N, 1, h, w]

all images in [-1, 1]. Generators: ``resnet_9blocks`` (default; 11,378,179 parameters for 3 channels),
``resnet_6blocks`` (7,837,699), any ``resnet_<n>blocks`` (small ones for CPUs), or the pix2pix U-Nets
``unet_32`` .. ``unet_256``. Discriminator: the 70x70 PatchGAN (``basic``, 2,764,737 parameters for 3
channels with instance norm), ``n_layers`` (``n_layers_D``) or ``pixel``. Norm: instance (affine=False, no
running statistics), batch or none. CycleGAN uses no dropout, so there is no dropout option. Weights are
initialised N(0, init_gain), as the reference does.

Reference generators (``latest_net_G_A.pth`` / ``latest_net_G_B.pth``) load with
:func:`generator_from_reference`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import GanforgeError
from . import ModelSpec, init_normal_
from .patchgan import build_discriminator, check_translation_options, netd_layers
from .pix2pix import NETG_DOWNS, load_state_file
from .reference import STATS, warn_ignored_statistics
from .resnet import ResnetGenerator, resnet_state_from_reference
from .unet import UNetGenerator, unet_state_from_reference

_RESNET = re.compile(r"resnet_(\d+)blocks")


def netg_kind(netG: str) -> tuple[str, int]:
    """("resnet", n_blocks) or ("unet", num_downs) for a netG name; a GanforgeError for other names."""
    m = _RESNET.fullmatch(netG)
    if m:
        return "resnet", int(m.group(1))
    if netG in NETG_DOWNS:
        return "unet", NETG_DOWNS[netG]
    raise GanforgeError(f"Unknown netG {netG!r}; choose resnet_9blocks, resnet_6blocks (or resnet_<n>blocks), "
                        f"{', '.join(NETG_DOWNS)}.")


def size_multiple(netG: str) -> int:
    """Image sides must be multiples of this: 4 for the ResNets, 2**downs for a U-Net."""
    kind, n = netg_kind(netG)
    return 4 if kind == "resnet" else 2**n


@dataclass
class CycleGANConfig:
    image_size: int = 256  # side of the square training crops; a multiple of 4 (ResNet) or 2**downs (U-Net)
    input_nc: int = 3  # channels of domain A (G_A's input, G_B's output, what D_B judges)
    output_nc: int = 3  # channels of domain B (G_A's output, G_B's input, what D_A judges)
    netG: str = "resnet_9blocks"  # resnet_9blocks | resnet_6blocks | resnet_<n>blocks | unet_32 .. unet_256
    netD: str = "basic"  # basic (70x70 PatchGAN, n_layers 3) | n_layers (n_layers_D) | pixel (1x1 PixelGAN)
    n_layers_D: int = 3  # PatchGAN depth, used with netD=n_layers
    ngf: int = 64  # generator width (channels of the first conv)
    ndf: int = 64  # discriminator width (channels of the first conv)
    norm: str = "instance"  # instance (affine=False, no running statistics) | batch | none
    init_gain: float = 0.02  # std of the N(0, std) initialisation of conv weights

    @property
    def d_layers(self) -> int:
        """PatchGAN depth of the discriminators (0 for the pixel discriminator)."""
        return netd_layers(self.netD, self.n_layers_D)

    def validate(self) -> None:
        multiple = size_multiple(self.netG)
        check_translation_options(self, "cyclegan", multiple, lambda: f"crop or resize to a multiple of {multiple}")


def build_generator(netG: str, input_nc: int, output_nc: int, ngf: int = 64, norm: str = "instance") -> nn.Module:
    """One CycleGAN generator (no dropout) from its netG name."""
    kind, n = netg_kind(netG)
    if kind == "resnet":
        return ResnetGenerator(input_nc, output_nc, ngf, n, norm)
    return UNetGenerator(input_nc, output_nc, n, ngf, norm, dropout=0.0)


def _discriminator(cfg: CycleGANConfig, channels: int) -> nn.Module:
    return build_discriminator(cfg.netD, channels, cfg.ndf, cfg.d_layers, cfg.norm)


def build_cyclegan(cfg: CycleGANConfig) -> dict[str, nn.Module]:
    nets = {
        "G_A": build_generator(cfg.netG, cfg.input_nc, cfg.output_nc, cfg.ngf, cfg.norm),
        "G_B": build_generator(cfg.netG, cfg.output_nc, cfg.input_nc, cfg.ngf, cfg.norm),
        "D_A": _discriminator(cfg, cfg.output_nc),  # judges domain B
        "D_B": _discriminator(cfg, cfg.input_nc),  # judges domain A
    }
    if cfg.init_gain != 0.02:  # the constructors already drew N(0, 0.02)
        for net in nets.values():
            init_normal_(net, cfg.init_gain)
    return nets


def generator_from_reference(path_or_state: str | Path | dict[str, torch.Tensor], netG: str = "resnet_9blocks",
                             norm: str = "instance", input_nc: int | None = None, output_nc: int | None = None,
                             ngf: int | None = None) -> nn.Module:
    """A CycleGAN generator holding the weights of a junyanz ``latest_net_G_A.pth`` / ``latest_net_G_B.pth``.

    ``netG`` and ``norm`` are the reference's --netG and --norm (CycleGAN defaults shown); ``input_nc``,
    ``output_nc`` and ``ngf`` are read from the weights when None and checked when given. ``module.``
    prefixes are dropped; the instance-norm running statistics of old files are ignored with a warning.
    """
    kind, n = netg_kind(netG)
    state = load_state_file(path_or_state) if isinstance(path_or_state, (str, Path)) else path_or_state
    if kind == "resnet":
        mapped = resnet_state_from_reference(state, n, norm)
        first, last = mapped["stem.conv.weight"], mapped["head.conv.weight"]
        found = (int(first.shape[1]), int(last.shape[0]), int(first.shape[0]))
    else:
        mapped = unet_state_from_reference(state, n, norm)
        stale = [k for k in state if k.rpartition(".")[2] in STATS]
        if stale and norm == "instance":
            warn_ignored_statistics(len(stale))
        first, last = mapped["down.0.conv.weight"], mapped["up.0.conv.weight"]
        found = (int(first.shape[1]), int(last.shape[1]), int(first.shape[0]))
    wanted = (input_nc, output_nc, ngf)
    if any(w is not None and w != f for w, f in zip(wanted, found, strict=True)):
        raise GanforgeError(
            f"This checkpoint holds netG {netG} with input_nc={found[0]}, output_nc={found[1]}, ngf={found[2]}, "
            f"not input_nc={input_nc}, output_nc={output_nc}, ngf={ngf}; pass the values it was trained with."
        )
    G = build_generator(netG, found[0], found[1], found[2], norm)
    G.load_state_dict(mapped, strict=True)
    return G


CYCLEGAN = ModelSpec("cyclegan", CycleGANConfig, build_cyclegan,
    "CycleGAN (Zhu et al. 2017): G_A, G_B (ResNet or U-Net) + two PatchGANs, junyanz networks")
