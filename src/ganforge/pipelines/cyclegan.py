"""CycleGAN inference: two generators, two directions. G_A translates domain A to B, G_B domain B to A.

``direction`` ("AtoB", default, or "BtoA") selects the generator that ``generator()``, ``forward``,
``generate``, ``translate`` and the tensor signature use, so export code that calls
``input_specs / output_spec / example_inputs / forward`` gets one direction at a time: set
``pipe.direction = "BtoA"`` for G_B. ``translate(images, direction=...)`` overrides it for one call and
``cycle(images)`` returns the translation and its reconstruction by the other generator.

Sizes as in :mod:`ganforge.pipelines.translation`: sides that are not multiples of the generator's
(4 for the ResNets, 2**downs for a U-Net) are padded by reflection and cropped back. Instance norm uses
each image's own statistics, so the inference modes agree unless the run used batch norm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import GanforgeError
from ..threads import applies_threads
from .base import TensorSpec
from .translation import TranslationPipeline, inference_mode

DIRECTIONS = ("AtoB", "BtoA")
NETS = {"AtoB": ("G_A", "G_B"), "BtoA": ("G_B", "G_A")}  # direction -> (its generator, the inverse one)
DOMAINS = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}  # direction -> (input domain, output domain)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise GanforgeError(f"Unknown direction {direction!r}; choose AtoB (G_A: A -> B) or BtoA (G_B: B -> A).")
    return direction


class CycleGANPipeline(TranslationPipeline):
    """uint8 images of one domain in, uint8 images of the other out; float [-1, 1] with ``generate``.

    ``nets`` holds G_A and G_B (and, from a training run, D_A and D_B); a pipeline built from one reference
    generator holds only that one and translates only in its direction."""

    kind = "translation"

    def __init__(self, model, model_cfg, nets, ema, settings, device, **loaded) -> None:
        present = [d for d in DIRECTIONS if NETS[d][0] in nets]
        if not present:
            raise GanforgeError("A CycleGAN pipeline needs G_A or G_B.")
        self.sample_net = NETS[present[0]][0]  # what TranslationPipeline reads its channels from
        super().__init__(model, model_cfg, nets, ema, settings, device, **loaded)
        self.direction = settings.get("direction") or present[0]

    # ------------------------------------------------------------------ direction
    @property
    def direction(self) -> str:
        return self._direction

    @direction.setter
    def direction(self, value: str) -> None:
        check_direction(value)
        name = NETS[value][0]
        if name not in self.nets:
            have = ", ".join(n for n in ("G_A", "G_B") if n in self.nets)
            where = repr(str(self.path)) if self.path is not None else "This CycleGAN model"
            raise GanforgeError(f"{where} has no {name} ({' -> '.join(DOMAINS[value])}), only {have}; load "
                                f"{'latest_net_G_A.pth' if name == 'G_A' else 'latest_net_G_B.pth'} too to "
                                f"translate {value}.")
        self._direction = value
        self.sample_net = name
        G = self.nets[name]
        self.input_nc, self.output_nc = int(G.input_nc), int(G.output_nc)
        self.multiple = 2 ** int(getattr(G, "num_downs", 0))

    @property
    def inverse_net(self) -> str:
        """The generator that maps this direction's outputs back (G_B for AtoB)."""
        return NETS[self.direction][1]

    @property
    def has_inverse(self) -> bool:
        """Whether :meth:`cycle` can reconstruct (both generators are loaded)."""
        return self.inverse_net in self.nets

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "direction": self.direction}

    def settings_record(self) -> dict[str, Any]:
        return {**super().settings_record(), "direction": self.direction}

    def directions(self) -> list[str]:
        """The directions whose generator is loaded (AtoB: G_A, BtoA: G_B)."""
        return [d for d in DIRECTIONS if NETS[d][0] in self.nets]

    # ------------------------------------------------------------------ float tensors
    def forward(self, net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """G_A(A) for AtoB (inputs["A"]), G_B(B) for BtoA (inputs["B"]): [N, C, H, W] in [-1, 1], sides multiples
        of ``multiple``; the network as it is (export puts it in eval mode)."""
        return net(inputs[DOMAINS[self.direction][0]])

    def generate(self, inputs: dict[str, torch.Tensor], ema: bool | None = None, net: nn.Module | None = None,
                 mode: str | None = None) -> torch.Tensor:
        """This direction's translation of inputs["A"] (AtoB) or inputs["B"] (BtoA) in the inference mode."""
        net = net if net is not None else self.generator(ema)
        mode = mode or self.mode
        x = inputs[DOMAINS[self.direction][0]].to(next(net.parameters()).device)
        with inference_mode(net, mode):
            if mode == "reference":
                return torch.cat([net(x[i:i + 1]) for i in range(x.shape[0])])
            return net(x)

    # ------------------------------------------------------------------ uint8 images
    @applies_threads
    @torch.no_grad()
    def translate(self, images: torch.Tensor, size: int | None = None, batch_size: int = 16,
                  mode: str | None = None, ema: bool | None = None, direction: str | None = None) -> torch.Tensor:
        """uint8 [N, C, H, W] (converted to the input domain's channels) -> uint8 [N, C', H, W], translated
        in ``direction`` (default: the pipeline's)."""
        if direction is None or direction == self.direction:
            return super().translate(images, size=size, batch_size=batch_size, mode=mode, ema=ema)
        saved = self.direction
        self.direction = direction
        try:
            return super().translate(images, size=size, batch_size=batch_size, mode=mode, ema=ema)
        finally:
            self.direction = saved

    __call__ = translate

    @applies_threads
    def cycle(self, images: torch.Tensor, size: int | None = None, direction: str | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(translation, reconstruction) of uint8 images: G_A then G_B for AtoB, G_B then G_A for BtoA. The
        reconstruction starts from the uint8 translation, as a user who saved it would."""
        direction = check_direction(direction or self.direction)
        back = {"AtoB": "BtoA", "BtoA": "AtoB"}[direction]
        out = self.translate(images, size=size, direction=direction)
        return out, self.translate(out, size=size, direction=back)

    # ------------------------------------------------------------------ signature
    def input_specs(self) -> list[TensorSpec]:
        name = DOMAINS[self.direction][0]
        return [TensorSpec(name, (-1, self.input_nc, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))]

    def output_spec(self) -> TensorSpec:
        name = DOMAINS[self.direction][1]
        return TensorSpec(name, (-1, self.output_nc, -1, -1), "float32", (-1.0, 1.0), dynamic=(0, 2, 3))

    def example_inputs(self, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        size = int(getattr(self.model_cfg, "image_size", self.multiple) or self.multiple)
        g = torch.Generator().manual_seed(seed)
        name = DOMAINS[self.direction][0]
        return {name: torch.rand(n, self.input_nc, size, size, generator=g) * 2 - 1}
