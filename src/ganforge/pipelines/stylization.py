"""Fast style transfer's inference object: a trained TransformerNet G (the ``fast-style`` model) applied
to photos in one forward pass each.

Sizes: sides that are not multiples of 4 are padded by reflection (edge replication where an image is
too small) and the output is cropped back; ``size`` resizes each image so that its longest side is
``size`` first (the output keeps that size). G's outputs are clamped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import convert_images
from ..errors import GanforgeError
from ..threads import applies_threads
from ..viz import to_uint8
from .base import ImageToImagePipeline, TensorSpec, run_padded


class StylizationPipeline(ImageToImagePipeline):
    """uint8 images in, uint8 stylised images out (``stylize`` / calling it); float [-1, 1] with ``generate``."""

    kind = "stylization"
    multiple = 4


    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return to_uint8(run_padded(lambda t: self.forward(net, {"A": t.to(self.device)}), x, self.multiple))

    @applies_threads
    @torch.no_grad()
    def stylize(self, images: torch.Tensor | list[torch.Tensor], size: int | None = None,
                ema: bool | None = None) -> list[torch.Tensor]:
        """uint8 [N, C, H, W] (or a list of [C, H, W] of any sizes; gray is repeated to RGB) -> a list of
        uint8 [3, H', W'] stylised images, one forward pass each."""
        if isinstance(images, torch.Tensor):
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise GanforgeError(f"Images to stylise must be uint8 [N, C, H, W], got {images.dtype} "
                                    f"{list(images.shape)}.")
            images = list(images)
        if size is not None and size < 1:
            raise GanforgeError(f"size must be a positive integer, got {size}.")
        net = self.generator(ema)
        was_training = net.training
        net.eval()
        out = []
        try:
            for im in images:
                x = convert_images(im[None], None, 3).float().div(127.5).sub(1.0)
                if size is not None:
                    h, w = x.shape[-2:]
                    hw = (max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w))))
                    x = F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)
                out.append(self._run(net, x)[0])
        finally:
            net.train(was_training)
        return out

    __call__ = stylize

    # ------------------------------------------------------------------ signature
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("A", (-1, 3, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))]

    def output_spec(self) -> TensorSpec:
        return TensorSpec("B", (-1, 3, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))

    def example_inputs(self, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        size = int(getattr(self.model_cfg, "image_size", 32) or 32)
        g = torch.Generator().manual_seed(seed)
        return {"A": torch.rand(n, 3, size, size, generator=g) * 2 - 1}
