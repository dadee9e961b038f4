"""The pix2pix U-Net generator (Isola et al. 2017), as in junyanz/pytorch-CycleGAN-and-pix2pix.

Block i (0 = outermost, ``num_downs - 1`` = innermost) halves the image going down and doubles it
coming back up::

    down i: [LeakyReLU 0.2, not for i = 0] -> conv 4x4 s2 p1 -> [norm, not for i = 0 nor the innermost]
    up i:   ReLU -> transposed conv 4x4 s2 p1 -> norm (Tanh for i = 0) -> [Dropout]

Channels: block i goes from ``outer[i]`` to ``inner[i] = ngf * min(2**i, 8)`` channels, with
``outer[i] = inner[i - 1]`` (``outer[0]`` is ``input_nc`` going down and ``output_nc`` coming up).
Every block but the outermost returns ``concat(skip, up-path output)``, so the up conv of block i
(i < innermost) reads ``2 * inner[i]`` channels. The skip is the block's input *after* the down
LeakyReLU: the reference applies that LeakyReLU in place, so its skip connections carry the activated
tensor, and its published checkpoints were trained that way; these skips do the same.

Dropout (``p = dropout``, as in the reference's ``--no_dropout`` off) follows the up norm of the
``num_downs - 5`` blocks between the innermost and the ngf*4 block (blocks 4 .. num_downs - 2), the ones
with ngf*8 channels on both sides: three blocks in unet_256.

Bias: convs followed by batch norm have none (the norm's shift replaces it); with instance norm
(affine=False) they have one; the outermost up conv always has one. With ``norm="none"`` every conv here
has a bias, where the reference leaves those convs without any (its bias rule only looks for instance
norm); :func:`unet_state_from_reference` fills zeros for them, so such checkpoints still load and give
the same outputs.

Parameters (3 -> 3 channels, ngf 64, batch norm): unet_256 54,413,955; unet_128 41,828,995.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import GanforgeError
from . import init_normal_
from .layers import FullMapConv2d, LatentConvTranspose2d
from .reference import ReferenceKeys, reference_state

NORMS = ("batch", "instance", "none")


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise GanforgeError(f"Unknown norm {norm!r}; choose one of: {', '.join(NORMS)}.")


def check_dropout(dropout: float, what: str) -> None:
    """A dropout rate in [0, 1); ``what`` starts the message ("U-Net", "pix2pix option")."""
    if not 0.0 <= dropout < 1.0:
        raise GanforgeError(f"{what} dropout must be in [0, 1) (0 turns it off), got {dropout}.")


def check_images(x: torch.Tensor, channels: int, what: str) -> None:
    """``x`` is a batch of images [N, channels, H, W]; ``what`` names the network in the message."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise GanforgeError(f"{what} expects images [N, {channels}, H, W], got a tensor of shape {list(x.shape)}.")


def norm_layer(norm: str, channels: int) -> nn.Module | None:
    """The reference's norms: batch (affine, running statistics), instance (no affine, no statistics), none."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return None


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` carries a bias (not before batch norm)."""
    return norm != "batch"


def sequential(**layers: nn.Module | None) -> nn.Sequential:
    """An nn.Sequential of the named layers that are not None, in order (so a missing norm leaves no slot)."""
    return nn.Sequential(OrderedDict((name, m) for name, m in layers.items() if m is not None))


def unet_channels(num_downs: int, ngf: int) -> list[int]:
    """``inner[i]``: the channels block i computes going down (and takes coming back up)."""
    return [ngf * min(2**i, 8) for i in range(num_downs)]


class UNetGenerator(nn.Module):
    """images [N, input_nc, H, W] in [-1, 1] -> images [N, output_nc, H, W] in [-1, 1].

    H and W must be multiples of ``2**num_downs`` (256 for unet_256): the innermost block sees 1x1
    at the smallest size. ``num_downs`` is at least 5 (unet_32), as in the reference.
    ``self.down[i]`` and ``self.up[i]`` are the down and up stages of block i (0 = outermost).
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64, norm: str = "batch",
                 dropout: float = 0.5) -> None:
        super().__init__()
        check_norm(norm)
        if num_downs < 5:
            raise GanforgeError(f"UNetGenerator needs num_downs >= 5 (unet_32 and up), got {num_downs}.")
        check_dropout(dropout, "U-Net")
        self.input_nc, self.output_nc, self.num_downs = input_nc, output_nc, num_downs
        inner = unet_channels(num_downs, ngf)
        outer_down = [input_nc] + inner[:-1]
        outer_up = [output_nc] + inner[:-1]
        last = num_downs - 1
        bias = conv_bias(norm)

        self.down_act = nn.LeakyReLU(0.2)  # before the down stages 1 .. num_downs - 1; its output is the skip
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(num_downs):
            down_norm = None if i in (0, last) else norm_layer(norm, inner[i])
            # the innermost stages see 2x2 -> 1x1 -> 2x2 at the smallest image size: matrix products then
            down_conv = FullMapConv2d if i == last else nn.Conv2d
            self.down.append(sequential(conv=down_conv(outer_down[i], inner[i], 4, 2, 1, bias=bias), norm=down_norm))
            up_in = inner[i] if i == last else 2 * inner[i]
            if i == 0:
                up = sequential(act=nn.ReLU(), conv=nn.ConvTranspose2d(up_in, output_nc, 4, 2, 1, bias=True),
                            tanh=nn.Tanh())
            else:
                use_dropout = 4 <= i < last and dropout > 0
                up_conv = LatentConvTranspose2d if i == last else nn.ConvTranspose2d
                up = sequential(act=nn.ReLU(), conv=up_conv(up_in, outer_up[i], 4, 2, 1, bias=bias),
                            norm=norm_layer(norm, outer_up[i]), dropout=nn.Dropout(dropout) if use_dropout else None)
            self.up.append(up)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2**self.num_downs
        check_images(x, self.input_nc, "The U-Net")
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise GanforgeError(
                f"unet_{multiple} needs image sizes that are multiples of {multiple}, got "
                f"{x.shape[2]}x{x.shape[3]}; crop or resize to a multiple of {multiple}, or use a smaller unet_N."
            )
        skips = []  # skips[i - 1]: the activated input of block i, i >= 1
        h = x
        for i, down in enumerate(self.down):
            if i > 0:
                h = self.down_act(h)
                skips.append(h)
            h = down(h)
        for i in reversed(range(self.num_downs)):
            h = self.up[i](h)
            if i > 0:
                h = torch.cat([skips[i - 1], h], dim=1)
        return h


# ---------------------------------------------------------------------------------------------------------
# Reference state dicts


def _reference_block_prefix(i: int) -> str:
    """Where block i sits in the reference's nested UnetSkipConnectionBlocks (its ``model`` Sequential)."""
    if i == 0:
        return "model.model."
    return "model.model.1.model." + "3.model." * (i - 1)


