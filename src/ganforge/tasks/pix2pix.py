"""pix2pix (Isola et al. 2017): paired translation A -> B with a U-Net G and a PatchGAN D on concat(A, .).

One training step, as in the reference implementation: fake_B = G(A) once (the task's shared
forward, with G's graph kept), then the D update on the detached fake, then the G update through the
same fake. Losses (reference scaling):

* D: 0.5 * (loss(D(A, B), real) + loss(D(A, fake_B), fake)); for lsgan the 0.5 is already inside
  ``lsgan_d_loss``.
* G: gan_weight * loss(D(A, fake_B), real) + lambda_l1 * |fake_B - B|_1 (mean over pixels). With
  ``gan_weight=0`` the D phase is dropped: the same U-Net trained with L1 alone.

Inference mode (``render_samples`` and ``ganforge translate``): ``reference`` does what the
reference's test.py does without ``--eval``: dropout stays on and batch norm normalises with the
batch's own statistics (the running statistics are left untouched); ``eval`` uses the running
statistics and no dropout. By default runs trained with batch size 1 use ``reference``, others
``eval`` (``default_inference_mode``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import GanforgeError
from ..losses import LOSSES
from ..viz import to_uint8
from ..viz.columns import save_column_grid
from . import Phase, Task


@dataclass
class Pix2PixOptions:
    """cGAN + L1 (``task.NAME=value``; also at the top level: ``lambda_l1=100 gan_weight=0``)."""

    loss: str = "vanilla"  # vanilla (= nonsaturating) | lsgan | hinge
    d_steps: int = 1  # discriminator updates per step, all on the step's batch
    lambda_l1: float = 100.0  # weight of the L1 term |G(A) - B|
    gan_weight: float = 1.0  # weight of the GAN term (0 = the U-Net trained with L1 alone)

    def validate(self) -> None:
        if LOSSES.get(self.loss).gradient_penalty or LOSSES.get(self.loss).weight_clipping:
            raise GanforgeError(f"pix2pix supports the losses vanilla (nonsaturating), lsgan and hinge, not "
                                f"{self.loss}.")
        if self.d_steps < 1:
            raise GanforgeError(f"d_steps must be a positive integer, got {self.d_steps!r}.")
        for name in ("lambda_l1", "gan_weight"):
            if not getattr(self, name) >= 0:
                raise GanforgeError(f"{name} must be zero or positive, got {getattr(self, name)!r}.")


class Pix2PixTask(Task):
    """cGAN + L1 on paired batches {"A": [B, Ca, S, S], "B": [B, Cb, S, S]} in [-1, 1]."""

    shared_forward = ("G",)
    options_cls = Pix2PixOptions

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        self.gan_loss = LOSSES.get(self.options.loss)
        lsgan = self.gan_loss.name == "lsgan"
        self.d_scale = 1.0 if lsgan else 0.5  # reference: D loss halved; lsgan_d_loss already holds the 1/2
        self.g_scale = 2.0 if lsgan else 1.0  # reference lsgan G loss is MSE without the 1/2
        self.gan_weight = float(self.options.gan_weight)
        self.lambda_l1 = float(self.options.lambda_l1)

    def phases(self) -> list[Phase]:
        c = self.loop
        betas = c.betas
        g = Phase("G", ("G",), lr=c.lr_g, betas=betas, repeat=1, new_batch=False)
        if self.gan_weight == 0:
            return [g]
        return [Phase("D", ("D",), lr=c.lr_d, betas=betas, repeat=self.options.d_steps, new_batch=False), g]

    def forward(self, batch, nets) -> dict[str, torch.Tensor]:
        return {"fake": nets["G"](batch["A"])}

    def loss(self, phase, batch, nets):
        A, B, fake = batch["A"], batch["B"], batch["fake"]
        D = nets.get("D")
        if phase.name == "D":
            r = D(torch.cat([A, B], 1)).float()
            f = D(torch.cat([A, fake.detach()], 1)).float()
            loss = self.d_scale * self.gan_loss.d_loss(r, f)
            squash = torch.sigmoid if self.gan_loss.probabilities else (lambda t: t)
            return loss, {"loss_D": loss.detach(), "D_real": squash(r.detach()).mean(),
                          "D_fake": squash(f.detach()).mean()}
        l1 = F.l1_loss(fake.float(), B.float())
        logs = {"loss_G_L1": l1.detach()}
        loss = self.lambda_l1 * l1
        if self.gan_weight:
            gan = self.g_scale * self.gan_loss.g_loss(D(torch.cat([A, fake], 1)).float())
            loss = loss + self.gan_weight * gan
            logs["loss_G_GAN"] = gan.detach()
        return loss, logs

    # ------------------------------------------------------------------ pictures
    def render_samples(self, net, inputs, path, step) -> None:
        device = next(net.parameters()).device
        # dropout noise: the same in every picture, and the training RNG streams (CPU and CUDA) untouched
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.loop.seed)
            fake = self.generate(net, inputs)
        split = self.held_out.get("split", "test")
        title = (f"step {step}: {split} pairs" if split != "train"
                 else f"step {step}: training pairs (the data has no test or val split)")
        save_column_grid([to_uint8(inputs["A"]), to_uint8(fake), to_uint8(inputs["B"])], path,
                         ["input", "output", "target"], title=title)

    def render_real(self, batch, path, n) -> None:
        save_column_grid([batch["A"][:n], batch["B"][:n]], path, ["input A", "target B"],
                         title="training pairs, as the networks see them")
