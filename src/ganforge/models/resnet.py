"""The ResNet generator of CycleGAN (Johnson et al. 2016 as used by Zhu et al. 2017), as in
junyanz/pytorch-CycleGAN-and-pix2pix (``--netG resnet_9blocks`` / ``resnet_6blocks``)::

    stem:    reflect-pad 3 -> conv 7x7 ngf -> norm -> ReLU
    down i:  conv 3x3 s2 p1 (ngf * 2**i -> ngf * 2**(i+1)) -> norm -> ReLU          i = 0, 1
    blocks:  n_blocks x [x + (reflect-pad 1, conv 3x3, norm, ReLU, [dropout], reflect-pad 1, conv 3x3, norm)(x)]
    up i:    transposed conv 3x3 s2 p1 output_padding 1 (halving the channels) -> norm -> ReLU   i = 0, 1
    head:    reflect-pad 3 -> conv 7x7 output_nc (bias) -> tanh

Sides must be multiples of 4 (two stride-2 convs and two x2 transposed convs give the input size back
only then). Biases: every conv has one unless it is followed by batch norm (instance norm here is
affine=False, so the convs carry the shift); with ``norm="none"`` every conv keeps a bias, where the
reference drops them (:func:`resnet_state_from_reference` fills zeros).

Parameters (3 -> 3 channels, ngf 64, instance norm): resnet_9blocks 11,378,179; resnet_6blocks 7,837,699.

The layers are named by role (``stem.conv``, ``down.0.norm``, ``blocks.3.body.conv2``, ``head.conv``);
:func:`reference_resnet_key_map` lists where each sits in the reference's one nn.Sequential ``model``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..errors import GanforgeError
from . import init_normal_
from .reference import STATS, ReferenceKeys, reference_state, warn_ignored_statistics
from .unet import check_dropout, check_images, check_norm, conv_bias, norm_layer, sequential

N_DOWNSAMPLING = 2  # the reference's n_downsampling: two stride-2 convs, two transposed convs


class ResnetBlock(nn.Module):
    """x [N, dim, h, w] -> x + body(x), the body two reflect-padded 3x3 convs with norms (ReLU between)."""

    def __init__(self, dim: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.body = sequential(
            pad1=nn.ReflectionPad2d(1), conv1=nn.Conv2d(dim, dim, 3, bias=bias), norm1=norm_layer(norm, dim),
            act=nn.ReLU(), dropout=nn.Dropout(dropout) if dropout > 0 else None,
            pad2=nn.ReflectionPad2d(1), conv2=nn.Conv2d(dim, dim, 3, bias=bias), norm2=norm_layer(norm, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """images [N, input_nc, H, W] in [-1, 1] -> images [N, output_nc, H, W] in [-1, 1]; H, W multiples of 4.

    ``num_downs`` (2) is the number of halvings, as for the U-Net, so inference pads sides to multiples
    of ``2**num_downs``. ``dropout`` (default 0, as CycleGAN forces) follows the first norm of each block.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_norm(norm)
        if n_blocks < 0:
            raise GanforgeError(f"ResnetGenerator needs n_blocks >= 0, got {n_blocks}.")
        check_dropout(dropout, "ResNet")
        self.input_nc, self.output_nc, self.n_blocks = input_nc, output_nc, n_blocks
        self.num_downs = N_DOWNSAMPLING
        bias = conv_bias(norm)
        self.stem = sequential(pad=nn.ReflectionPad2d(3), conv=nn.Conv2d(input_nc, ngf, 7, bias=bias),
                           norm=norm_layer(norm, ngf), act=nn.ReLU())
        self.down = nn.ModuleList()
        ch = ngf
        for _ in range(N_DOWNSAMPLING):
            self.down.append(sequential(conv=nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1, bias=bias),
                                    norm=norm_layer(norm, 2 * ch), act=nn.ReLU()))
            ch *= 2
        self.blocks = nn.Sequential(*(ResnetBlock(ch, norm, dropout) for _ in range(n_blocks)))
        self.up = nn.ModuleList()
        for _ in range(N_DOWNSAMPLING):
            self.up.append(sequential(conv=nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1,
                                                          bias=bias),
                                  norm=norm_layer(norm, ch // 2), act=nn.ReLU()))
            ch //= 2
        self.head = sequential(pad=nn.ReflectionPad2d(3), conv=nn.Conv2d(ch, output_nc, 7), tanh=nn.Tanh())
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.input_nc, "The ResNet generator")
        multiple = 2**self.num_downs
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise GanforgeError(
                f"The ResNet generator needs image sizes that are multiples of {multiple}, got "
                f"{x.shape[2]}x{x.shape[3]}; crop or resize to a multiple of {multiple}."
            )
        h = self.stem(x)
        for stage in self.down:
            h = stage(h)
        h = self.blocks(h)
        for stage in self.up:
            h = stage(h)
        return self.head(h)


# ---------------------------------------------------------------------------------------------------------
# Reference state dicts


def reference_resnet_key_map(n_blocks: int, dropout: bool = False) -> dict[str, str]:
    """Reference module path -> module path here, for every module with weights or statistics.

    The reference keeps every layer in ``model`` (an nn.Sequential): 0 pad, 1 conv, 2 norm, 3 ReLU; down
    convs at 4 and 7 (norms 5, 8); the blocks at 10 .. 9 + n_blocks, each a ``conv_block`` Sequential
    [0 pad, 1 conv, 2 norm, 3 ReLU, (4 dropout,) pad, conv, norm]; then with b = 10 + n_blocks the
    transposed convs at b and b + 3 (norms b + 1, b + 4), the pad at b + 6, the last conv at b + 7 and
    tanh at b + 8.
    """
    table = {"model.1": "stem.conv", "model.2": "stem.norm"}
    for i in range(N_DOWNSAMPLING):
        table[f"model.{4 + 3 * i}"] = f"down.{i}.conv"
        table[f"model.{5 + 3 * i}"] = f"down.{i}.norm"
    second = 6 if dropout else 5  # the dropout layer shifts the second pad/conv/norm by one
    for i in range(n_blocks):
        p = f"model.{10 + i}.conv_block."
        table[p + "1"] = f"blocks.{i}.body.conv1"
        table[p + "2"] = f"blocks.{i}.body.norm1"
        table[p + str(second)] = f"blocks.{i}.body.conv2"
        table[p + str(second + 1)] = f"blocks.{i}.body.norm2"
    b = 10 + n_blocks
    for i in range(N_DOWNSAMPLING):
        table[f"model.{b + 3 * i}"] = f"up.{i}.conv"
        table[f"model.{b + 3 * i + 1}"] = f"up.{i}.norm"
    table[f"model.{b + 7}"] = "head.conv"
    return table


def _reference_layout(state: Mapping[str, torch.Tensor]) -> tuple[int, bool]:
    """(n_blocks, dropout) of a reference ResnetGenerator state dict, read from its block keys."""
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("model.") and ".conv_block." in k}
    n_blocks = len(blocks)
    first = f"model.{min(blocks)}.conv_block." if blocks else ""
    dropout = bool(blocks) and (first + "6.weight") in state and state[first + "6.weight"].dim() == 4
    return n_blocks, dropout


