"""PatchGAN and PixelGAN discriminators of pix2pix/CycleGAN, as in junyanz/pytorch-CycleGAN-and-pix2pix.

:class:`PatchDiscriminator` (``--netD basic`` is n_layers 3)::

    conv 4x4 s2 ndf (bias) -> LeakyReLU 0.2
    for n in 1 .. n_layers - 1:  conv 4x4 s2 ndf*min(2**n, 8) -> norm -> LeakyReLU 0.2
    conv 4x4 s1 ndf*min(2**n_layers, 8) -> norm -> LeakyReLU 0.2
    conv 4x4 s1 1 (bias)                               all convs padding 1

It scores overlapping patches: one logit per patch of :func:`receptive_field` pixels (70x70 for
n_layers 3), 30x30 logits for a 256x256 input. :class:`PixelDiscriminator` (``--netD pixel``) does the
same with 1x1 convs, one logit per pixel. Both return logits [N, 1, h, w]: no sigmoid.

The layers sit in one nn.Sequential at the reference's indices (``model`` and ``net``), so reference
``latest_net_D.pth`` files load as they are when they were trained with batch or instance norm; with
``norm="none"`` the convs here keep their biases (the reference drops them) and the norm slots hold
nn.Identity. :func:`patchgan_state_from_reference` also takes ``module.`` prefixes, old instance-norm
statistics and missing biases, and checks every shape.

pix2pix and CycleGAN choose these discriminators the same way (:data:`NETDS`, :func:`build_discriminator`)
and check their options the same way (:func:`check_translation_options`).

Parameters: 6 input channels, batch norm (pix2pix) 2,768,705; 3 input channels, instance norm (CycleGAN)
2,764,737.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..errors import GanforgeError
from . import init_normal_
from .reference import fit_state_dict, reference_state
from .unet import NORMS, check_dropout, check_images, check_norm, conv_bias, norm_layer

NETDS = ("basic", "n_layers", "pixel")  # the reference's --netD choices


def _norm_slot(norm: str, channels: int) -> nn.Module:
    """The norm, or nn.Identity for norm "none", so the layer indices stay the reference's."""
    layer = norm_layer(norm, channels)
    return nn.Identity() if layer is None else layer


def receptive_field(n_layers: int | str) -> int:
    """Side in pixels of the input patch behind one output logit.

    ``n_layers`` is a PatchDiscriminator depth, or ``"basic"`` (3) or ``"pixel"`` (1x1 convs: 1).
    Going back from the output, a k x k conv of stride s grows the field from r to (r - 1) * s + k:
    the two stride-1 convs give 4 then 7, and each of the n_layers stride-2 convs doubles and adds 2:
    16, 34, 70, 142, ... for n_layers 1, 2, 3, 4.
    """
    if n_layers == "pixel":
        return 1
    if n_layers == "basic":
        n_layers = 3
    if not isinstance(n_layers, int) or n_layers < 1:
        raise GanforgeError(f"n_layers must be a positive integer, 'basic' or 'pixel', got {n_layers!r}.")
    r = 1
    for stride in [1, 1] + [2] * n_layers:  # from the output back to the input; all kernels are 4
        r = (r - 1) * stride + 4
    return r


def min_input_size(n_layers: int) -> int:
    """Smallest input side that leaves at least one logit: n_layers halvings, then two convs that take 1 each."""
    return 3 * 2**n_layers


