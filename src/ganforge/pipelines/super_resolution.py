"""Super-resolution's inference object: a trained SRResNet / SRGAN generator applied to whole images.

``upscale(images)`` takes uint8 images [N, h, w, C] (or a list of [h, w, C] / [h, w] arrays of any sizes) and
returns them ``scale`` times larger, uint8, one forward pass per image (G is fully convolutional; nothing
is tiled, so memory grows with the output's area: 64 maps of the output size in float32). An ``srgan`` run
also holds the SRResNet of the end of its MSE stage (``G_mse``): ``upscale(images, which="srresnet")``.

Signature for export: A [N, C, h, w] in [-1, 1] -> B [N, C, scale h, scale w] in [-1, 1] (clamped), batch and
spatial axes free.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GanforgeError
from ..threads import applies_threads
from ..viz import to_uint8
from .base import ImageToImagePipeline, TensorSpec

WHICH = ("srgan", "srresnet")


class SuperResolutionPipeline(ImageToImagePipeline):
    """uint8 images in, ``scale`` x larger uint8 images out (``upscale`` / calling it)."""

    kind = "super-resolution"

    def __init__(self, model, model_cfg, nets, ema, settings, device, **loaded) -> None:
        super().__init__(model, model_cfg, nets, ema, settings, device, **loaded)
        self.scale = int(model_cfg.scale)
        self.channels = int(model_cfg.channels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scale": self.scale, "channels": self.channels,
                "networks": self.networks()}

    def networks(self) -> list[str]:
        """What ``which`` can name: srgan (G) and srresnet (G_mse) for an srgan run, srresnet alone otherwise."""
        return list(WHICH) if "G_mse" in self.nets else ["srresnet"]

    def network(self, which: str | None = None, ema: bool | None = None) -> nn.Module:
        """The generator ``which`` names (default: the model's own G)."""
        if which is None or which == self.name or (which == "srresnet" and "G_mse" not in self.nets):
            return self.generator(ema)
        if which not in self.networks():
            raise GanforgeError(f"Unknown network {which!r} of this {self.name} model; choose one of: "
                                f"{', '.join(self.networks())}.")
        return self.nets["G_mse"]

    # ------------------------------------------------------------------ float tensors

    # ------------------------------------------------------------------ uint8 images
    def _check(self, images) -> tuple[list[np.ndarray], bool]:
        stacked = isinstance(images, np.ndarray) and images.ndim == 4
        items = list(images) if stacked or isinstance(images, (list, tuple)) else [images]
        out = []
        for i, im in enumerate(items):
            im = np.asarray(im.numpy() if isinstance(im, torch.Tensor) else im)
            if im.ndim == 2:
                im = im[:, :, None]
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] not in (1, 3) or 0 in im.shape:
                raise GanforgeError(f"Images to upscale must be uint8 [N, h, w, C] or a list of uint8 [h, w, C] "
                                    f"(C = 1 or 3), got {im.dtype} {tuple(im.shape)} (image {i}).")
            if im.shape[2] != self.channels:
                im = np.repeat(im, 3, axis=2) if self.channels == 3 else np.rint(
                    im @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)[:, :, None]
            out.append(np.require(im, requirements=["C", "W"]))  # torch needs writable memory
        return out, stacked

    @applies_threads
    @torch.no_grad()
    def upscale(self, images, which: str | None = None, ema: bool | None = None):
        """uint8 [N, h, w, C] -> uint8 [N, scale h, scale w, C]; a list of uint8 [h, w, C] (or [h, w]) of any
        sizes -> a list of [scale h, scale w, C]. Channels are converted to the model's (gray repeated, RGB
        to luma). ``which``: srgan | srresnet (an srgan run's MSE-stage network)."""
        items, stacked = self._check(images)
        net = self.network(which, ema)
        was_training = net.training
        net.eval()
        try:
            out = []
            for im in items:
                x = torch.from_numpy(im).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(self.device)
                out.append(to_uint8(self.forward(net, {"A": x}))[0].permute(1, 2, 0).cpu().numpy())
        finally:
            net.train(was_training)
        return np.stack(out) if stacked else out

    __call__ = upscale

    # ------------------------------------------------------------------ signature
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("A", (-1, self.channels, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))]

    def output_spec(self) -> TensorSpec:
        return TensorSpec("B", (-1, self.channels, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))

    def example_inputs(self, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        side = max(1, int(self.model_cfg.image_size) // self.scale)
        g = torch.Generator().manual_seed(seed)
        return {"A": torch.rand(n, self.channels, side, side, generator=g) * 2 - 1}
