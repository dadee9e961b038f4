"""The GAN game of the lectures: k discriminator updates, then one generator update.

The same task trains unconditional models (G(z), D(x)) and class-conditional ones (G(z, y), D(x, y);
``model_cfg.num_classes > 0``), including ACGAN, whose D also returns class logits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import AUGMENT_KINDS, AdaptiveProbability, augment, parse_policy
from ..errors import GanforgeError
from ..losses import LOSSES, gradient_penalty, r1_penalty
from ..viz import save_grid, to_uint8
from . import Phase, Task

SMALL_DATA = 10_000  # augment=auto augments D's inputs for data of at most this many images


def _one_image(n: int) -> str:
    return (f"mode_seeking compares pairs of samples within G's batch, but the batch holds {n} image; use "
            "batch_size=2 or more, or task.mode_seeking=0.")


@dataclass
class GANOptions:
    """The game (``task.NAME=value``; also at the top level: ``loss=hinge d_steps=5``)."""

    loss: str = "nonsaturating"  # minimax | nonsaturating | lsgan | hinge | wgan | wgan-gp
    d_steps: int = 1  # k: discriminator updates per generator update (the lectures' algorithm; WGAN's n_critic)
    gp_weight: float = 10.0  # gradient penalty weight for wgan-gp
    clip_value: float = 0.01  # wgan: D's weights are clamped to [-clip_value, clip_value] after each D update
    r1_weight: float = 0.0  # gamma of the R1 penalty gamma/2 E[||grad_x D(x)||^2] on real images (Mescheder 2018)
    # lazy R1 (Karras et al. 2020, StyleGAN2): the penalty on every r1_every-th D update only, weighted by r1_every,
    # so it costs about 1/r1_every of its double backward
    r1_every: int = 1
    # lambda of the mode-seeking term (Mao et al. 2019): G's batch is pairs with one label and two z, and G adds
    # lambda / (mean |G(z1) - G(z2)| / mean |z1 - z2| + 1e-5), so nearby z may not give the same image
    mode_seeking: float = 0.0
    # G's phase trains on the fakes D's phase just scored (pytorch/examples' DCGAN main.py does so): one forward
    # of G per step instead of two; with d_steps=1 and without the mode-seeking term
    reuse_fakes: bool = False
    # weight of ACGAN's classification losses (Odena et al. 2017 use 1), for a D with a classifier head
    # (cgan's cond=acgan, or model.classifier=true beside a projection or concat D)
    cls_weight: float = 1.0
    # what D sees (ganforge.augment): none | diffaugment | ada | auto (ada for data of at most SMALL_DATA
    # images, else none: on 1000 images ada matched none where D did not overfit, and diffaugment lost;
    # benchmarks/time_to_quality.py --small 1000)
    augment: str = "auto"
    augment_policy: str = "color,translation,cutout"  # the operations (DiffAugment's names)
    ada_target: float = 0.6  # ada: the target of r_t = E[sign(D(real))]
    ada_speed: int = 100_000  # ada: images for p to go from 0 to 1 (Karras et al. use 500k at their scale)

    def validate(self) -> None:
        LOSSES.get(self.loss)
        if self.augment not in AUGMENT_KINDS:
            raise GanforgeError(f"Unknown augment {self.augment!r}; choose one of: {', '.join(AUGMENT_KINDS)}.")
        parse_policy(self.augment_policy)
        if not self.mode_seeking >= 0:
            raise GanforgeError(f"mode_seeking must be zero (off) or a positive weight, got {self.mode_seeking!r}.")
        if not self.cls_weight >= 0:
            raise GanforgeError(f"cls_weight must be zero or positive, got {self.cls_weight!r}.")
        if not self.r1_weight >= 0:
            raise GanforgeError(f"r1_weight must be zero or positive, got {self.r1_weight!r}.")
        if self.r1_every < 1:
            raise GanforgeError(f"r1_every must be a positive whole number of D updates, got {self.r1_every!r}.")
        if not 0 < self.ada_target < 1:
            raise GanforgeError(f"ada_target must lie between 0 and 1, got {self.ada_target!r}.")
        if self.ada_speed < 1:
            raise GanforgeError(f"ada_speed must be a positive number of images, got {self.ada_speed!r}.")
        if self.d_steps < 1:
            raise GanforgeError(f"d_steps must be a positive integer, got {self.d_steps!r}.")
        if not self.gp_weight >= 0:
            raise GanforgeError(f"gp_weight must be zero or positive, got {self.gp_weight!r}.")
        if not self.clip_value > 0:
            raise GanforgeError(f"clip_value must be positive, got {self.clip_value!r}.")
        if self.reuse_fakes and self.d_steps != 1:
            raise GanforgeError(f"reuse_fakes lets G train on the fakes of the one D update before it, but d_steps is "
                                f"{self.d_steps}; use d_steps=1 or task.reuse_fakes=false.")
        if self.reuse_fakes and self.mode_seeking:
            raise GanforgeError("reuse_fakes and mode_seeking cannot be combined: the mode-seeking term draws G's "
                                "batch as pairs of its own; set one of task.reuse_fakes=false or "
                                "task.mode_seeking=0.")


class GANTask(Task):
    """GAN with any registered loss (minimax, nonsaturating, lsgan, hinge, wgan-gp).

    D phase (repeated ``d_steps`` times, a fresh real batch each time): fake = G(z) without gradients,
    loss = d_loss(D(real), D(fake)) [+ gp_weight * gradient penalty]. G phase: fresh z, loss =
    g_loss(D(G(z))); D's weights are frozen, so only G's gradients are computed.

    Conditional models: real images are scored with their own labels; in the D phase the fakes get the
    real batch's labels (so D sees the same class mix on both sides, and the gradient penalty's
    interpolates have one label), in the G phase labels drawn uniformly from the classes (a self-conditioned
    model's clusters by their shares of the data, as the real batches hold them). ACGAN adds
    cross-entropy of D's class logits: on real and fake images for D, on fake images for G (Odena et
    al. 2017).

    What D sees can be augmented (``augment``: DiffAugment, or ADA's adaptive probability; the same
    differentiable operations on real and fake images, in both phases), and D's loss can add the R1
    penalty on real images (``r1_weight``). G's loss can add the mode-seeking term (``mode_seeking``; its
    batch then holds pairs of one label and two z).

    ``reuse_fakes``: G runs once per step, before the phases (:meth:`forward`, its graph kept), on the real
    batch's labels; D's phase scores those fakes detached and G's phase backpropagates D's verdict on the same
    fakes through the kept graph, as pytorch/examples' DCGAN does. One forward of G fewer per step.
    """

    ema_nets = ("G",)
    options_cls = GANOptions

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        self.gan_loss = LOSSES.get(self.options.loss)
        self.nz = pipeline.nz
        self.num_classes = pipeline.num_classes
        self.label_prior = pipeline.label_prior  # a self-conditioned model's cluster shares (else None: uniform)
        self.classifies = bool(getattr(model_cfg, "has_classifier", False))  # D returns class logits too
        o = self.options
        self.augment_kind = "none" if o.augment == "auto" else o.augment  # auto unresolved: no data was seen
        self.policy = parse_policy(o.augment_policy)
        self.ada = AdaptiveProbability(o.ada_target, 4, o.ada_speed) if self.augment_kind == "ada" else None
        self.d_updates = 0  # D updates so far: which of them add the (lazy) R1 penalty
        self.last_r1: torch.Tensor | None = None  # the last penalty, logged at every D update
        if o.reuse_fakes:  # G runs once per step, before the phases; both phases read its fakes (forward)
            self.shared_forward = ("G",)

    @classmethod
    def options_for_data(cls, options: GANOptions, n_images: int, recorded: dict | None = None) -> GANOptions:
        if options.augment != "auto":
            return options
        if recorded is not None and "augment" not in recorded:  # trained by a version without augmentation
            return dataclasses.replace(options, augment="none")
        return dataclasses.replace(options, augment="ada" if n_images <= SMALL_DATA else "none")

    @classmethod
    def check_batch(cls, options: GANOptions, batch_size: int) -> None:
        if options.mode_seeking and batch_size < 2:
            raise GanforgeError(_one_image(batch_size))

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of ``x``: ``x`` itself, or its augmentation (every image, or each with ADA's p)."""
        if self.augment_kind == "none":
            return x
        return augment(x, self.policy, self.ada.p if self.ada is not None else 1.0)

    def state_dict(self) -> dict:
        state: dict = {"ada": self.ada.state_dict()} if self.ada is not None else {}
        if self.options.r1_weight > 0:
            state["d_updates"] = self.d_updates
            if self.last_r1 is not None:  # a resume between two lazy penalties logs the last one, as the run did
                state["last_r1"] = float(self.last_r1)
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])
        self.d_updates = int(state.get("d_updates", 0))
        if "last_r1" in state:
            self.last_r1 = torch.tensor(state["last_r1"], dtype=torch.float32)

    @classmethod
    def model_defaults(cls, options: GANOptions) -> dict:
        # a gradient penalty is per sample: no batch statistics in the critic (Gulrajani et al. 2017, sec. 4)
        return {"d_norm": "layer"} if LOSSES.get(options.loss).gradient_penalty else {}

    def phases(self) -> list[Phase]:
        c = self.loop
        betas = c.betas
        # the original WGAN trains both networks with RMSprop (Arjovsky et al. 2017: momentum destabilises it)
        opt = "rmsprop" if self.gan_loss.weight_clipping else None
        # with reuse_fakes the step's one batch is drawn before the phases, for forward()
        fresh = not self.options.reuse_fakes
        return [
            Phase("D", ("D",), lr=c.lr_d, betas=betas, repeat=self.options.d_steps, new_batch=fresh, optimizer=opt),
            Phase("G", ("G",), lr=c.lr_g, betas=betas, repeat=1, new_batch=False, optimizer=opt),
        ]

    def plot_labels(self, model: str) -> dict:
        k = f", k={self.options.d_steps}" if self.options.d_steps > 1 else ""
        return {"title": f"{model}: {self.options.loss} loss{k}", "score": self.gan_loss.score_name,
                "probabilities": self.gan_loss.probabilities}

    @torch.no_grad()
    def after_update(self, phase, nets) -> None:
        if phase.name == "D" and self.gan_loss.weight_clipping:
            c = self.options.clip_value
            for p in nets["D"].parameters():
                p.clamp_(-c, c)

    def _noise(self, n: int, device) -> torch.Tensor:
        return torch.randn(n, self.nz, device=device)

    def _labels(self, n: int, device) -> torch.Tensor | None:
        """n labels drawn uniformly (a self-conditioned model's clusters by their shares of the data); None
        without classes."""
        if not self.num_classes:
            return None
        if self.label_prior is not None:
            return torch.multinomial(self.label_prior.to(device), n, replacement=True)
        return torch.randint(0, self.num_classes, (n,), device=device)

    def _fake(self, G: nn.Module, n: int, device, y: torch.Tensor | None = None):
        """(fake images G(z, y), their labels y): labels drawn by :meth:`_labels` unless given."""
        if y is None:
            y = self._labels(n, device)
        return G(self._noise(n, device), y), y

    def forward(self, batch, nets) -> dict[str, torch.Tensor]:
        """reuse_fakes: the step's fakes, G(z, the real batch's labels), with G's graph kept for G's phase."""
        real = batch["image"]
        fake, y = self._fake(nets["G"], real.shape[0], real.device, batch.get("label") if self.num_classes else None)
        return {"fake": fake} if y is None else {"fake": fake, "fake_label": y}

    def _mode_seeking(self, G: nn.Module, n: int, device):
        """(fakes, labels, term) for G's phase with the mode-seeking term: n // 2 pairs (an odd n adds one
        unpaired sample) share a label and differ in z; term = 1 / (mean |G(z1) - G(z2)| / mean |z1 - z2| + eps)
        over the pairs (Mao et al. 2019, eq. 3 as their code computes it)."""
        half = n // 2
        if not half:
            raise GanforgeError(_one_image(n))
        y = self._labels(n - half, device)
        y = None if y is None else torch.cat([y, y[:half]])
        z = self._noise(n, device)
        fake = G(z, y)
        a, b = fake[:half].float(), fake[n - half:].float()
        ratio = (a - b).abs().mean() / (z[:half] - z[n - half:]).abs().mean()
        return fake, y, 1.0 / (ratio + 1e-5)

    def _score(self, D: nn.Module, x: torch.Tensor, y: torch.Tensor | None):
        """(adversarial logits [N] as float32, class logits [N, K] or None) of D(x, y)."""
        out = D(x, y)
        if self.classifies:
            return out[0].float(), out[1].float()
        return out.float(), None

    def loss(self, phase, batch, nets):
        real = batch["image"]
        G, D = nets["G"], nets["D"]
        n, device = real.shape[0], real.device
        if phase.name == "D":
            y_real = batch.get("label") if self.num_classes else None
            if "fake" in batch:  # reuse_fakes: the step's fakes, without G's graph
                fake, y_fake = batch["fake"].detach(), batch.get("fake_label")
            else:
                with torch.no_grad():
                    fake, y_fake = self._fake(G, n, device, y_real)
            every = self.options.r1_every
            r1 = self.options.r1_weight > 0 and self.d_updates % every == 0
            self.d_updates += 1
            if r1:
                real = real.detach().requires_grad_(True)
            (r, r_cls), (f, f_cls) = (self._score(D, self._augment(real), y_real),
                                      self._score(D, self._augment(fake), y_fake))
            loss = self.gan_loss.d_loss(r, f)
            logs = {"loss_D": loss.detach()}
            if r1:
                penalty = r1_penalty(r, real)
                loss = loss + 0.5 * self.options.r1_weight * every * penalty
                self.last_r1 = penalty.detach()
            if self.last_r1 is not None:
                logs["r1"] = self.last_r1
            if self.ada is not None:
                self.ada.observe(r)
                logs["aug_p"] = torch.tensor(self.ada.p)
                logs["ada_rt"] = torch.tensor(self.ada.last_rt)
            if self.classifies:
                cls = F.cross_entropy(r_cls, y_real) + F.cross_entropy(f_cls, y_fake)
                loss = loss + self.options.cls_weight * cls
                logs["cls_D"] = cls.detach()
                logs["acc_real"] = (r_cls.detach().argmax(1) == y_real).float().mean()
            if self.gan_loss.gradient_penalty and self.options.gp_weight > 0:
                gp = gradient_penalty(lambda x: self._score(D, x, y_real)[0], real, fake)
                loss = loss + self.options.gp_weight * gp
                logs["gp"] = gp.detach()
            squash = torch.sigmoid if self.gan_loss.probabilities else (lambda t: t)
            logs["D_real"] = squash(r.detach()).mean()
            logs["D_fake"] = squash(f.detach()).mean()
            return loss, logs
        lam = self.options.mode_seeking
        if lam:
            fake, y_fake, ms = self._mode_seeking(G, n, device)
        elif "fake" in batch:  # reuse_fakes: the fakes D's phase scored, backpropagated through G's kept graph
            fake, y_fake = batch["fake"], batch.get("fake_label")
        else:
            fake, y_fake = self._fake(G, n, device)
        f, f_cls = self._score(D, self._augment(fake), y_fake)
        loss = self.gan_loss.g_loss(f)
        logs = {"loss_G": loss.detach()}
        if lam:
            loss = loss + lam * ms
            logs["mode_seeking"] = ms.detach()
        if self.classifies:
            cls = F.cross_entropy(f_cls, y_fake)
            loss = loss + self.options.cls_weight * cls
            logs["cls_G"] = cls.detach()
        return loss, logs

    # ------------------------------------------------------------------ pictures
    def render_samples(self, net, inputs, path, step) -> None:
        """A grid of the fixed samples; conditional models: one row per class, named."""
        images = to_uint8(self.generate(net, inputs))
        cols = self.pipeline.grid_columns(images.shape[0])
        save_grid(images, path, nrow=cols, row_labels=self.pipeline.row_labels(inputs.get("y"), cols))
