"""The GAN game of the lectures: k discriminator updates, then one generator update."""

from __future__ import annotations

import torch
from torch import nn

from ..losses import LOSSES, gradient_penalty
from . import TASKS, Phase, Task


@TASKS.register("gan")
class GANTask(Task):
    """Unconditional GAN with any registered loss (minimax, nonsaturating, lsgan, hinge, wgan-gp).

    D phase (repeated ``d_steps`` times, a fresh real batch each time): fake = G(z) without gradients,
    loss = d_loss(D(real), D(fake)) [+ gp_weight * gradient penalty]. G phase: fresh z, loss =
    g_loss(D(G(z))); D's weights are frozen, so only G's gradients are computed.
    """

    ema_nets = ("G",)

    def __init__(self, nets, model_cfg, train_cfg) -> None:
        super().__init__(nets, model_cfg, train_cfg)
        self.gan_loss = LOSSES.get(train_cfg.loss)
        self.nz = model_cfg.nz

    def phases(self) -> list[Phase]:
        c = self.cfg
        betas = (c.beta1, c.beta2)
        return [
            Phase("D", ("D",), lr=c.lr_d, betas=betas, repeat=c.d_steps, new_batch=True),
            Phase("G", ("G",), lr=c.lr_g, betas=betas, repeat=1, new_batch=False),
        ]

    def _noise(self, n: int, device) -> torch.Tensor:
        return torch.randn(n, self.nz, device=device)

    def loss(self, phase, batch, nets):
        real = batch["image"]
        G, D = nets["G"], nets["D"]
        if phase.name == "D":
            with torch.no_grad():
                fake = G(self._noise(real.shape[0], real.device))
            r, f = D(real), D(fake)
            loss = self.gan_loss.d_loss(r.float(), f.float())
            logs = {"loss_D": loss.detach()}
            if self.gan_loss.gradient_penalty and self.cfg.gp_weight > 0:
                gp = gradient_penalty(D, real, fake)
                loss = loss + self.cfg.gp_weight * gp
                logs["gp"] = gp.detach()
            if self.gan_loss.probabilities:
                logs["D_real"] = torch.sigmoid(r.detach().float()).mean()
                logs["D_fake"] = torch.sigmoid(f.detach().float()).mean()
            else:
                logs["D_real"] = r.detach().float().mean()
                logs["D_fake"] = f.detach().float().mean()
            return loss, logs
        fake = G(self._noise(real.shape[0], real.device))
        loss = self.gan_loss.g_loss(D(fake).float())
        return loss, {"loss_G": loss.detach()}

    def fixed_inputs(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        return {"z": torch.randn(n, self.nz, generator=g)}

    def generate(self, net: nn.Module, inputs):
        return net(inputs["z"])
