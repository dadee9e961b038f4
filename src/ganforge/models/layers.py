"""Layers that compute what a convolution computes, as the matrix product it is at some shapes: where oneDNN's
convolution kernels are slow at tiny maps (1x1 in or out). Same parameters as the convolution they replace, so
state dicts, checkpoints and reference weights load unchanged; any other input goes to the convolution itself."""

from __future__ import annotations

import torch
from torch import nn


def _exporting() -> bool:
    """Whether the module is being exported (torch.export, ONNX): the graph then keeps the convolution, which
    holds for every input size, where the matrix product's test on the map size would fix the size in the graph."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting()) or torch.jit.is_tracing()


def is_channels_last(t: torch.Tensor) -> bool:
    """Whether a 4-d tensor lies in memory as [n, h, w, c] (channels_last) rather than [n, c, h, w]."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _rows(t: torch.Tensor, hwc: bool) -> torch.Tensor:
    """A 4-d tensor as [t.shape[0], rest], the rest in (h, w, c) order when ``hwc`` (a channels_last tensor's
    memory order: no copy) and in (c, h, w) order otherwise. Both operands of a product take the same order."""
    return (t.permute(0, 2, 3, 1) if hwc else t).reshape(t.shape[0], -1)


class LatentConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution of a 1x1 input (the generator's latent vector to a base x base map; the U-Net's
    innermost 1x1 -> 2x2 up stage): one matrix product z [N, C_in] @ weight [C_in, C_out*k*k], then the output
    cropped by the padding. Computed as that product, which oneDNN runs several times faster than its deconvolution
    kernel at these shapes (8.8 ms against 1.0 ms for the DCGAN latent layer, batch 64, bf16, one thread); the same
    parameters, so checkpoints and reference weights are unchanged. The weight is multiplied as it lies in memory
    (a channels_last weight as [C_in, k, k, C_out], giving a channels_last output), never copied. Any other input
    is the deconvolution itself."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if _exporting() or x.shape[-2:] != (1, 1) or output_size is not None or self.output_padding != (0, 0) \
                or self.groups != 1 or self.dilation != (1, 1) or kh - 2 * ph < 1 or kw - 2 * pw < 1:
            return super().forward(x, output_size)
        hwc = is_channels_last(self.weight)
        out = x.flatten(1) @ _rows(self.weight, hwc)
        out = out.view(x.shape[0], kh, kw, -1).permute(0, 3, 1, 2) if hwc else out.view(x.shape[0], -1, kh, kw)
        if ph or pw:
            out = out[:, :, ph:kh - ph, pw:kw - pw]
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class FullMapConv2d(nn.Conv2d):
    """A convolution with one output position whose window holds the whole (zero-padded) input: a DCGAN
    discriminator's last layer (base x base -> 1x1) and the U-Net's innermost down stage (2x2 -> 1x1, padding 1).
    It is one matrix product, the padded x [N, C*k*k] @ weight [O, C*k*k]^T. Computed as that product: oneDNN's
    convolution kernels took 0.2 ms forward and 0.4 ms backward at the demo's head (batch 32, 64 x 7 x 7) and 11 ms
    backward at the U-Net's innermost 256 -> 256 (batch 16). The same parameters, so checkpoints and reference
    weights are unchanged. The weight is multiplied as it lies in memory (channels_last as [O, k, k, C]), never
    copied; only the input is padded or reordered. Any other input is the convolution itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        h, w = x.shape[-2:]
        if _exporting() or isinstance(self.padding, str) or self.groups != 1 or self.dilation != (1, 1) \
                or self.padding_mode != "zeros":
            return super().forward(x)
        ph, pw = self.padding
        if (h + 2 * ph - kh) // sh != 0 or (w + 2 * pw - kw) // sw != 0 or h + ph > kh or w + pw > kw:
            return super().forward(x)  # more than one output position, or input outside the one window
        if ph or pw or h + ph < kh or w + pw < kw:  # the window as the kernel sees it: zeros around the input
            x = nn.functional.pad(x, (pw, kw - w - pw, ph, kh - h - ph))
        hwc = is_channels_last(self.weight)
        out = _rows(x, hwc) @ _rows(self.weight, hwc).t()
        if self.bias is not None:
            out = out + self.bias
        return out.view(x.shape[0], -1, 1, 1)
