"""Differentiable augmentation of the images a discriminator sees, for training on little data.

Both kinds transform real *and* generated images the same way, every time D looks at them (in D's and in
G's phase), with operations that gradients flow through, so G is never taught to draw the augmentation:

* DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): every
  image gets every operation of a policy. The operations, on images in [-1, 1]:
  ``color`` (brightness + U(-0.5, 0.5); saturation: distance to the channel mean x U(0, 2); contrast:
  distance to the image mean x U(0.5, 1.5)), ``translation`` (an integer shift of up to 1/8 of the size
  in each direction, zero-padded), ``cutout`` (a square of half the size, at a random place, set to 0).
* ADA-style adaptive probability (Karras et al. 2020, "Training Generative Adversarial Networks with
  Limited Data", sec. 3): each operation is applied to each image with probability p, and p follows
  D's overfitting: every ``interval`` D updates, r_t = E[sign(D(real))] is compared with a target (0.6),
  and p moves by (batch x interval) / (images for p to go from 0 to 1) up or down. The operations are
  the DiffAugment ones above, not ADA's full pipeline of 18 geometric and colour transforms.

``policy`` strings are comma-separated operation names, e.g. ``"color,translation,cutout"``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import GanforgeError

AUGMENT_KINDS = ("none", "diffaugment", "ada", "auto")


def _brightness(x: torch.Tensor, r: Callable[..., torch.Tensor]) -> torch.Tensor:
    return x + (r(x.shape[0], 1, 1, 1) - 0.5)


def _saturation(x: torch.Tensor, r: Callable[..., torch.Tensor]) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (r(x.shape[0], 1, 1, 1) * 2) + mean


def _contrast(x: torch.Tensor, r: Callable[..., torch.Tensor]) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (r(x.shape[0], 1, 1, 1) + 0.5) + mean


def translate(x: torch.Tensor, r: Callable[..., torch.Tensor], ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its size each way, filling with 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (r(n) * (2 * sh + 1)).long().clamp_(max=2 * sh) - sh  # uniform integers in [-sh, sh]
    dx = (r(n) * (2 * sw + 1)).long().clamp_(max=2 * sw) - sw
    padded = torch.nn.functional.pad(x, [sw, sw, sh, sh])  # zeros all round
    rows = (torch.arange(h, device=x.device)[None, :] + sh - dy[:, None])[:, :, None]  # [N, H, 1]
    cols = (torch.arange(w, device=x.device)[None, :] + sw - dx[:, None])[:, None, :]  # [N, 1, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, r: Callable[..., torch.Tensor], ratio: float = 0.5) -> torch.Tensor:
    """Set a square of ``ratio`` of the size, centred at a uniform random pixel, to 0 in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (r(n) * (h + 1 - ch % 2)).long()[:, None, None]
    cx = (r(n) * (w + 1 - cw % 2)).long()[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch) & (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw)
    return x * (~inside)[:, None].to(x.dtype)


OPERATIONS: dict[str, tuple[Callable[..., torch.Tensor], ...]] = {
    "color": (_brightness, _saturation, _contrast),
    "translation": (translate,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """The operation names of ``policy`` ("color,translation,cutout"), each checked."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for name in names:
        if name not in OPERATIONS:
            raise GanforgeError(f"Unknown augmentation {name!r} in policy {policy!r}; choose from: "
                                f"{', '.join(OPERATIONS)}.")
    return names


def augment(x: torch.Tensor, policy: tuple[str, ...], p: float = 1.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` [N, C, H, W] with the operations of ``policy``; each one applied to each image with
    probability ``p`` (1: DiffAugment, every image every operation). Differentiable in ``x``."""
    if p <= 0 or not policy:
        return x

    def r(*shape: int) -> torch.Tensor:
        return torch.rand(shape, device=x.device, dtype=x.dtype, generator=generator)

    for name in policy:
        for op in OPERATIONS[name]:
            out = op(x, r)
            if p < 1:
                keep = (torch.rand(x.shape[0], device=x.device, generator=generator) >= p)[:, None, None, None]
                out = torch.where(keep, x, out)
            x = out
    return x


class AdaptiveProbability:
    """ADA's controller of the augmentation probability p (Karras et al. 2020, eq. 1 and sec. 3).

    ``observe(real_logits)`` after each D update adds sign(D(real)) to a running sum; every ``interval``
    updates p += sign(r_t - target) x (images seen in those updates) / ``speed_images``, clamped to
    [0, 1], where r_t is the mean sign over the interval."""

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: int = 100_000) -> None:
        self.target, self.interval, self.speed_images = target, interval, speed_images
        self.p = 0.0
        self.signs = 0.0
        self.count = 0
        self.updates = 0
        self.last_rt = 0.0

    def observe(self, real_logits: torch.Tensor) -> None:
        """Add one D update's real logits; the sum stays on their device until the interval ends (one
        device-to-host copy per ``interval`` updates, not one per update)."""
        self.signs = self.signs + torch.sign(real_logits.detach().float()).sum()
        self.count += real_logits.numel()
        self.updates += 1
        if self.updates % self.interval == 0:
            self.last_rt = float(self.signs) / max(self.count, 1)
            step = self.count / self.speed_images
            self.p = min(1.0, max(0.0, self.p + (step if self.last_rt > self.target else -step)))
            self.signs, self.count = 0.0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "signs": float(self.signs), "count": self.count, "updates": self.updates,
                "last_rt": self.last_rt}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.signs = float(state["p"]), float(state["signs"])
        self.count, self.updates = int(state["count"]), int(state["updates"])
        self.last_rt = float(state.get("last_rt", 0.0))
