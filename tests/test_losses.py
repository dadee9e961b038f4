"""ganforge.losses against hand computation on small fixed logits."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.losses import (
    LOSSES,
    bce_d_loss,
    gradient_penalty,
    hinge_d_loss,
    hinge_g_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    minimax_g_loss,
    nonsaturating_g_loss,
    wasserstein_d_loss,
    wasserstein_g_loss,
)

REAL = [2.0, -0.5, 0.25]
FAKE = [-1.0, 0.75, 3.0]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_bce_d_loss_single_pair_by_hand():
    expected = -math.log(sigmoid(2.0)) - math.log(1.0 - sigmoid(-1.0))
    got = bce_d_loss(t([2.0]), t([-1.0]))
    assert got.dim() == 0
    assert got.item() == pytest.approx(expected, rel=1e-12)
    assert got.item() == pytest.approx(0.4401897, abs=1e-6)


def test_bce_d_loss_is_mean_over_each_batch():
    expected = (mean(-math.log(sigmoid(r)) for r in REAL)
                + mean(-math.log(1.0 - sigmoid(f)) for f in FAKE))
    assert bce_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_bce_d_loss_real_and_fake_batches_may_differ_in_size():
    expected = -math.log(sigmoid(1.0)) + mean(-math.log(1.0 - sigmoid(f)) for f in FAKE)
    assert bce_d_loss(t([1.0]), t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_minimax_g_loss_is_mean_log_one_minus_d():
    expected = mean(math.log(1.0 - sigmoid(f)) for f in FAKE)
    got = minimax_g_loss(t(FAKE))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    assert got.item() < 0  # log of a probability: G minimises a negative number


def test_nonsaturating_g_loss_is_minus_mean_log_d():
    expected = -mean(math.log(sigmoid(f)) for f in FAKE)
    got = nonsaturating_g_loss(t(FAKE))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    assert got.item() > 0


def test_lsgan_losses_by_hand():
    d_expected = 0.5 * mean((r - 1.0) ** 2 for r in REAL) + 0.5 * mean(f ** 2 for f in FAKE)
    g_expected = 0.5 * mean((f - 1.0) ** 2 for f in FAKE)
    assert lsgan_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(d_expected, rel=1e-12)
    assert lsgan_g_loss(t(FAKE)).item() == pytest.approx(g_expected, rel=1e-12)
    # the optimum of D's least-squares loss: real scored 1, fake scored 0
    assert lsgan_d_loss(t([1.0, 1.0]), t([0.0, 0.0])).item() == 0.0


def test_hinge_losses_by_hand():
    d_expected = mean(max(0.0, 1.0 - r) for r in REAL) + mean(max(0.0, 1.0 + f) for f in FAKE)
    assert hinge_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(d_expected, rel=1e-12)
    assert hinge_g_loss(t(FAKE)).item() == pytest.approx(-mean(FAKE), rel=1e-12)
    # beyond the margins the D loss is exactly zero
    assert hinge_d_loss(t([1.5, 3.0]), t([-1.0, -4.0])).item() == 0.0


def test_wasserstein_losses_by_hand():
    assert wasserstein_d_loss(t(REAL), t(FAKE)).item() == pytest.approx(mean(FAKE) - mean(REAL), rel=1e-12)
    assert wasserstein_g_loss(t(FAKE)).item() == pytest.approx(-mean(FAKE), rel=1e-12)


def test_probability_losses_stay_finite_for_huge_logits():
    # softplus form: no log(0) even when sigmoid rounds to exactly 0 or 1
    assert bce_d_loss(t([200.0]), t([-200.0])).item() == pytest.approx(0.0, abs=1e-12)
    assert bce_d_loss(t([-200.0]), t([200.0])).item() == pytest.approx(400.0, rel=1e-12)
    assert nonsaturating_g_loss(t([-200.0])).item() == pytest.approx(200.0, rel=1e-12)
    assert minimax_g_loss(t([200.0])).item() == pytest.approx(-200.0, rel=1e-12)
    for fn in (minimax_g_loss, nonsaturating_g_loss):
        assert math.isfinite(fn(torch.tensor([-200.0, 200.0])).item())


def _grad(loss_fn, logits):
    x = t(logits).requires_grad_(True)
    loss_fn(x).backward()
    return x.grad


def test_minimax_saturates_where_nonsaturating_does_not():
    """The lectures' point: when D confidently rejects G's samples (very negative logits), the minimax
    G loss gives almost no gradient, the non-saturating one gives the full -1 per sample (/ batch)."""
    logits = [-12.0, -15.0, -20.0, -25.0]
    n = len(logits)
    g_minimax = _grad(minimax_g_loss, logits)
    g_nonsat = _grad(nonsaturating_g_loss, logits)
    for f, gm, gn in zip(logits, g_minimax.tolist(), g_nonsat.tolist(), strict=True):
        assert gm == pytest.approx(-sigmoid(f) / n, rel=1e-9)  # d/df log(1 - sigmoid f) = -sigmoid f
        assert gn == pytest.approx(-(1.0 - sigmoid(f)) / n, rel=1e-9)  # d/df -log sigmoid f
        assert abs(gm) < 1e-5
        assert abs(gn) > 1e4 * abs(gm)
        assert gn == pytest.approx(-1.0 / n, abs=1e-5)


def test_minimax_and_nonsaturating_gradients_agree_in_direction_at_zero():
    # at D(G(z)) = 1/2 both push the logit up with the same strength
    assert _grad(minimax_g_loss, [0.0]).item() == pytest.approx(-0.5)
    assert _grad(nonsaturating_g_loss, [0.0]).item() == pytest.approx(-0.5)


def _linear_critic(w: torch.Tensor):
    return lambda x: (w * x).flatten(1).sum(1)


@pytest.mark.parametrize(("norm", "expected"), [(1.0, 0.0), (3.0, 4.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic(norm, expected):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64)
    w = w / w.norm() * norm
    real = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    gp = gradient_penalty(_linear_critic(w), real, fake, generator=torch.Generator().manual_seed(1))
    assert gp.dim() == 0
    assert gp.item() == pytest.approx(expected, abs=1e-10)


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    # P(w) = (||w|| - 1)^2 for every interpolate, so dP/dw = 2 (||w|| - 1) w / ||w|| = 4/3 w at ||w|| = 3
    w0 = torch.randn(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    w = (w0 / w0.norm() * 3.0).requires_grad_(True)
    real = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    fake = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(_linear_critic(w), real, fake)
    gp.backward()
    torch.testing.assert_close(w.grad, 4.0 / 3.0 * w.detach())


def test_gradient_penalty_does_not_backpropagate_into_real_or_fake():
    w = torch.ones(1, 4, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    real = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    gp = gradient_penalty(_linear_critic(w), real, fake)
    assert gp.item() == pytest.approx((2.0 - 1.0) ** 2)  # ||ones(4)|| = 2
    gp.backward()
    assert w.grad is not None
    assert fake.grad is None and real.grad is None


def test_registry_holds_the_documented_losses():
    assert {"minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp"} <= set(LOSSES.names())
    expected = {
        "minimax": (bce_d_loss, minimax_g_loss, False, True),
        "nonsaturating": (bce_d_loss, nonsaturating_g_loss, False, True),
        "lsgan": (lsgan_d_loss, lsgan_g_loss, False, False),
        "hinge": (hinge_d_loss, hinge_g_loss, False, False),
        "wgan-gp": (wasserstein_d_loss, wasserstein_g_loss, True, False),
        "wgan": (wasserstein_d_loss, wasserstein_g_loss, False, False),
    }
    for name, (d, g, gp, prob) in expected.items():
        loss = LOSSES.get(name)
        assert loss.name == name
        assert loss.d_loss is d
        assert loss.g_loss is g
        assert loss.gradient_penalty is gp
        assert loss.probabilities is prob


def test_unknown_loss_names_the_choices():
    with pytest.raises(GanforgeError) as err:
        LOSSES.get("wgan-lp")
    msg = str(err.value)
    assert "'wgan-lp'" in msg
    assert "choose one of" in msg
    for name in ("hinge", "lsgan", "minimax", "nonsaturating", "wgan", "wgan-gp"):
        assert name in msg.split("choose one of", 1)[1]


def test_registering_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="minimax"):
        LOSSES.register("minimax", LOSSES.get("hinge"))
    assert LOSSES.get("minimax").g_loss is minimax_g_loss
