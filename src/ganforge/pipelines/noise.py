"""Generating from noise: G(z) for unconditional models, G(z, y) for class-conditional ones; G(z) -> points
for the toy models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import resolve_class
from ..errors import GanforgeError
from ..threads import applies_threads
from ..viz import to_uint8
from .base import Pipeline, TensorSpec

CLUSTER_STREAM = 1_000_003  # a self-conditioned model draws the clusters of seed s from the generator of s + this


class NoisePipeline(Pipeline):
    """Images from latent vectors. One seed is one batch of latents: ``fixed_inputs(n, seed)`` is
    ``torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))``, so a seed always means the
    same images. Conditional models (``num_classes > 0``) take labels y as well: by default one row
    of the grid per class (image i has class (i // columns) % K)."""

    kind = "noise"

    def __init__(self, model, model_cfg, nets, ema, settings, device, **loaded) -> None:
        super().__init__(model, model_cfg, nets, ema, settings, device, **loaded)
        self.nz = int(getattr(model_cfg, "nz", 0) or 0)
        self.num_classes = int(getattr(model_cfg, "num_classes", 0) or 0)
        if self.num_classes and len(self.class_names) != self.num_classes:
            self.class_names = [str(i) for i in range(self.num_classes)]
        prior = getattr(model_cfg, "label_prior", None)
        # a self-conditioned model (cgan with clusters): float [K] shares of its clusters, by which it draws them
        self.label_prior: torch.Tensor | None = prior() if prior is not None else None
        self._inputs_key: tuple[int, int] | None = None
        self._inputs: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ inputs
    def latents(self, n: int, seed: int) -> torch.Tensor:
        """z [n, nz] of ``seed`` (CPU)."""
        return torch.randn(n, self.nz, generator=torch.Generator().manual_seed(seed))

    @property
    def clustered(self) -> bool:
        """Whether the classes are clusters the model found (self-conditioned), not the data's own classes."""
        return self.label_prior is not None

    def grid_columns(self, n: int) -> int | None:
        """Images per row of a sample grid: one row per class for conditional models (not for clusters)."""
        return max(1, math.ceil(n / self.num_classes)) if self.num_classes and not self.clustered else None

    def fixed_inputs(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """{"z": [n, nz]} (+ "y": [n], class-major rows; a self-conditioned model's clusters drawn by their
        shares from a second stream of ``seed``, so the first images of n and of more are the same) on the CPU,
        the same for every run with ``seed``."""
        inputs = {"z": self.latents(n, seed)}
        if self.clustered:
            g = torch.Generator().manual_seed(seed + CLUSTER_STREAM)
            inputs["y"] = torch.multinomial(self.label_prior, n, replacement=True, generator=g)
        elif self.num_classes:
            inputs["y"] = (torch.arange(n) // self.grid_columns(n)) % self.num_classes
        return inputs

    def class_index(self, name_or_index: str | int) -> int:
        """The label index of a class given by name (case-insensitive) or index."""
        if not self.num_classes:
            raise GanforgeError(f"{self.source!r} is an unconditional {self.name} model; it takes no class.")
        return resolve_class(name_or_index, self.class_names)

    def class_name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    def row_labels(self, y: torch.Tensor | None, columns: int | None) -> list[str] | None:
        """The class name of each row of a grid of images with labels ``y``, ``columns`` per row (None
        without labels)."""
        if y is None or columns is None:
            return None
        return [self.class_name(int(y[r * columns])) for r in range(math.ceil(len(y) / columns))]

    def inputs(self, n: int, seed: int, label: int | str | None = None) -> dict[str, torch.Tensor]:
        """The inputs of ``sample(n, seed, label=...)`` (CPU tensors; z and, if conditional, y)."""
        if self._inputs_key != (n, seed):
            self._inputs = self.fixed_inputs(n, seed)
            self._inputs_key = (n, seed)
        inputs = dict(self._inputs)
        if label is not None:
            inputs["y"] = torch.full((n,), self.class_index(label), dtype=torch.long)
        return inputs

    # ------------------------------------------------------------------ generating
    def forward(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """G(z, y), images [N, C, H, W] in [-1, 1]: one call shape for every noise model, y absent (None) for
        unconditional ones (their networks ignore it); y may be soft: "y_soft" [N, K] class weights."""
        return net(inputs["z"], inputs.get("y_soft", inputs.get("y")))

    def generate(self, inputs: dict[str, torch.Tensor], ema: bool | None = None,
                 net: nn.Module | None = None) -> torch.Tensor:
        """Float outputs for ``inputs`` (moved to the pipeline's device), with ``net`` or the generator."""
        net = net if net is not None else self.generator(ema)
        device = next(net.parameters()).device
        return self.forward(net, {k: v.to(device) for k, v in inputs.items()})

    def _check_images(self) -> None:
        """Nothing to refuse: it makes images (points models refuse)."""

    @torch.no_grad()
    def sample_batch(self, n: int, seed: int, start: int, count: int, ema: bool | None = None,
                     label: int | str | None = None) -> torch.Tensor:
        """Images ``start`` .. ``start + count`` of ``sample(n, seed)`` as uint8 [count, C, H, W]."""
        self._check_images()
        chunk = {k: v[start:start + count] for k, v in self.inputs(n, seed, label).items()}
        return to_uint8(self.generate(chunk, ema))

    @applies_threads
    def sample(self, n: int, seed: int = 0, ema: bool | None = None, batch_size: int = 256,
               label: int | str | None = None) -> np.ndarray:
        """n images as uint8 [n, H, W, C], reproducible for a given seed; ``label`` (a class name or
        index) makes every image of a conditional model that class."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise GanforgeError(f"The number of samples must be a positive integer, got {n!r}.")
        index = None if label is None else self.class_index(label)
        out = [self.sample_batch(n, seed, s, min(batch_size, n - s), ema, index) for s in range(0, n, batch_size)]
        return torch.cat(out).permute(0, 2, 3, 1).numpy()

    # ------------------------------------------------------------------ signature
    def image_shape(self) -> tuple[int, int, int]:
        c = self.model_cfg
        return (int(getattr(c, "channels", 3)), int(getattr(c, "image_size", 0)), int(getattr(c, "image_size", 0)))

    def input_specs(self) -> list[TensorSpec]:
        specs = [TensorSpec("z", (-1, self.nz), "float32")]
        if self.num_classes:
            specs.append(TensorSpec("y", (-1,), "int64", (0, self.num_classes - 1)))
        return specs

    def output_spec(self) -> TensorSpec:
        return TensorSpec("images", (-1, *self.image_shape()), "float32", (-1.0, 1.0))

    def example_inputs(self, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        inputs = self.fixed_inputs(n, seed)
        if self.num_classes:
            inputs["y"] = torch.arange(n) % self.num_classes
        return inputs

    def describe(self) -> dict[str, Any]:
        """A short JSON-able summary (for records, the studio and the command line)."""
        return {**super().describe(), "nz": self.nz, "num_classes": self.num_classes, "class_names": self.class_names,
                "clustered": self.clustered, "ema": sorted(self.ema), "image_shape": list(self.image_shape())}


class PointsPipeline(NoisePipeline):
    """Toy models: G(z) -> points [N, dim]; z uniform on [-1, 1] (as in figure 1) or normal."""

    kind = "points"

    def __init__(self, model, model_cfg, nets, ema, settings, device, **loaded) -> None:
        super().__init__(model, model_cfg, nets, ema, settings, device, **loaded)
        self.nz = int(model_cfg.latent_dim)
        self.z_dist = model_cfg.z_dist
        self.dim = int(model_cfg.dim)

    def latents(self, n: int, seed: int, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> torch.Tensor:
        g = generator if generator is not None else torch.Generator().manual_seed(seed)
        return latent(n, self.nz, self.z_dist, device, g)

    def output_spec(self) -> TensorSpec:
        return TensorSpec("points", (-1, self.dim), "float32")

    def _check_images(self) -> None:
        raise GanforgeError(f"{self.source!r} is a {self.name} run: it generates points, not images, so it cannot be "
                            "sampled as images or evaluated; its pictures are in the run's samples/.")

    def describe(self) -> dict[str, Any]:
        return {**{k: v for k, v in super().describe().items() if k != "image_shape"}, "dim": self.dim}


def latent(n: int, nz: int, dist: str, device: torch.device | str = "cpu",
           generator: torch.Generator | None = None) -> torch.Tensor:
    """z [n, nz]: uniform on [-1, 1] or standard normal."""
    if dist == "uniform":
        return torch.rand(n, nz, device=device, generator=generator) * 2 - 1
    return torch.randn(n, nz, device=device, generator=generator)