def reference_unet_key_map(num_downs: int) -> dict[str, str]:
    """Reference module path -> module path here, for every module with weights or statistics.

    The reference generator holds ``model`` = the outermost block; each block keeps its layers in an
    nn.Sequential ``model``: outermost [downconv, submodule, uprelu, upconv, tanh], intermediate
    [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm (, dropout)], innermost
    [downrelu, downconv, uprelu, upconv, upnorm]. The submodule is the next block inwards.
    """
    table = {}
    last = num_downs - 1
    for i in range(num_downs):
        p = _reference_block_prefix(i)
        if i == 0:
            table[p + "0"] = "down.0.conv"
            table[p + "3"] = "up.0.conv"
        elif i == last:
            table[p + "1"] = f"down.{i}.conv"
            table[p + "3"] = f"up.{i}.conv"
            table[p + "4"] = f"up.{i}.norm"
        else:
            table[p + "1"] = f"down.{i}.conv"
            table[p + "2"] = f"down.{i}.norm"
            table[p + "5"] = f"up.{i}.conv"
            table[p + "6"] = f"up.{i}.norm"
    return table


def _reference_unet_depth(keys) -> int:
    """num_downs of a reference U-Net state dict: block i's keys hold the word "model" i + 2 times."""
    return max((k.split(".").count("model") - 1 for k in keys if k.startswith("model.model.")), default=0)


def _guess_norm(state: Mapping[str, torch.Tensor], norm_keys: list[str], conv_weight: str) -> str:
    """The norm a reference state dict was trained with, judged from its norm and conv entries."""
    if any(k + ".running_var" in state and k + ".weight" in state for k in norm_keys):
        return "batch"
    return "instance" if conv_weight[: -len("weight")] + "bias" in state else "none"


def unet_state_from_reference(state_dict: Mapping[str, torch.Tensor], num_downs: int,
                              norm: str = "batch") -> dict[str, torch.Tensor]:
    """Rename a junyanz ``UnetGenerator`` state dict (e.g. ``latest_net_G.pth``) for :class:`UNetGenerator`.

    ``num_downs`` is 8 for unet_256 (7 for unet_128 ...); ``norm`` is the ``--norm`` it was trained with
    (pix2pix: batch). ``module.`` prefixes, missing ``num_batches_tracked`` and the instance-norm statistics of
    old torch versions are handled; channel counts (input_nc, output_nc, ngf) are read from the weights. A
    checkpoint of another depth, norm or shape raises a GanforgeError naming what was expected.
    """
    check_norm(norm)
    if num_downs < 5:
        raise GanforgeError(f"UNetGenerator needs num_downs >= 5 (unet_32 and up), got {num_downs}.")
    what = f"netG unet_{2**num_downs} with {norm} norm"
    state = reference_state(state_dict, what)
    hint = ""
    depth = _reference_unet_depth(state)
    if depth >= 5:
        ref_table = reference_unet_key_map(depth)
        ref_norms = [k for k, v in ref_table.items() if v.endswith(".norm")]
        guessed = _guess_norm(state, ref_norms, _reference_block_prefix(1) + "1.weight")
        if (depth, guessed) != (num_downs, norm):
            hint = f"; it looks like netG unet_{2**depth} with {guessed} norm"
    keys = ReferenceKeys(reference_unet_key_map(num_downs), what, hint)
    renamed = keys.rename(state, ("down.0.conv.weight", "up.0.conv.weight"))
    ngf, input_nc = renamed["down.0.conv.weight"].shape[:2]
    output_nc = renamed["up.0.conv.weight"].shape[1]
    with torch.device("meta"):
        expected = UNetGenerator(input_nc, output_nc, num_downs, ngf, norm, dropout=0.0).state_dict()
    norm_modules = {v for v in keys.table.values() if v.endswith(".norm")}
    return keys.fit(renamed, expected, norm, norm_modules)
