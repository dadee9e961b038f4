"""CycleGAN (Zhu et al. 2017): unpaired translation A <-> B with cycle consistency, as the reference does it.

One training step on a batch {"A", "B"} of unpaired images in [-1, 1]:

1. shared forward (G_A and G_B, graphs kept): fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B),
   rec_B = G_A(fake_A) (the reconstructions only when their cycle weight is not 0);
2. phase G, one optimiser over G_A + G_B, both Ds frozen:
   loss_G_A = gan(D_A(fake_B), real) and loss_G_B = gan(D_B(fake_A), real);
   loss_cycle_A = lambda_A |rec_A - A|, loss_cycle_B = lambda_B |rec_B - B| (L1, mean over pixels);
   loss_idt_A = lambda_identity * lambda_B |G_A(B) - B|, loss_idt_B = lambda_identity * lambda_A |G_B(A) - A|;
3. phase D, one optimiser over D_A + D_B: loss_D_A = 0.5 * (gan(D_A(B), real) + gan(D_A(pool(fake_B)), fake)),
   loss_D_B the same with A and pool(fake_A), the fakes detached and drawn through the image pools.

Loss scaling is the reference's: its lsgan is MSE against targets 1 / 0, so the G term is E[(D - 1)^2]
(2x ``lsgan_g_loss``, which holds a 1/2) and the halved D loss 0.5 (E[(D(x) - 1)^2] + E[D(fake)^2]) is
``lsgan_d_loss`` as it is; for vanilla (BCE with logits) and hinge the D loss is halved here.

The image pools (:class:`ImagePool`, one per fake domain, ``pool_size`` 50; 0 turns them off) are task state:
saved in every checkpoint and restored on resume, and they draw from torch's global RNG, whose state the
trainer saves too, so a resumed run continues bit-identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import GanforgeError
from ..losses import LOSSES
from ..viz import grid_image, save_image_atomic, to_uint8
from ..viz.columns import save_column_grid
from . import Phase, Task

SAMPLE_ROWS = 8  # held-out images in the training pictures (each a row of six)


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017), as the reference's util/image_pool.py.

    ``query(images)`` goes image by image: while fewer than ``size`` are stored, it stores the image and
    returns it; afterwards, with probability 1/2 it returns a stored image chosen uniformly and stores the
    new one in its place, else it returns the new image. Draws (one ``torch.rand`` per image once full, then
    one ``torch.randint`` when a stored image is returned) come from torch's global CPU generator. Stored
    images are detached copies; ``size=0`` returns the images as they are."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images [N, C, H, W] -> [N, C, H, W]: each the new image or a stored one."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(())) > 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].to(image.device, image.dtype))  # a restored pool lives on the CPU
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "count": len(self.images),
                "images": torch.stack(self.images) if self.images else torch.zeros(0)}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size:
            raise GanforgeError(f"The checkpoint's image pool holds up to {int(state['size'])} images, but "
                                f"pool_size is {self.size}; resume with the pool_size the run was trained with.")
        count = int(state["count"])
        self.images = [x.clone() for x in state["images"][:count]] if count else []


@dataclass
class CycleGANOptions:
    """CycleGAN's loss weights and pool (``task.NAME=value``; ``loss=`` also at the top level)."""

    loss: str = "lsgan"  # lsgan (the reference's default) | vanilla (BCE) | hinge
    lambda_A: float = 10.0  # weight of the cycle A -> B -> A: |G_B(G_A(A)) - A|
    lambda_B: float = 10.0  # weight of the cycle B -> A -> B: |G_A(G_B(B)) - B|
    lambda_identity: float = 0.5  # identity terms, relative to lambda_B (G_A(B) vs B) and lambda_A (G_B(A) vs A)
    pool_size: int = 50  # fakes stored for the discriminators (0 = no pool: D sees the newest fakes)

    def validate(self) -> None:
        if self.loss not in ("lsgan", "vanilla", "hinge"):
            raise GanforgeError(f"cyclegan supports the losses lsgan, vanilla and hinge, not {self.loss!r}.")
        for name in ("lambda_A", "lambda_B", "lambda_identity"):
            if not getattr(self, name) >= 0:
                raise GanforgeError(f"{name} must be zero or positive, got {getattr(self, name)!r}.")
        if self.pool_size < 0:
            raise GanforgeError(f"pool_size must be zero (no pool) or positive, got {self.pool_size!r}.")


