"""The doctor's measurements while training (probe rows) and the rules over them: weight blow-up and gradient
collapse, D on held-out reals, modes covered on the toy mixtures, and translation outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import ganforge
from conftest import tiny_config
from ganforge.doctor import diagnose
from ganforge.doctor.findings import Finding, fold_consequences
from ganforge.doctor.modes import count_modes, mode_set
from ganforge.doctor.probe_rules import grad_spikes, probe_rows, toy_mode_collapse, translation_rules
from ganforge.doctor.probes import network_norms, weight_norm
from ganforge.doctor.rules import d_overfit, d_wins, divergence
from ganforge.doctor.translation import high_frequency, spread, translation_numbers
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.viz import read_metrics


def config_of(**task) -> dict:
    return {"task_options": {"loss": "nonsaturating", "augment": "none", **task},
            "dataset": {"name": "fashion-mnist", "size": 200}, "config": {"lr_g": 5.0, "lr_d": 5.0}}


def train_rows(steps, **columns) -> list[dict]:
    return [{"step": s, "loss_D": 1.0, "loss_G": 1.0, "D_real": 0.6, "D_fake": 0.4, **columns} for s in steps]


def probes(steps, make) -> list[dict]:
    return [{"step": s, "probe": make(i)} for i, s in enumerate(steps)]


# ------------------------------------------------------------------------------------------ measurements


def test_network_norms_are_the_l2_norms_over_every_parameter():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    net(torch.ones(4, 3)).sum().backward()
    grads, weights = network_norms({"G": net, "untrained": nn.Linear(2, 2)})
    assert set(grads) == {"G"}  # a network without gradients is left out
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    flat_grad = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert math.isclose(weights["G"], float(flat.norm()), rel_tol=1e-6)
    assert math.isclose(grads["G"], float(flat_grad.norm()), rel_tol=1e-6)


def test_a_run_logs_probe_rows_and_trains_the_same_with_them(idx_root, tmp_path):
    on = tiny_config(idx_root, steps=6, log_every=1, health_every=3, sample_every=0, ckpt_every=0)
    off = tiny_config(idx_root, steps=6, log_every=1, health_every=0, sample_every=0, ckpt_every=0)
    ganforge.train(on, tmp_path / "on")
    ganforge.train(off, tmp_path / "off")
    rows = read_metrics(tmp_path / "on" / "metrics.jsonl")
    assert [r["step"] for r in rows if "loss_D" in r] == [1, 2, 3, 4, 5, 6]  # one row per logged step still
    found = dict(probe_rows(rows))
    assert sorted(found) == [1, 2, 3, 4, 5, 6] and all("loss_D" in r for r in rows if "probe" in r)
    assert set(found[1]) == {"grad_norm", "weight_norm", "weight_norm_start"}  # the initial weights, once
    assert set(found[2]) == {"grad_norm", "weight_norm"} and set(found[2]["weight_norm"]) == {"D", "G"}
    for step in (3, 6):  # the doctor's interval: D on the fixed training batch and on the test split's
        assert {"D_train", "D_heldout", "rt_train", "rt_heldout"} <= set(found[step])
        assert 0 <= found[step]["D_train"] <= 1 and -1 <= found[step]["rt_heldout"] <= 1
    assert not any("probe" in r for r in read_metrics(tmp_path / "off" / "metrics.jsonl"))

    def losses(run):
        return [(r["step"], r["loss_D"], r["loss_G"]) for r in read_metrics(tmp_path / run / "metrics.jsonl")
                if "loss_D" in r]

    assert losses("on") == losses("off")


# ------------------------------------------------------------------------------------------ divergence


def test_weights_ten_times_their_start_are_a_divergence_that_explains_the_symptoms():
    steps = range(20, 220, 20)
    rows = train_rows(steps, D_real=0.999, D_fake=0.001) + probes(steps, lambda i: {
        "weight_norm": {"G": 10.0 if i < 3 else 400.0}, "grad_norm": {"G": 0.0},
        **({"weight_norm_start": {"G": 10.0}} if i == 0 else {})})
    [f] = divergence(rows, config_of())
    assert (f.severity, f.code) == ("error", "divergence")
    assert f.evidence["network"] == "G" and f.evidence["growth"] == 40.0
    assert f.evidence["first_step"] == 80 and f.evidence["steps"] == [80, 200] and f.evidence["grad_norm_zero"]
    assert f.evidence["from_step"] == 0 and f.evidence["weight_norm_start"] == 10.0
    assert "lr_g=0.5 lr_d=0.5" in f.fix
    [wins] = d_wins(rows, config_of())
    [folded] = fold_consequences([f, wins, Finding("error", "noise_output", "noise", {})])
    assert folded is f and f.evidence["consequences"] == ["d_wins", "noise_output"]


def test_weights_that_grow_less_than_tenfold_are_no_divergence():
    steps = range(20, 220, 20)
    rows = train_rows(steps) + probes([0, *steps], lambda i: {"weight_norm": {"G": 10.0 + 8.0 * i / 10}})
    assert divergence(rows, config_of()) == []


def test_weight_norm_leaves_out_weights_whose_scale_the_output_does_not_see():
    # G's latent layer and hidden transposed convolution feed batch norm: scaling them changes neither the output
    # nor the norm the doctor reads; its last layer (into tanh) and batch norm's own scale change both
    G = DCGANGenerator(28, 1, 16, 8).train()  # batch statistics, as in training
    z = torch.randn(4, 16)
    before, out = weight_norm(G), G(z)
    with torch.no_grad():
        G.main[0].weight.mul_(10.0)
        G.main[3].weight.mul_(10.0)
    assert weight_norm(G) == pytest.approx(before, rel=1e-6)
    assert torch.allclose(G(z), out, atol=1e-3)  # up to batch norm's eps
    last = float(G.main[-2].weight.detach().norm())
    with torch.no_grad():
        G.main[-2].weight.mul_(10.0)
    assert weight_norm(G) == pytest.approx(math.sqrt(before ** 2 + 99 * last ** 2), rel=1e-5)
    # every weight of a spectrally normalised D is divided by its largest singular value: nothing is left to grow
    assert weight_norm(DCGANDiscriminator(28, 1, 8, "spectral")) == 0.0
    D = DCGANDiscriminator(28, 1, 8, "batch")
    first = float(D.main[0].weight.detach().norm())  # the first convolution feeds LeakyReLU, not a normalisation
    with torch.no_grad():
        D.main[2].weight.mul_(100.0)
    rest = float(D.main[-1].weight.detach().norm()) + float(D.main[3].weight.detach().norm())
    assert weight_norm(D) < 2 * first + rest


def test_weight_norm_leaves_out_the_weights_before_a_conditional_batch_norm():
    # the demo's G (cgan, g_cond=cbn): its batch norms are conditional ones, which normalise as batch norm does, so
    # its latent layer and hidden transposed convolution are as scale-free as a plain DCGAN G's (their norms grow
    # with the steps in a healthy run and must not read as a blow-up)
    from ganforge.models.cgan import CGANConfig, build_cgan

    G = build_cgan(CGANConfig(nz=16, ngf=8, ndf=8, num_classes=5, g_cond="cbn"))["G"].train()
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    before, out = weight_norm(G), G(z, y)
    with torch.no_grad():
        G.net.main[0].weight.mul_(10.0)
        G.net.main[3].weight.mul_(10.0)
    assert weight_norm(G) == pytest.approx(before, rel=1e-6)
    assert torch.allclose(G(z, y), out, atol=1e-3)  # up to batch norm's eps
    with torch.no_grad():
        G.net.main[1].gain.mul_(10.0)  # a class's scale reaches the output, and the norm
    assert weight_norm(G) > 5 * before


def test_gradient_spikes_are_counted_before_the_first_nan_only():
    norms = [1.0, 1.2, 0.9, 1.1, 1.0, 30.0, 1.0, 50.0]
    rows = probes(range(10, 90, 10), lambda i: {"grad_norm": {"D": norms[i]}})
    assert [s["step"] for s in grad_spikes(rows)] == [60, 80]
    assert [s["step"] for s in grad_spikes(rows, before=70)] == [60]


def test_a_collapsed_g_gradient_is_evidence_for_d_wins():
    steps = range(50, 1050, 50)
    rows = train_rows(steps, D_real=0.99, D_fake=0.01) + probes(steps, lambda i: {"grad_norm": {"G": 10.0 ** -i}})
    [f] = d_wins(rows, config_of(loss="minimax"))
    assert f.evidence["G_grad_collapsed"] and f.evidence["G_grad_norm_peak"] == 1.0


# ------------------------------------------------------------------------------------------ held-out reals


def held_out_rows(gaps) -> list[dict]:
    return probes(range(200, 200 * (len(gaps) + 1), 200),
                  lambda i: {"D_train": 0.8, "D_heldout": 0.8 - gaps[i] / 2, "rt_train": 0.9,
                             "rt_heldout": 0.9 - gaps[i]}) + train_rows(range(100, 200 * (len(gaps) + 1), 100))


def test_d_scoring_training_images_above_held_out_ones_twice_is_d_overfit():
    [f] = d_overfit(held_out_rows([0.05, 0.4, 0.5]), config_of())
    assert (f.severity, f.code) == ("warning", "d_overfit")
    assert f.evidence["steps"] == [400, 600] and f.evidence["rt_gap_per_check"] == [0.4, 0.5]
    assert f.fix.startswith("augment=ada")


def test_one_large_gap_or_small_gaps_are_no_d_overfit():
    assert d_overfit(held_out_rows([0.05, 0.05, 0.5]), config_of()) == []
    assert d_overfit(held_out_rows([0.1, 0.2, 0.2]), config_of()) == []


# ------------------------------------------------------------------------------------------ toy modes


def test_modes_covered_counts_points_within_three_std_of_a_centre():
    centres, std = mode_set("ring2d")
    assert centres.shape == (8, 2) and mode_set("grid2d")[0].shape == (25, 2) and mode_set("moons2d") is None
    rng = np.random.default_rng(0)
    points = np.concatenate([centres[k] + rng.normal(0, std, (300, 2)) for k in (0, 3, 5)]
                            + [rng.uniform(-3, 3, (100, 2))])
    counts = count_modes(points, centres, std)
    assert counts["covered"] == 3 and counts["total"] == 8 and counts["min_count"] == math.ceil(0.2 * 1000 / 8)
    inside = (np.linalg.norm(points[:, None] - centres[None], axis=-1).min(1) < 3 * std).mean()
    assert counts["high_quality"] == round(float(inside), 4) and counts["high_quality"] > 0.85


def test_toy_mode_collapse_needs_three_checks_of_points_near_few_modes():
    def rows(counts):
        return probes(range(100, 100 * (len(counts) + 1), 100), lambda i: {"modes": {
            "covered": sum(c >= 63 for c in counts[i]), "total": 8, "high_quality": sum(counts[i]) / 2500,
            "points": 2500, "min_count": 63, "counts": counts[i]}})

    spread_out, one, two, few = [30] * 8, [900] + [5] * 7, [400, 400] + [10] * 6, [5] * 8
    [f] = toy_mode_collapse(rows([spread_out, one, two, one]), {})
    assert f.code == "mode_collapse" and f.evidence["modes_holding_the_points_near_modes"] == 1
    assert f.evidence["steps"] == [200, 400] and f.evidence["modes_covered"] == 1
    assert toy_mode_collapse(rows([spread_out, spread_out, one, one]), {}) == []  # two checks only
    assert toy_mode_collapse(rows([spread_out] * 4), {}) == []  # 240 points near modes, on all 8: learning
    [f] = toy_mode_collapse(rows([one, two, few, one]), {})  # a check with under 50 points near modes is skipped
    assert f.evidence["per_check"][0]["step"] == 100


# ------------------------------------------------------------------------------------------ translation


def test_translation_numbers_against_direct_computations():
    g = torch.Generator().manual_seed(0)
    A, B = torch.rand(6, 3, 16, 16, generator=g) * 2 - 1, torch.rand(6, 3, 16, 16, generator=g) * 2 - 1
    same = translation_numbers(A, A.clone(), B)
    assert same["identity"] == 0.0 and same["high_frequency"] == round(high_frequency(A) / high_frequency(B), 5)
    constant = translation_numbers(A, B[:1].expand(6, -1, -1, -1), B)
    assert constant["output_spread"] == 0.0 and constant["input_spread"] == round(spread(A), 5)
    x = A.flatten(1)
    direct = sum(float((x[i] - x[j]).abs().mean()) for i in range(6) for j in range(6) if i != j) / 30
    assert math.isclose(spread(A), direct, rel_tol=1e-6)
    blurred = torch.nn.functional.avg_pool2d(B, 3, 1, 1)
    assert translation_numbers(A, blurred, B)["high_frequency"] < 0.3


def translation_rows(make, **losses) -> list[dict]:
    return probes(range(100, 500, 100), lambda i: {"translation": make(i)}) + train_rows(range(100, 500, 100),
                                                                                         **losses)


def test_identity_map_and_constant_output_need_three_checks():
    ok = {"pairs": 16, "identity": 0.8, "output_spread": 0.4, "input_spread": 0.5, "high_frequency": 0.9}
    [f] = translation_rules(translation_rows(lambda i: {**ok, "identity": 0.05 if i else 0.8}), {})
    assert (f.code, f.severity, f.evidence["steps"]) == ("identity_map", "error", [200, 400])
    [f] = translation_rules(translation_rows(lambda i: {**ok, "output_spread": 0.01}), {})
    assert f.code == "constant_output" and f.evidence["input_spread"] == 0.5
    assert translation_rules(translation_rows(lambda i: {**ok, "identity": 0.05 if i > 1 else 0.8}), {}) == []
    assert translation_rules(translation_rows(lambda i: ok), {}) == []


def test_gan_term_ignored_needs_blur_and_a_negligible_gan_share():
    blur = {"pairs": 16, "identity": 0.8, "output_spread": 0.4, "input_spread": 0.5, "high_frequency": 0.1}
    tiny = {"task_options": {"gan_weight": 0.001, "lambda_l1": 100.0}}
    [f] = translation_rules(translation_rows(lambda i: blur, loss_G_L1=0.1, loss_G_GAN=2.0), tiny)
    assert f.code == "gan_term_ignored" and math.isclose(f.evidence["gan_share_of_G_loss"], 0.002 / 10.002,
                                                         abs_tol=1e-5)
    default = {"task_options": {"gan_weight": 1.0, "lambda_l1": 100.0}}
    assert translation_rules(translation_rows(lambda i: blur, loss_G_L1=0.1, loss_G_GAN=2.0), default) == []


def test_doctor_names_the_divergence_of_a_real_run(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=8, log_every=2, health_every=2, sample_every=0, ckpt_every=0, lr_g=5.0,
                      lr_d=5.0)
    ganforge.train(cfg, tmp_path / "run")
    findings = diagnose(tmp_path / "run")
    assert findings[0].code == "divergence" and findings[0].severity == "error"
    assert findings[0].evidence["growth"] > 10


def test_a_toy_run_on_the_ring_counts_its_modes(tmp_path):
    from ganforge.families.toy import toy_config

    cfg = toy_config("ring2d", {"steps": 20, "log_every": 5, "health_every": 2}, frames=2)
    ganforge.train(cfg, tmp_path / "toy")
    found = dict(probe_rows(read_metrics(tmp_path / "toy" / "metrics.jsonl")))
    assert [s for s, p in found.items() if "modes" in p] == [10, 20]
    modes = found[20]["modes"]
    assert modes["total"] == 8 and modes["points"] == 2500 and len(modes["counts"]) == 8
    assert sum(modes["counts"]) == round(modes["high_quality"] * 2500)


def test_a_young_runs_sample_finding_must_persist_across_two_checkpoints(idx_root, tmp_path, monkeypatch):
    from ganforge.doctor import samples

    cfg = tiny_config(idx_root, steps=6, log_every=3, ckpt_every=3, sample_every=0, health_every=0)
    ganforge.train(cfg, tmp_path / "run")
    diversity = {}

    def measured(pipe, config, step, n):  # mode collapse at every checkpoint, its diversity as the test sets it
        return [Finding("warning", "mode_collapse", "collapse", {"steps": [step, step], "diversity": diversity[step]},
                        "fix")]

    monkeypatch.setattr(samples, "_check", measured)
    diversity.update({3: 1.0, 6: 1.1})  # below the step-1000 bar, and not risen by a fifth: it persists
    [f] = samples.check_samples(tmp_path / "run", {}, 6)
    assert (f.severity, f.code, f.evidence["persisted"]) == ("warning", "mode_collapse", {"step": 3, "diversity": 1.0})
    diversity.update({3: 1.0, 6: 1.5})  # rising: a young run learning, reported as a note
    [f] = samples.check_samples(tmp_path / "run", {}, 6)
    assert (f.severity, f.code) == ("info", "too_early") and "diversity has risen" in f.sentence
    monkeypatch.setattr(samples, "YOUNG_STEPS", 6)  # from the bar on, no persistence is asked
    [f] = samples.check_samples(tmp_path / "run", {}, 6)
    assert f.severity == "warning" and "persisted" not in f.evidence


def test_d_winning_over_a_g_that_ignores_the_gan_term_is_folded_into_gan_term_ignored():
    ignored = Finding("warning", "gan_term_ignored", "blur", {"steps": [200, 400]})
    wins = Finding("warning", "d_wins", "D wins", {"steps": [100, 400]})
    other = Finding("warning", "d_overfit", "memorises", {"steps": [300, 400]})
    assert fold_consequences([wins, ignored, other]) == [ignored, other]
    assert ignored.evidence["consequences"] == ["d_wins"]
    spikes = Finding("warning", "divergence", "spikes", {})  # a warning is no cause of everything else
    assert fold_consequences([spikes, other]) == [spikes, other]


def test_d_wins_is_left_to_the_translation_rules_in_translating_families():
    rows = train_rows(range(20, 420, 20), D_real=0.97, D_fake=0.02)
    assert d_wins(rows, {"model": "pix2pix", "task_options": {"loss": "vanilla"}}) == []
    assert [f.code for f in d_wins(rows, {"model": "dcgan", **config_of()})] == ["d_wins"]