def resnet_state_from_reference(state_dict: Mapping[str, torch.Tensor], n_blocks: int,
                                norm: str = "instance") -> dict[str, torch.Tensor]:
    """Rename a junyanz ``ResnetGenerator`` state dict (``latest_net_G_A.pth``) for :class:`ResnetGenerator`.

    ``n_blocks`` is 9 for resnet_9blocks (6 for resnet_6blocks); ``norm`` the ``--norm`` it was trained with
    (CycleGAN: instance). Handled: ``module.`` prefixes (DataParallel), checkpoints trained with dropout
    (read from the keys), missing ``num_batches_tracked``, zero biases for ``norm="none"``, and the
    running statistics that instance norms saved before PyTorch 0.4 (the reference now drops them too):
    they are ignored with a warning. Channel counts come from the weights. Anything else that does not
    fit raises a GanforgeError naming what was expected and what the file looks like.
    """
    check_norm(norm)
    what = f"netG resnet_{n_blocks}blocks with {norm} norm"
    state = reference_state(state_dict, what)
    found_blocks, dropout = _reference_layout(state)
    hint = ""
    if found_blocks and found_blocks != n_blocks:
        hint = f"; it looks like netG resnet_{found_blocks}blocks"
    keys = ReferenceKeys(reference_resnet_key_map(n_blocks, dropout), what, hint)
    renamed = keys.rename(state, ("stem.conv.weight", "head.conv.weight"))
    ngf, input_nc = renamed["stem.conv.weight"].shape[:2]
    output_nc = renamed["head.conv.weight"].shape[0]
    with torch.device("meta"):
        expected = ResnetGenerator(input_nc, output_nc, ngf, n_blocks, norm, 0.5 if dropout else 0.0).state_dict()
    norm_modules = {v for v in keys.table.values() if v.endswith(("norm", "norm1", "norm2"))}
    stale = [k for k in renamed if k.rpartition(".")[0] in norm_modules and k.rpartition(".")[2] in STATS
             and k not in expected]
    if stale and norm == "instance":
        warn_ignored_statistics(len(stale))
    return keys.fit(renamed, expected, norm, norm_modules)
