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

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from ..losses import LOSSES
from . import TASKS, Phase, Task

INFERENCE_MODES = ("reference", "eval")


def default_inference_mode(train_batch_size: int) -> str:
    """``reference`` (per-image batch statistics, dropout on) for batch-1 training, as the reference's
    test.py; ``eval`` (running statistics) for larger training batches, whose batch statistics one test
    image cannot reproduce."""
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


def paired_grid(A: torch.Tensor, fake: torch.Tensor, B: torch.Tensor | None, groups: int = 1) -> tuple:
    """uint8 images laid out as rows of (input, output[, target]) triplets, ``groups`` triplets per row.

    Returns (images [N * k, C, H, W], images per row) with channels made equal (gray -> RGB)."""
    parts = [A, fake] + ([B] if B is not None else [])
    c = max(p.shape[1] for p in parts)
    parts = [p.expand(-1, c, -1, -1) if p.shape[1] != c else p for p in parts]
    k = len(parts)
    n = A.shape[0]
    rows = -(-n // groups)
    out = []
    for r in range(rows):
        for g in range(groups):
            i = r + g * rows
            for p in parts:
                out.append(p[i] if i < n else torch.full_like(p[0], 255))
    return torch.stack(out), k * groups


@TASKS.register("pix2pix")
class Pix2PixTask(Task):
    """cGAN + L1 on paired batches {"A": [B, Ca, S, S], "B": [B, Cb, S, S]} in [-1, 1]."""

    data_kind = "paired"
    samples_from_noise = False
    shared_forward = ("G",)

    def __init__(self, nets, model_cfg, train_cfg) -> None:
        super().__init__(nets, model_cfg, train_cfg)
        self.gan_loss = LOSSES.get(train_cfg.loss)
        if self.gan_loss.gradient_penalty:
            raise GanforgeError("pix2pix supports the losses vanilla (nonsaturating), lsgan and hinge, not "
                                f"{train_cfg.loss}.")
        lsgan = self.gan_loss.name == "lsgan"
        self.d_scale = 1.0 if lsgan else 0.5  # reference: D loss halved; lsgan_d_loss already holds the 1/2
        self.g_scale = 2.0 if lsgan else 1.0  # reference lsgan G loss is MSE without the 1/2
        self.gan_weight = float(train_cfg.gan_weight)
        self.lambda_l1 = float(train_cfg.lambda_l1)
        self.pairs: dict[str, torch.Tensor] = {}  # held-out pairs for the sample pictures (uint8)
        self.mode = default_inference_mode(train_cfg.batch_size)  # for the sample pictures

    def phases(self) -> list[Phase]:
        c = self.cfg
        betas = (c.beta1, c.beta2)
        g = Phase("G", ("G",), lr=c.lr_g, betas=betas, repeat=1, new_batch=False)
        if self.gan_weight == 0:
            return [g]
        return [Phase("D", ("D",), lr=c.lr_d, betas=betas, repeat=c.d_steps, new_batch=False), g]

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
    def fixed_inputs(self, n, seed):
        if not self.pairs:
            raise GanforgeError("pix2pix generates from input images, not from noise; use ganforge translate.")
        return {k: v[:n].float().div(127.5).sub(1) for k, v in self.pairs.items()}

    def generate(self, net, inputs):
        """G(A); in the reference mode each image on its own (batch norm on its own statistics)."""
        A = inputs["A"]
        with inference_mode(net, self.mode):
            if self.mode == "reference":
                return torch.cat([net(A[i:i + 1]) for i in range(A.shape[0])])
            return net(A)

    def render_samples(self, net, inputs, path, step) -> None:
        from ..viz import save_grid, to_uint8

        device = next(net.parameters()).device
        # dropout noise: the same in every picture, and the training RNG streams (CPU and CUDA) untouched
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed)
            fake = self.generate(net, inputs)
        images, per_row = paired_grid(to_uint8(inputs["A"]), to_uint8(fake), to_uint8(inputs["B"]),
                                      groups=2 if fake.shape[0] >= 8 else 1)
        save_grid(images, path, nrow=per_row)

    def render_real(self, batch, path, n) -> None:
        from ..viz import save_grid

        images, per_row = paired_grid(batch["A"][:n], batch["B"][:n], None,
                                      groups=4 if n >= 16 else 2 if n >= 4 else 1)
        save_grid(images, path, nrow=per_row)