class PatchDiscriminator(nn.Module):
    """images [N, input_nc, H, W] (pix2pix: concat(A, B), 6 channels) -> logits [N, 1, H', W'].

    H' = H // 2**n_layers - 2 (30 for 256 and n_layers 3); inputs need a side of at least 3 * 2**n_layers.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        check_norm(norm)
        if n_layers < 1:
            raise GanforgeError(f"PatchDiscriminator needs n_layers >= 1, got {n_layers}.")
        self.input_nc, self.n_layers = input_nc, n_layers
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=bias), _norm_slot(norm, out),
                       nn.LeakyReLU(0.2)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.input_nc, "The PatchGAN discriminator")
        smallest = min_input_size(self.n_layers)
        if x.shape[2] < smallest or x.shape[3] < smallest:
            raise GanforgeError(
                f"A PatchGAN discriminator with n_layers {self.n_layers} needs images of at least "
                f"{smallest}x{smallest}, got {x.shape[2]}x{x.shape[3]}; use fewer layers or larger images."
            )
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """images [N, input_nc, H, W] -> logits [N, 1, H, W], one per pixel (1x1 convs: receptive field 1).

    conv 1x1 ndf (bias) -> LeakyReLU 0.2 -> conv 1x1 2*ndf -> norm -> LeakyReLU 0.2 -> conv 1x1 1;
    the last two convs have a bias unless norm is batch norm, as in the reference.
    """

    def __init__(self, input_nc: int, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        check_norm(norm)
        self.input_nc = input_nc
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1, 1, 0),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, 2 * ndf, 1, 1, 0, bias=bias),
            _norm_slot(norm, 2 * ndf),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * ndf, 1, 1, 1, 0, bias=bias),
        )
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.input_nc, "The pixel discriminator")
        return self.net(x)


def patchgan_state_from_reference(state_dict: Mapping[str, torch.Tensor], norm: str = "batch",
                                  n_layers: int | None = None) -> dict[str, torch.Tensor]:
    """Check and tidy a junyanz ``NLayerDiscriminator`` state dict (e.g. ``latest_net_D.pth``).

    Its keys are ``model.<index>.<name>``: conv 0 (weight, bias), then for n = 1 .. n_layers conv
    ``3n - 1`` (weight; a bias too unless batch norm) and norm ``3n`` (batch norm: weight, bias,
    running_mean, running_var, num_batches_tracked), and the last conv ``3 * n_layers + 2`` (weight,
    bias); the LeakyReLUs hold nothing. :class:`PatchDiscriminator` uses the same indices, so this keeps
    the names, drops ``module.`` prefixes and old instance-norm statistics, adds what older or norm-less
    checkpoints lack, and raises a GanforgeError naming the expected netD/norm on any mismatch.
    ``n_layers`` (None: read from the keys) and ``input_nc``/``ndf`` (read from the first conv) set the
    expected shapes.
    """
    check_norm(norm)
    state = reference_state(state_dict, f"a PatchGAN discriminator with {norm} norm")
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.") and k.split(".")[1].isdigit()})
    found = (indices[-1] - 2) // 3 if indices and indices[-1] >= 5 and (indices[-1] - 2) % 3 == 0 else None
    layers = n_layers if n_layers is not None else found
    if layers is None or layers < 1:
        raise GanforgeError(
            f"This checkpoint is not a PatchGAN discriminator (netD basic/n_layers) with {norm} norm: "
            "its keys are not model.<index>.<name> ending in the last conv at index 3 * n_layers + 2."
        )
    what = f"netD {'basic' if layers == 3 else f'n_layers (n_layers_D {layers})'} with {norm} norm"
    first = state.get("model.0.weight")
    if first is None or first.dim() != 4:
        raise GanforgeError(f"This checkpoint does not fit {what}: it lacks 'model.0.weight'.")
    ndf, input_nc = first.shape[:2]
    with torch.device("meta"):
        expected = PatchDiscriminator(input_nc, ndf, layers, norm).state_dict()
    hint = ""
    guessed_norm = "batch" if "model.3.running_var" in state else ("instance" if "model.2.bias" in state else "none")
    if (found, guessed_norm) != (layers, norm) and found is not None:
        hint = f"; it looks like n_layers_D {found} with {guessed_norm} norm"
    norm_modules = {f"model.{3 * n}" for n in range(1, layers + 1)}
    return fit_state_dict(state, expected, norm, norm_modules, what, hint)


# ---------------------------------------------------------------------------------------------------------
# netD choices and the options pix2pix and CycleGAN share


def netd_layers(netD: str, n_layers_D: int) -> int:
    """PatchGAN depth of a netD choice: basic 3, n_layers ``n_layers_D``, pixel 0 (no PatchGAN)."""
    return {"basic": 3, "n_layers": n_layers_D, "pixel": 0}[netD]


def build_discriminator(netD: str, input_nc: int, ndf: int, n_layers: int, norm: str) -> nn.Module:
    """The discriminator a netD choice names (``n_layers`` from :func:`netd_layers`)."""
    if netD == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm)
    return PatchDiscriminator(input_nc, ndf, n_layers, norm)


def check_translation_options(cfg: Any, model: str, multiple: int, advice: Callable[[], str],
                              dropout: float | None = None) -> None:
    """The checks of pix2pix's and CycleGAN's configs, in this order: netD, norm, the positive integers
    (image_size, input_nc, output_nc, ngf, ndf, n_layers_D), ``dropout`` when the model has one, init_gain,
    image_size a multiple of ``multiple`` (what cfg.netG needs; ``advice()`` ends that message) and large
    enough for the PatchGAN (cfg.d_layers). Messages name the ``model``: "pix2pix option ngf must be ...".
    """
    if cfg.netD not in NETDS:
        raise GanforgeError(f"Unknown netD {cfg.netD!r}; choose one of: {', '.join(NETDS)}.")
    if cfg.norm not in NORMS:
        raise GanforgeError(f"Unknown norm {cfg.norm!r}; choose one of: {', '.join(NORMS)}.")
    for name in ("image_size", "input_nc", "output_nc", "ngf", "ndf", "n_layers_D"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise GanforgeError(f"{model} option {name} must be a positive integer, got {value!r}.")
    if dropout is not None:
        check_dropout(dropout, f"{model} option")
    if not cfg.init_gain > 0:
        raise GanforgeError(f"{model} option init_gain must be positive, got {cfg.init_gain}.")
    if cfg.image_size % multiple:
        raise GanforgeError(f"netG {cfg.netG} needs image sizes divisible by {multiple}, got {cfg.image_size}; "
                            f"{advice()}.")
    if cfg.d_layers and cfg.image_size < min_input_size(cfg.d_layers):
        raise GanforgeError(
            f"A PatchGAN discriminator with {cfg.d_layers} layers needs images of at least "
            f"{min_input_size(cfg.d_layers)} pixels, got {cfg.image_size}; lower n_layers_D."
        )
