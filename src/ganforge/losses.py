"""GAN losses as pure functions of discriminator logits.

Every discriminator loss takes ``(real_logits, fake_logits)``; every generator loss takes
``fake_logits`` (logits of D on G's samples). Logits are raw scores: D(x) = sigmoid(logit) for the
probability-based losses. All return a scalar tensor to be *minimised*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .registry import Registry


def bce_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]: D ascends the minimax value function."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))], the saturating generator loss of the minimax game."""
    return -F.softplus(fake).mean()


def nonsaturating_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))], the non-saturating generator loss (Goodfellow et al. 2014, section 3)."""
    return F.softplus(-fake).mean()


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least squares (Mao et al. 2017, a=0, b=c=1): 1/2 E[(D(x)-1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def lsgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Least squares generator loss: 1/2 E[(D(G(z))-1)^2]."""
    return 0.5 * (fake - 1).pow(2).mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def wasserstein_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)] (the critic maximises the difference; add a gradient penalty)."""
    return fake.mean() - real.mean()


def wasserstein_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani 2017).

    real, fake: [N, ...] batches; fake should be detached from G.
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, generator=generator)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x D(x)||^2] over real images ``real`` [N, ...], which must
    require grad and be what ``real_logits`` [N] were computed from; the caller weighs it by gamma / 2."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


@dataclass(frozen=True)
class GANLoss:
    name: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]
    gradient_penalty: bool = False  # add gp_weight * gradient_penalty to the D loss
    probabilities: bool = True  # logits are log-odds, so sigmoid(logit) is D's probability
    weight_clipping: bool = False  # clamp D's weights to [-clip_value, clip_value] after each D update (WGAN)
    score_name: str = "D output"  # what D's output is called in pictures: a probability, or a critic's score


LOSSES: Registry[GANLoss] = Registry("loss")
LOSSES.register("minimax", GANLoss("minimax", bce_d_loss, minimax_g_loss))
LOSSES.register("nonsaturating", GANLoss("nonsaturating", bce_d_loss, nonsaturating_g_loss))
LOSSES.register("vanilla", GANLoss("vanilla", bce_d_loss, nonsaturating_g_loss))  # pix2pix/CycleGAN's name
LOSSES.register("lsgan", GANLoss("lsgan", lsgan_d_loss, lsgan_g_loss, probabilities=False, score_name="D score"))
LOSSES.register("hinge", GANLoss("hinge", hinge_d_loss, hinge_g_loss, probabilities=False, score_name="D score"))
LOSSES.register(  # the original WGAN (Arjovsky et al. 2017): weight clipping, RMSprop (the task's choice)
    "wgan", GANLoss("wgan", wasserstein_d_loss, wasserstein_g_loss, probabilities=False, weight_clipping=True,
                    score_name="critic score")
)
LOSSES.register(
    "wgan-gp", GANLoss("wgan-gp", wasserstein_d_loss, wasserstein_g_loss, gradient_penalty=True, probabilities=False,
                       score_name="critic score")
)
