"""The GAN game of the lectures: k discriminator updates, then one generator update.

The same task trains unconditional models (G(z), D(x)) and class-conditional ones (G(z, y), D(x, y);
``model_cfg.num_classes > 0``), including ACGAN, whose D also returns class logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import LOSSES, gradient_penalty
from . import TASKS, Phase, Task


@TASKS.register("gan")
class GANTask(Task):
    """GAN with any registered loss (minimax, nonsaturating, lsgan, hinge, wgan-gp).

    D phase (repeated ``d_steps`` times, a fresh real batch each time): fake = G(z) without gradients,
    loss = d_loss(D(real), D(fake)) [+ gp_weight * gradient penalty]. G phase: fresh z, loss =
    g_loss(D(G(z))); D's weights are frozen, so only G's gradients are computed.

    Conditional models: real images are scored with their own labels; in the D phase the fakes get the
    real batch's labels (so D sees the same class mix on both sides, and the gradient penalty's
    interpolates have one label), in the G phase labels drawn uniformly from the classes. ACGAN adds
    cross-entropy of D's class logits: on real and fake images for D, on fake images for G (Odena et
    al. 2017).
    """

    ema_nets = ("G",)

    def __init__(self, nets, model_cfg, train_cfg) -> None:
        super().__init__(nets, model_cfg, train_cfg)
        self.gan_loss = LOSSES.get(train_cfg.loss)
        self.nz = model_cfg.nz
        self.num_classes = getattr(model_cfg, "num_classes", 0) if hasattr(model_cfg, "cond") else 0
        self.acgan = getattr(model_cfg, "cond", None) == "acgan"

    def phases(self) -> list[Phase]:
        c = self.cfg
        betas = (c.beta1, c.beta2)
        return [
            Phase("D", ("D",), lr=c.lr_d, betas=betas, repeat=c.d_steps, new_batch=True),
            Phase("G", ("G",), lr=c.lr_g, betas=betas, repeat=1, new_batch=False),
        ]

    def _noise(self, n: int, device) -> torch.Tensor:
        return torch.randn(n, self.nz, device=device)

    def _fake(self, G: nn.Module, n: int, device, y: torch.Tensor | None = None):
        """(fake images, their labels or None); labels are drawn uniformly unless given."""
        z = self._noise(n, device)
        if not self.num_classes:
            return G(z), None
        if y is None:
            y = torch.randint(0, self.num_classes, (n,), device=device)
        return G(z, y), y

    def _score(self, D: nn.Module, x: torch.Tensor, y: torch.Tensor | None):
        """(adversarial logits [N] as float32, class logits [N, K] or None)."""
        out = D(x) if y is None else D(x, y)
        if self.acgan:
            return out[0].float(), out[1].float()
        return out.float(), None

    def loss(self, phase, batch, nets):
        real = batch["image"]
        G, D = nets["G"], nets["D"]
        n, device = real.shape[0], real.device
        if phase.name == "D":
            y_real = batch["label"] if self.num_classes else None
            with torch.no_grad():
                fake, y_fake = self._fake(G, n, device, y_real)
            (r, r_cls), (f, f_cls) = self._score(D, real, y_real), self._score(D, fake, y_fake)
            loss = self.gan_loss.d_loss(r, f)
            logs = {"loss_D": loss.detach()}
            if self.acgan:
                cls = F.cross_entropy(r_cls, y_real) + F.cross_entropy(f_cls, y_fake)
                loss = loss + cls
                logs["cls_D"] = cls.detach()
                logs["acc_real"] = (r_cls.detach().argmax(1) == y_real).float().mean()
            if self.gan_loss.gradient_penalty and self.cfg.gp_weight > 0:
                gp = gradient_penalty(D if y_real is None else lambda x: self._score(D, x, y_real)[0], real, fake)
                loss = loss + self.cfg.gp_weight * gp
                logs["gp"] = gp.detach()
            squash = torch.sigmoid if self.gan_loss.probabilities else (lambda t: t)
            logs["D_real"] = squash(r.detach()).mean()
            logs["D_fake"] = squash(f.detach()).mean()
            return loss, logs
        fake, y_fake = self._fake(G, n, device)
        f, f_cls = self._score(D, fake, y_fake)
        loss = self.gan_loss.g_loss(f)
        logs = {"loss_G": loss.detach()}
        if self.acgan:
            cls = F.cross_entropy(f_cls, y_fake)
            loss = loss + cls
            logs["cls_G"] = cls.detach()
        return loss, logs

    # ------------------------------------------------------------------ sampling
    def grid_columns(self, n: int) -> int | None:
        """Images per row of a sample grid: one row per class for conditional models."""
        return max(1, math.ceil(n / self.num_classes)) if self.num_classes else None

    def fixed_inputs(self, n, seed):
        """{"z": [n, nz]} (+ "y": [n], class-major rows: image i has class (i // columns) % K).

        Every image has its own z; ``ganforge sample --class`` replaces y."""
        g = torch.Generator().manual_seed(seed)
        inputs = {"z": torch.randn(n, self.nz, generator=g)}
        if self.num_classes:
            inputs["y"] = (torch.arange(n) // self.grid_columns(n)) % self.num_classes
        return inputs

    def generate(self, net: nn.Module, inputs):
        if not self.num_classes:
            return net(inputs["z"])
        y = inputs["y_soft"] if "y_soft" in inputs else inputs["y"]
        return net(inputs["z"], y)

    def render_samples(self, net, inputs, path, step) -> None:
        from ..viz import save_grid, to_uint8

        images = to_uint8(self.generate(net, inputs))
        if not self.num_classes:
            save_grid(images, path)
            return
        cols = self.grid_columns(images.shape[0])
        save_grid(images, path, nrow=cols, row_labels=self.row_labels(inputs["y"], cols))

    def row_labels(self, y: torch.Tensor, columns: int) -> list[str]:
        """The class name of each row of a grid of images with labels ``y``, ``columns`` per row."""
        return [self.class_name(int(y[r * columns])) for r in range(math.ceil(len(y) / columns))]

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)

