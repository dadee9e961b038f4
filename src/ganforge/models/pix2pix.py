"""pix2pix (Isola et al. 2017): U-Net generator + PatchGAN discriminator, the junyanz reference networks.

G maps an input image A [N, input_nc, S, S] to an output B [N, output_nc, S, S], both in [-1, 1]; D scores
concat(A, B) [N, input_nc + output_nc, S, S] patch by patch (logits [N, 1, h, w]). The reference trains
unet_256 with batch norm and dropout 0.5 against the 70x70 PatchGAN, initialised N(0, 0.02); the task
("pix2pix") adds the GAN + 100 * L1 losses.

Published reference generators (``latest_net_G.pth``) load with :func:`generator_from_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import read_state_dict
from ..errors import GanforgeError
from . import ModelSpec, init_normal_
from .patchgan import build_discriminator, check_translation_options, netd_layers
from .unet import UNetGenerator, unet_state_from_reference

NETG_DOWNS = {"unet_32": 5, "unet_64": 6, "unet_128": 7, "unet_256": 8}  # netG -> downsamplings


def _netg_downs(netG: str) -> int:
    if netG not in NETG_DOWNS:
        raise GanforgeError(f"Unknown netG {netG!r}; choose one of: {', '.join(NETG_DOWNS)}.")
    return NETG_DOWNS[netG]


@dataclass
class Pix2PixConfig:
    image_size: int = 256  # side of the (square) crops fed to the networks; a multiple of 2**downs of netG
    input_nc: int = 3  # channels of the input images A
    output_nc: int = 3  # channels of the output images B
    netG: str = "unet_256"  # unet_32 | unet_64 | unet_128 | unet_256 (5, 6, 7, 8 downsamplings)
    netD: str = "basic"  # basic (70x70 PatchGAN, n_layers 3) | n_layers (n_layers_D) | pixel (1x1 PixelGAN)
    n_layers_D: int = 3  # PatchGAN depth, used with netD=n_layers
    ngf: int = 64  # generator width (channels of the outermost down conv)
    ndf: int = 64  # discriminator width (channels of the first conv)
    norm: str = "batch"  # batch | instance | none
    dropout: float = 0.5  # dropout in the three ngf*8 up blocks next to the innermost (unet_256); 0 turns it off
    init_gain: float = 0.02  # std of the N(0, std) initialisation of conv weights (norm weights N(1, std))

    @property
    def num_downs(self) -> int:
        return _netg_downs(self.netG)

    @staticmethod
    def complete_options(options: dict[str, Any]) -> dict[str, Any]:
        """Defaults that depend on other options: without a netG given, the deepest U-Net that the image
        size allows (unet_256 at 256 px as in the reference, unet_64 for a folder of 64-px images)."""
        size = options.get("image_size")
        if "netG" not in options and isinstance(size, int) and size > 0:
            fits = [name for name, d in NETG_DOWNS.items() if size % 2**d == 0]
            if fits:
                options = {**options, "netG": fits[-1]}
        return options

    @property
    def d_layers(self) -> int:
        """PatchGAN depth of netD (0 for the pixel discriminator)."""
        return netd_layers(self.netD, self.n_layers_D)

    def validate(self) -> None:
        multiple = 2**_netg_downs(self.netG)

        def advice() -> str:
            fits = [name for name, d in NETG_DOWNS.items() if self.image_size % 2**d == 0]
            return (f"use model.netG={fits[-1]}, or leave netG out to have it chosen from the image size" if fits
                    else f"use images of a multiple of {multiple} pixels (image_size={multiple})")

        check_translation_options(self, "pix2pix", multiple, advice, dropout=self.dropout)


def build_pix2pix(cfg: Pix2PixConfig) -> dict[str, nn.Module]:
    G = UNetGenerator(cfg.input_nc, cfg.output_nc, cfg.num_downs, cfg.ngf, cfg.norm, cfg.dropout)
    D = build_discriminator(cfg.netD, cfg.input_nc + cfg.output_nc, cfg.ndf, cfg.d_layers, cfg.norm)  # D sees A|B
    if cfg.init_gain != 0.02:  # the constructors already drew N(0, 0.02)
        init_normal_(G, cfg.init_gain)
        init_normal_(D, cfg.init_gain)
    return {"G": G, "D": D}


def load_state_file(path: str | Path) -> dict[str, Any]:
    """A plain state dict from a ``.pth`` file, read with ``weights_only=True`` (never unpickling code)."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"No checkpoint file at {str(path)!r}.")
    return read_state_dict(path, "a PyTorch state dict")  # a pickled module is named as such, and refused


def generator_from_reference(path_or_state: str | Path | dict[str, torch.Tensor], netG: str = "unet_256",
                             norm: str = "batch", input_nc: int = 3, output_nc: int = 3, dropout: float = 0.5,
                             ngf: int = 64) -> UNetGenerator:
    """A :class:`UNetGenerator` holding the weights of a junyanz pix2pix ``latest_net_G.pth`` (or its state dict).

    ``netG``, ``norm``, ``input_nc``, ``output_nc`` and ``ngf`` must be what the checkpoint was trained with
    (the reference's --netG, --norm, --input_nc, --output_nc, --ngf; pix2pix defaults shown); ``dropout``
    is the rate its --no_dropout left (0.5) or 0. Mode: the network comes back in training mode, which is
    what the reference's test.py uses unless --eval is given (batch statistics of the test batch, dropout
    on); call ``.eval()`` for running statistics and no dropout.
    """
    downs = _netg_downs(netG)
    state = load_state_file(path_or_state) if isinstance(path_or_state, (str, Path)) else path_or_state
    mapped = unet_state_from_reference(state, downs, norm)
    G = UNetGenerator(input_nc, output_nc, downs, ngf, norm, dropout)
    found_in, found_ngf = mapped["down.0.conv.weight"].shape[1], mapped["down.0.conv.weight"].shape[0]
    found_out = mapped["up.0.conv.weight"].shape[1]
    if (found_in, found_out, found_ngf) != (input_nc, output_nc, ngf):
        raise GanforgeError(
            f"This checkpoint holds netG {netG} with input_nc={found_in}, output_nc={found_out}, ngf={found_ngf}, "
            f"not input_nc={input_nc}, output_nc={output_nc}, ngf={ngf}; pass the values it was trained with."
        )
    G.load_state_dict(mapped, strict=True)
    return G


PIX2PIX = ModelSpec("pix2pix", Pix2PixConfig, build_pix2pix,
    "pix2pix (Isola et al. 2017): U-Net generator + PatchGAN discriminator, junyanz networks")
