"""SRGAN's training schedule (Ledig et al. 2017, section 3): SRResNet on MSE first, then the GAN started from it.

Batches are pairs {"A": LR [B, C, h, w], "B": HR [B, C, h * scale, w * scale]} in [-1, 1]; SR = G(LR) is
computed once per step (the shared forward, as pix2pix's) and used by both phases.

* ``srresnet``: one phase, G minimises MSE(SR, HR) (on [-1, 1] images, as the paper's HR range).
* ``srgan``: two phases, D then G, in two stages counted by G updates:

  1. the SRResNet stage, the first ``mse_steps`` steps: G on MSE alone, D left untouched (its phase computes
     nothing and gives no gradients, so Adam starts D's moments at the GAN stage as if D were new);
     after each G update the model's ``G_mse`` takes a copy of G, so every checkpoint holds the SRResNet
     as it was at the end of this stage;
  2. the GAN stage: D minimises the GAN loss of D(HR) (real) against D(SR) (fake); G minimises
     content(SR, HR) + ``adversarial_weight`` (1e-3) x the non-saturating loss -log D(SR).

Content loss (``content``): ``features`` = mean over the content layers of MSE(phi(SR) / s, phi(HR) / s), the
feature maps phi of a fixed network of :mod:`ganforge.style.features` taken of images in [0, 1]; or ``mse``
= MSE(SR, HR). The feature network is the one stylize uses: ``random`` (default, offline: random multi-scale
filters, every size a content layer, s = 1) or ``vgg19`` with ImageNet weights found as stylize finds them
(``weights``, $GANFORGE_WEIGHTS, the torch hub cache, a download), layer phi_5,4 = ``relu5_4`` (after the
ReLU, as the paper; ``content_layers=[conv5_4]`` takes it before, as ESRGAN) and s = 12.75 (the paper's
rescaling of the VGG feature maps).

Precision: the D phase of the SRResNet stage has no gradients, which fp16's gradient scaler refuses; train
with fp32 or bf16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GanforgeError
from ..losses import LOSSES
from ..metrics.sr import bicubic_upscale
from ..style.features import FEATURES, build_features
from ..viz import to_uint8
from ..viz.columns import save_column_grid
from . import Phase, Task

CONTENT = ("features", "mse")
VGG_SCALE = 12.75  # the paper divides VGG19's feature maps by this


@dataclass
class SRGANOptions:
    """The schedule and losses of SRGAN (``task.NAME=value``)."""

    mse_steps: int = 1000  # steps of the SRResNet stage (MSE) before the GAN stage; srresnet: every step
    content: str = "features"  # features | mse: the GAN stage's content loss
    adversarial_weight: float = 1e-3  # weight of G's adversarial loss in the GAN stage
    network: str = "random"  # random (offline) | vgg19 (ImageNet weights) | vgg16: phi of the content loss
    weights: str | None = None  # VGG weights file (else $GANFORGE_WEIGHTS, the torch hub cache, a download)
    content_layers: tuple[str, ...] | None = None  # default: random every size (k3 ...), vgg19 relu5_4
    feature_scale: float | None = None  # feature maps are divided by this (default: vgg 12.75, random 1)
    network_seed: int = 0  # seed of the random network's filters
    random_sizes: tuple[int, ...] | None = None  # filter sizes of the random network (default 3, 5, 7, 11)
    random_filters: int | None = None  # filters per size of the random network (default 32)

    def validate(self) -> None:
        if self.mse_steps < 0:
            raise GanforgeError(f"task.mse_steps must be zero or positive, got {self.mse_steps!r}.")
        if self.content not in CONTENT:
            raise GanforgeError(f"Unknown content loss {self.content!r} (task.content); choose features or mse.")
        if self.network not in FEATURES:
            raise GanforgeError(f"Unknown feature network {self.network!r} (task.network); choose one of: "
                                f"{', '.join(FEATURES.names())}.")
        for name in ("adversarial_weight", "feature_scale"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0 or (name == "feature_scale" and v == 0)):
                raise GanforgeError(f"task.{name} must be positive, got {v!r}.")


def _to01(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] in [-1, 1] -> RGB in [0, 1] (gray repeated), what the feature networks take."""
    return ((x.float() + 1) / 2).expand(-1, 3, -1, -1)