class CycleGANTask(Task):
    """Cycle-consistent adversarial training on unaligned batches {"A": [n, Ca, S, S], "B": [n, Cb, S, S]}."""

    shared_forward = ("G_A", "G_B")
    sample_net = "G_A"
    options_cls = CycleGANOptions

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        o = self.options
        self.gan_loss = LOSSES.get(o.loss)
        lsgan = o.loss == "lsgan"
        self.d_scale = 1.0 if lsgan else 0.5  # reference: D loss halved; lsgan_d_loss already holds the 1/2
        self.g_scale = 2.0 if lsgan else 1.0  # reference lsgan G loss is MSE without the 1/2
        self.lambda_A, self.lambda_B = float(o.lambda_A), float(o.lambda_B)
        self.lambda_idt = float(o.lambda_identity)
        a_nc, b_nc = model_cfg.input_nc, model_cfg.output_nc
        if self.lambda_idt > 0 and a_nc != b_nc:
            raise GanforgeError(f"The identity loss compares G_A(B) with B, so it needs domains with equal channels "
                                f"(A has {a_nc}, B {b_nc}); set task.lambda_identity=0 or data.channels=1 or 3.")
        opt_d = self.loop.optimizer_of("D")
        if opt_d == "lbfgs":
            raise GanforgeError("The image pools change at every evaluation of the discriminators' loss, which L-BFGS "
                                "repeats within a step; choose another optimizer for phase D.")
        self.fake_B_pool = ImagePool(o.pool_size)  # fakes of domain B, shown to D_A
        self.fake_A_pool = ImagePool(o.pool_size)  # fakes of domain A, shown to D_B

    def phases(self) -> list[Phase]:
        c = self.loop
        betas = c.betas
        return [Phase("G", ("G_A", "G_B"), lr=c.lr_g, betas=betas, new_batch=False),
                Phase("D", ("D_A", "D_B"), lr=c.lr_d, betas=betas, new_batch=False)]

    def forward(self, batch, nets) -> dict[str, torch.Tensor]:
        G_A, G_B = nets["G_A"], nets["G_B"]
        out = {"fake_B": G_A(batch["A"])}
        if self.lambda_A:
            out["rec_A"] = G_B(out["fake_B"])
        out["fake_A"] = G_B(batch["B"])
        if self.lambda_B:
            out["rec_B"] = G_A(out["fake_A"])
        return out

    def loss(self, phase, batch, nets):
        A, B = batch["A"], batch["B"]
        D_A, D_B = nets["D_A"], nets["D_B"]
        if phase.name == "D":
            fake_B = self.fake_B_pool.query(batch["fake_B"])  # D_A first, as the reference
            fake_A = self.fake_A_pool.query(batch["fake_A"])
            loss_D_A = self.d_scale * self.gan_loss.d_loss(D_A(B).float(), D_A(fake_B).float())
            loss_D_B = self.d_scale * self.gan_loss.d_loss(D_B(A).float(), D_B(fake_A).float())
            return loss_D_A + loss_D_B, {"loss_D_A": loss_D_A.detach(), "loss_D_B": loss_D_B.detach()}
        terms = {
            "loss_G_A": self.g_scale * self.gan_loss.g_loss(D_A(batch["fake_B"]).float()),
            "loss_G_B": self.g_scale * self.gan_loss.g_loss(D_B(batch["fake_A"]).float()),
        }
        if self.lambda_A:
            terms["loss_cycle_A"] = self.lambda_A * F.l1_loss(batch["rec_A"].float(), A.float())
        if self.lambda_B:
            terms["loss_cycle_B"] = self.lambda_B * F.l1_loss(batch["rec_B"].float(), B.float())
        if self.lambda_idt and self.lambda_B:
            terms["loss_idt_A"] = self.lambda_idt * self.lambda_B * F.l1_loss(nets["G_A"](B).float(), B.float())
        if self.lambda_idt and self.lambda_A:
            terms["loss_idt_B"] = self.lambda_idt * self.lambda_A * F.l1_loss(nets["G_B"](A).float(), A.float())
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"fake_B_pool": self.fake_B_pool.state_dict(), "fake_A_pool": self.fake_A_pool.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.fake_B_pool.load_state_dict(state["fake_B_pool"])
        self.fake_A_pool.load_state_dict(state["fake_A_pool"])

    # ------------------------------------------------------------------ pictures
    def fixed_inputs(self, n, seed):
        return super().fixed_inputs(min(n, SAMPLE_ROWS), seed)

    def render_samples(self, net, inputs, path, step) -> None:
        """Rows of real A | fake B | rec A | real B | fake A | rec B for the held-out images, with headers."""
        G_A, G_B = net, self.nets["G_B"]
        was_training = G_B.training
        G_B.eval()
        try:
            fake_B = G_A(inputs["A"])
            fake_A = G_B(inputs["B"])
            columns = [inputs["A"], fake_B, G_B(fake_B), inputs["B"], fake_A, G_A(fake_A)]
        finally:
            G_B.train(was_training)
        headers = ["real A", "fake B", "rec A", "real B", "fake A", "rec B"]
        save_column_grid([to_uint8(x) for x in columns], path, headers, min_width=480)

    def render_real(self, batch, path, n) -> None:
        """Training items of both domains (unpaired): a row of A images above a row of B images."""
        A, B = batch["A"][:n], batch["B"][:n]
        c = max(A.shape[1], B.shape[1])
        images = torch.cat([A.expand(-1, c, -1, -1), B.expand(-1, c, -1, -1)])
        save_image_atomic(grid_image(images, nrow=A.shape[0], row_labels=["A", "B"]), path)
