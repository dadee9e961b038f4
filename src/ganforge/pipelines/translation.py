"""Image-to-image translation: G(A) -> B with a pix2pix U-Net (and the junyanz reference's generators).

Sizes: a U-Net with d downsamplings takes sides that are multiples of 2^d (256 for unet_256). Other
sizes are padded by reflection up to the next multiple and the output is cropped back to the input's
size (edge replication where an image is smaller than the padding); ``size`` resizes inputs to
size x size first (bicubic) and the outputs back. Images are not tiled.

Modes: ``reference`` matches the reference implementation's test.py without --eval: dropout on, batch
norm on the statistics of the image itself (each image runs on its own, as with batch size 1), the
dropout noise from ``seed``; no buffer changes. ``eval`` uses the running statistics and no dropout,
and batches images of the same size. A run trained with batch size 1 defaults to ``reference``, one
trained with larger batches to ``eval`` (one test image cannot reproduce a batch's statistics).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import convert_images
from ..errors import GanforgeError
from ..threads import applies_threads
from ..viz import to_uint8
from .base import Pipeline, TensorSpec, run_padded

INFERENCE_MODES = ("reference", "eval")


def default_inference_mode(train_batch_size: int) -> str:
    """``reference`` (per-image batch statistics, dropout on) for batch-1 training, ``eval`` otherwise."""
    return "reference" if train_batch_size == 1 else "eval"


@contextmanager
def inference_mode(net: nn.Module, mode: str = "reference"):
    """Run ``net`` for inference: ``eval`` = net.eval(); ``reference`` = dropout active and batch norm on
    batch statistics, without changing any buffer (running statistics and counters are restored)."""
    if mode not in INFERENCE_MODES:
        raise GanforgeError(f"Unknown inference mode {mode!r}; choose one of: {', '.join(INFERENCE_MODES)}.")
    was_training = {m: m.training for m in net.modules()}
    saved = []
    try:
        net.eval()
        if mode == "reference":
            for m in net.modules():
                if isinstance(m, nn.Dropout):
                    m.train()
                elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.train()
                    count = None if m.num_batches_tracked is None else m.num_batches_tracked.clone()
                    saved.append((m, m.momentum, count))
                    m.momentum = 0.0  # running = running * (1 - 0) + batch * 0: unchanged
        yield net
    finally:
        for m, momentum, count in saved:
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)
        for m, t in was_training.items():
            m.training = t


class TranslationPipeline(Pipeline):
    """uint8 images in, uint8 images out (``translate`` / calling it); float [-1, 1] with ``generate``."""

    kind = "translation"

    def __init__(self, model, model_cfg, nets, ema, settings, device, **loaded) -> None:
        super().__init__(model, model_cfg, nets, ema, settings, device, **loaded)
        self.mode: str = settings.get("mode") or default_inference_mode(int(settings.get("train_batch_size", 64)))
        if self.mode not in INFERENCE_MODES:
            raise GanforgeError(f"Unknown inference mode {self.mode!r}; choose one of: {', '.join(INFERENCE_MODES)}.")
        self.seed: int = int(settings.get("seed", 0))
        G = nets[self.sample_net]
        self.input_nc, self.output_nc = int(G.input_nc), int(G.output_nc)
        self.multiple = 2 ** int(getattr(G, "num_downs", 0))
        self.record: dict[str, Any] = dict(settings.get("record") or {})  # what was loaded, written with outputs

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "mode": self.mode}

    def settings_record(self) -> dict[str, Any]:
        """How its outputs were made (written beside them): the inference mode and the dropout seed."""
        return {"mode": self.mode, "seed": self.seed}

    def directions(self) -> list[str]:
        """The directions it translates in: pix2pix's one, input -> target."""
        return ["AtoB"]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "input_nc": self.input_nc, "output_nc": self.output_nc,
                "image_size": int(getattr(self.model_cfg, "image_size", 0) or 0), "directions": self.directions()}

    @classmethod
    def settings_from_meta(cls, meta):
        saved = super().settings_from_meta(meta)
        if "mode" not in saved:  # first-release checkpoints: the training batch size decides
            raw = meta.get("config") or {}
            saved["mode"] = default_inference_mode(int(raw.get("batch_size", 64)))
        return saved

    # ------------------------------------------------------------------ float tensors
    def forward(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """G(A): A [N, input_nc, H, W] in [-1, 1] -> [N, output_nc, H, W] in [-1, 1], sides multiples of
        ``multiple``; the network as it is (export puts it in eval mode)."""
        return net(inputs["A"])

    def generate(self, inputs: dict[str, torch.Tensor], ema: bool | None = None, net: nn.Module | None = None,
                 mode: str | None = None) -> torch.Tensor:
        """G(A) in the inference mode (``mode`` or the pipeline's); reference mode runs each image alone."""
        net = net if net is not None else self.generator(ema)
        mode = mode or self.mode
        A = inputs["A"].to(next(net.parameters()).device)
        with inference_mode(net, mode):
            if mode == "reference":
                return torch.cat([net(A[i:i + 1]) for i in range(A.shape[0])])
            return net(A)

    # ------------------------------------------------------------------ uint8 images
    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return to_uint8(run_padded(lambda t: net(t.to(self.device)), x, self.multiple))

    @applies_threads
    @torch.no_grad()
    def translate(self, images: torch.Tensor, size: int | None = None, batch_size: int = 16,
                  mode: str | None = None, ema: bool | None = None) -> torch.Tensor:
        """uint8 [N, C, H, W] (any channels: converted to input_nc) -> uint8 [N, output_nc, H, W]."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise GanforgeError(f"Images to translate must be uint8 [N, C, H, W] (0-255), got {images.dtype} "
                                f"{list(images.shape)}; for float images in [-1, 1] use generate({{'A': x}}), or "
                                "ganforge.viz.to_uint8(x) first.")
        mode = mode or self.mode
        if mode not in INFERENCE_MODES:
            raise GanforgeError(f"Unknown inference mode {mode!r}; choose one of: {', '.join(INFERENCE_MODES)}.")
        net = self.generator(ema)
        x = convert_images(images, None, self.input_nc).float().div(127.5).sub(1.0)
        h, w = x.shape[-2:]
        if size is not None:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
        step = 1 if mode == "reference" else batch_size
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            with inference_mode(net, mode):
                out = torch.cat([self._run(net, x[i:i + step]) for i in range(0, x.shape[0], step)])
        if size is not None and (h, w) != (size, size):
            out = F.interpolate(out.float(), size=(h, w), mode="bicubic", align_corners=False)
            out = out.round().clamp(0, 255).to(torch.uint8)
        return out

    __call__ = translate

    # ------------------------------------------------------------------ signature
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("A", (-1, self.input_nc, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))]

    def output_spec(self) -> TensorSpec:
        return TensorSpec("B", (-1, self.output_nc, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))

    def example_inputs(self, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        size = int(getattr(self.model_cfg, "image_size", self.multiple) or self.multiple)
        g = torch.Generator().manual_seed(seed)
        return {"A": torch.rand(n, self.input_nc, size, size, generator=g) * 2 - 1}