class SRGANTask(Task):
    """SRResNet (MSE) then SRGAN (content + adversarial) on {"A": LR, "B": HR} batches in [-1, 1]."""

    options_cls = SRGANOptions
    shared_forward = ("G",)
    ema_nets = ("G",)

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        self.adversarial = "D" in nets
        self.updates = 0  # G updates so far (the stage is read from it)
        self.gan_loss = LOSSES.get("nonsaturating")
        o = self.options
        self.features = None
        if self.adversarial and o.content == "features":
            self.features = build_features(o.network, "max", o.weights, o.network_seed, o.random_sizes,
                                           o.random_filters)
            names = self.features.layer_names
            default = names if o.network == "random" else ("relu5_4",)
            self.content_layers = tuple(o.content_layers or default)
            self.features.check_layers(self.content_layers, "content layer")
            self.feature_scale = float(o.feature_scale or (1.0 if o.network == "random" else VGG_SCALE))

    @property
    def mse_stage(self) -> bool:
        """Whether the next step belongs to the SRResNet stage."""
        return not self.adversarial or self.updates < self.options.mse_steps

    def phases(self) -> list[Phase]:
        betas = self.loop.betas
        g = Phase("G", ("G",), lr=self.loop.lr_g, betas=betas, new_batch=False)
        if not self.adversarial:
            return [g]
        return [Phase("D", ("D",), lr=self.loop.lr_d, betas=betas, new_batch=False), g]

    def forward(self, batch, nets) -> dict[str, torch.Tensor]:
        return {"fake": nets["G"](batch["A"])}

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The GAN stage's content loss of SR against HR (both [B, C, H, W] in [-1, 1]); see the module docstring."""
        if self.features is None:
            return F.mse_loss(sr.float(), hr.float())
        net = self.features.to(sr.device)
        s = self.feature_scale
        got = net(_to01(sr), self.content_layers)
        with torch.no_grad():
            want = net(_to01(hr), self.content_layers)
        return torch.stack([F.mse_loss(got[k] / s, want[k] / s) for k in self.content_layers]).mean()

    def loss(self, phase, batch, nets):
        hr, fake = batch["B"], batch["fake"]
        if phase.name == "D":
            if self.mse_stage:  # nothing to learn yet: a loss without D in its graph leaves D's gradients None
                return torch.zeros((), device=hr.device, requires_grad=True), {}
            D = nets["D"]
            r, f = D(hr).float(), D(fake.detach()).float()
            loss = self.gan_loss.d_loss(r, f)
            return loss, {"loss_D": loss.detach(), "D_real": torch.sigmoid(r.detach()).mean(),
                          "D_fake": torch.sigmoid(f.detach()).mean()}
        if self.mse_stage:
            loss = F.mse_loss(fake.float(), hr.float())
            return loss, {"loss_G_mse": loss.detach()}
        content = self.content_loss(fake, hr)
        adversarial = self.gan_loss.g_loss(nets["D"](fake).float())
        loss = content + self.options.adversarial_weight * adversarial
        return loss, {"loss_G": loss.detach(), "loss_G_content": content.detach(),
                      "loss_G_adv": adversarial.detach()}

    def after_update(self, phase, nets) -> None:
        if phase.name != "G":
            return
        if self.adversarial and self.mse_stage:
            with torch.no_grad():
                nets["G_mse"].load_state_dict(nets["G"].state_dict())
        self.updates += 1

    def state_dict(self) -> dict:
        return {"updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state.get("updates", 0))

    def plot_labels(self, model: str) -> dict:
        return {"title": f"{model} (GAN stage from step {self.options.mse_steps})" if self.adversarial else model}

    # ------------------------------------------------------------------ pictures
    def _bicubic(self, lr: torch.Tensor) -> torch.Tensor:
        scale = int(self.model_cfg.scale)
        out = [bicubic_upscale(np.ascontiguousarray(x.permute(1, 2, 0).numpy()), scale) for x in lr]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)

    def render_samples(self, net, inputs, path, step) -> None:
        lr, hr = to_uint8(inputs["A"]).cpu(), to_uint8(inputs["B"]).cpu()
        columns = {"LR (nearest)": F.interpolate(lr, size=hr.shape[-2:], mode="nearest"), "bicubic": self._bicubic(lr)}
        if self.adversarial and not self.mse_stage:  # the MSE stage's end beside the GAN
            columns["SRResNet"] = to_uint8(self.generate(self.nets["G_mse"], inputs)).cpu()
        columns["SRResNet" if self.mse_stage else "SRGAN"] = to_uint8(self.generate(net, inputs)).cpu()
        columns["HR"] = hr
        split = self.held_out.get("split", "test")
        save_column_grid(list(columns.values()), path, list(columns), title=f"step {step}: {split} crops, "
                                                                            f"x{self.model_cfg.scale}")

    def render_real(self, batch, path, n) -> None:
        lr, hr = batch["A"][:n], batch["B"][:n]
        save_column_grid([F.interpolate(lr, size=hr.shape[-2:], mode="nearest"), hr], path, ["LR (nearest)", "HR"],
                         title="training pairs, as the networks see them")
