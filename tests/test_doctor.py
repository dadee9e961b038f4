"""The GAN doctor after training: each rule on hand-made metrics rows, the sample measures against direct
computations, and one real tiny run end to end through ``ganforge doctor``."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import make_idx_dataset, tiny_config
from ganforge.cli import main
from ganforge.doctor import Finding, diagnose, report, to_json
from ganforge.doctor.rules import d_overfit, d_wins, divergence, no_progress, training_rows
from ganforge.doctor.samples import (
    _check,
    between_share,
    class_entropy,
    neighbour_correlation,
    pairwise_distance,
    spread_across_samples,
)


def rows_of(n: int, every: int = 50, **columns) -> list[dict]:
    """n training rows at steps every, 2*every, ...; a column is a constant or a function of the row index."""
    out = []
    for i in range(n):
        row = {"step": (i + 1) * every, "loss_D": 1.2, "loss_G": 0.8, "D_real": 0.6, "D_fake": 0.4}
        row.update({k: (v(i) if callable(v) else v) for k, v in columns.items()})
        out.append(row)
    return out


def config_of(loss: str = "nonsaturating", **train) -> dict:
    return {"task_options": {"loss": loss, "d_steps": 1, "r1_weight": 0.0, "augment": "none", "ada_target": 0.6},
            "dataset": {"name": "fashion-mnist", "size": 60000},
            "config": {"lr_g": 2e-4, "lr_d": 2e-4, "precision": "fp32", "lr_schedule": "constant", **train}}


def d_wins_rows() -> list[dict]:
    """20 rows; from row 10 on (steps 550..1000) D gives fakes 0.01 and reals 0.99."""
    return rows_of(20, D_fake=lambda i: 0.01 if i >= 10 else 0.4, D_real=lambda i: 0.99 if i >= 10 else 0.6)


# ---------------------------------------------------------------------------------------------- rules


def test_d_wins_with_minimax_is_an_error_that_names_the_nonsaturating_loss():
    [f] = d_wins(d_wins_rows(), config_of("minimax"))
    assert (f.severity, f.code, f.fix) == ("error", "d_wins", "loss=nonsaturating")
    assert "Goodfellow et al. 2014, section 3" in f.sentence
    assert f.evidence["steps"] == [750, 1000]  # the last 30% of 20 rows: 6 rows
    assert f.evidence["D_fake_mean"] == 0.01 and f.evidence["D_real_mean"] == 0.99
    assert f.evidence["rows_where_D_wins"] == "6/6"


def test_d_wins_with_the_nonsaturating_loss_names_a_lower_lr_d_and_r1():
    [f] = d_wins(d_wins_rows(), config_of("nonsaturating"))
    assert f.severity == "warning"
    assert f.fix == "lr_d=5e-05 or r1_weight=1"


def test_d_wins_needs_a_long_stretch_and_a_probability_loss():
    short = rows_of(20, D_fake=lambda i: 0.01 if i >= 17 else 0.4, D_real=0.99)  # 3 of the last 6 rows
    assert d_wins(short, config_of("minimax")) == []
    assert d_wins(d_wins_rows(), config_of("wgan-gp")) == []  # a critic's scores are no probabilities


def test_a_spike_then_nan_is_a_divergence_error_that_names_the_learning_rates():
    rows = rows_of(12, loss_D=lambda i: 45.0 if i == 8 else (math.nan if i >= 10 else 1.2))
    [f] = divergence(rows, config_of(precision="bf16"))
    assert (f.severity, f.code) == ("error", "divergence")
    assert f.evidence["first_non_finite_step"] == 550 and f.evidence["non_finite_rows"] == 2
    assert f.evidence["spikes_before"] == [{"step": 450, "loss": "loss_D", "value": 45.0, "running_median": 1.2}]
    assert f.fix == "lr_g=2e-05 lr_d=2e-05 or r1_weight=1 or precision=fp32"
    assert "step 550, after loss spikes" in f.sentence


def test_spikes_alone_are_a_warning_and_a_steady_run_is_quiet():
    rows = rows_of(12, loss_G=lambda i: 30.0 if i == 6 else 0.8)
    [f] = divergence(rows, config_of())
    assert (f.severity, f.evidence["spikes"], f.evidence["steps"]) == ("warning", 1, [350, 350])
    assert "precision=fp32" not in f.fix  # the run used fp32
    assert divergence(rows_of(12, loss_G=lambda i: 0.8 + 0.05 * (i % 3)), config_of()) == []


def test_a_stalled_fid_is_no_progress_and_names_the_best_checkpoint():
    rows = rows_of(10) + [{"step": s, "eval_fid": v} for s, v in ((100, 80.0), (200, 40.0), (300, 42.0),
                                                                  (400, 55.0))]
    [f] = no_progress(rows, config_of())
    assert (f.severity, f.code) == ("warning", "no_progress")
    assert f.evidence == {"steps": [200, 400], "metric": "fid", "best": 40.0, "best_step": 200, "last": 55.0,
                          "evaluations_since_best": 2, "relative_change": 0.375}
    assert "--ckpt best" in f.fix and "lr_schedule=linear" in f.fix
    assert "getting worse" in f.sentence
    improving = rows_of(10) + [{"step": s, "eval_fid": v} for s, v in ((100, 80.0), (200, 60.0), (300, 61.0),
                                                                      (400, 50.0))]
    assert no_progress(improving, config_of()) == []


def test_ada_rt_above_target_for_long_is_d_overfitting():
    cfg = config_of()
    cfg["task_options"].update(augment="ada")
    rows = rows_of(10, ada_rt=lambda i: 0.9, aug_p=0.3)
    [f] = d_overfit(rows, cfg)
    assert (f.code, f.evidence["ada_rt_mean"], f.evidence["rows_above_target"]) == ("d_overfit", 0.9, "3/3")
    assert d_overfit(rows_of(10, ada_rt=0.55), cfg) == []


def test_small_data_without_augmentation_and_a_confident_d_names_ada():
    cfg = config_of()
    cfg["dataset"]["size"] = 200
    [f] = d_overfit(d_wins_rows(), cfg)
    assert (f.fix, f.evidence["dataset_size"]) == ("augment=ada", 200)
    cfg["dataset"]["size"] = 60000
    assert d_overfit(d_wins_rows(), cfg) == []


def test_repeated_steps_keep_their_last_row():
    rows = [{"step": 2, "loss_D": 1.0}, {"step": 1, "loss_D": 2.0}, {"step": 2, "loss_D": 3.0}, {"step": 3}]
    assert training_rows(rows) == [{"step": 1, "loss_D": 2.0}, {"step": 2, "loss_D": 3.0}]


def test_a_healthy_run_gets_one_info_finding(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows_of(10)) + "\n")
    (tmp_path / "config.json").write_text(json.dumps(config_of()))
    [f] = diagnose(tmp_path)
    assert (f.severity, f.code, f.evidence) == ("info", "healthy", {"steps": [50, 500], "rows": 10})
    assert "divergence (losses, weight and gradient norms), D winning" in f.sentence
    assert to_json(tmp_path, [f])["findings"] == []


def test_report_lists_severity_sentence_evidence_and_fix():
    text = report([Finding("warning", "d_wins", "D is too strong.", {"steps": [1, 2], "D_fake_mean": 0.01234567},
                           "lr_d=1e-05")])
    assert text.splitlines() == ["WARNING  d_wins: D is too strong.",
                                 "         evidence: steps=[1, 2], D_fake_mean=0.01235",
                                 "         fix: lr_d=1e-05"]
    with pytest.raises(ValueError, match="severity"):
        Finding("fatal", "x", "y")


# ---------------------------------------------------------------------------------------------- samples


def test_the_sample_measures_against_direct_computations():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert pairwise_distance(x) == pytest.approx((5 + 10 + 5) / 3)
    logits = torch.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]  # 4 classes, equally often: 2 bits
    assert class_entropy(logits) == pytest.approx(2.0)
    assert class_entropy(torch.eye(4)[[2, 2, 2]]) == 0.0
    g = torch.Generator().manual_seed(0)
    one = torch.randint(0, 256, (1, 1, 28, 28), generator=g, dtype=torch.uint8)
    assert between_share(one.repeat(8, 1, 1, 1)) == 0.0  # eight copies of one image: no variety
    noise = torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8)
    assert abs(neighbour_correlation(noise)) < 0.02
    smooth = torch.linspace(0, 255, 28).round().to(torch.uint8).view(1, 1, 1, 28).expand(4, 1, 28, 28)
    assert neighbour_correlation(smooth) > 0.95


class Drawn:
    """Stands in for a loaded model: ``sample`` returns the given uint8 images [N, C, H, W] as [N, H, W, C]."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def sample(self, n: int, seed: int = 0):
        return self.images[:n].permute(0, 2, 3, 1).numpy()


def test_the_same_image_for_every_z_is_constant_output_however_detailed():
    g = torch.Generator().manual_seed(0)
    pattern = (torch.rand(1, 1, 28, 28, generator=g) < 0.5).to(torch.uint8) * 255  # black and white pixels
    assert spread_across_samples(pattern.repeat(8, 1, 1, 1)) == 0.0
    config = {"config": {"lr_g": 2e-4, "lr_d": 1e-12}}
    [f] = _check(Drawn(pattern.repeat(64, 1, 1, 1)), config, 1500, 64)  # one detailed image: not a flat one
    assert (f.severity, f.code, f.evidence["pixel_std_across_samples"]) == ("error", "constant_output", 0.0)
    assert f.evidence["pixel_std"] > 120 and f.evidence["steps"] == [1500, 1500]
    assert "lr_d=0.0002 (D as fast as G" in f.fix
    flat = torch.full((64, 1, 28, 28), 128, dtype=torch.uint8)  # one flat grey image, with a grey level of jitter
    flat[::2] += 1
    [f] = _check(Drawn(flat), {"config": {"lr_g": 2e-4, "lr_d": 2e-4}}, 6, 64)
    assert f.code == "constant_output" and f.evidence["pixel_std_across_samples"] == 0.5
    assert f.fix.endswith("loss=nonsaturating and a lower lr_d=")
    noise = (torch.rand(64, 1, 28, 28, generator=g) < 0.5).to(torch.uint8) * 255  # a new pattern for every z
    [f] = _check(Drawn(noise), config, 1500, 64)
    assert f.code == "noise_output"
    assert spread_across_samples(noise) == pytest.approx(127.5, rel=0.02)  # each pixel 0 or 255 at even odds


# ---------------------------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import ganforge

    root = tmp_path_factory.mktemp("doctor")
    run = root / "run"
    ganforge.train(tiny_config(make_idx_dataset(root / "fmnist"), steps=6), run)
    return run


def test_doctor_on_a_real_run_through_the_cli(tiny_run, capsys, monkeypatch):
    # After 6 steps the freshly initialised G draws one flat grey image for every z. The run is young and its
    # pixel spread has risen since the checkpoint of step 3, so this is a note (too_early, exit 0); once the run
    # counts as old enough, the constant-output check reports it as an error (exit 1).
    from ganforge.doctor import samples

    assert main(["doctor", str(tiny_run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["run"], out["step"], out["findings"]) == (str(tiny_run), 6, [])
    assert [n["kind"] for n in out["notes"]] == ["too_early", "healthy"]
    assert out["notes"][0]["evidence"]["young_run"]["earlier"].startswith("the checkpoint of step 3 showed constant")
    monkeypatch.setattr(samples, "YOUNG_STEPS", 6)
    assert main(["doctor", str(tiny_run), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["notes"] == []
    [f] = out["findings"]
    assert (f["kind"], f["severity"], f["first_step"], f["evidence"]["samples"]) == ("constant_output", "error", 6, 256)
    assert f["evidence"]["pixel_std_across_samples"] <= f["evidence"]["pixel_std"] < 2.0  # flat as well as alike
    assert main(["doctor", str(tiny_run), "--no-samples", "--threads", "1"]) == 0
    assert capsys.readouterr().out.startswith("INFO     healthy: No problem found")


def test_a_run_that_went_nan_exits_1_and_a_folder_that_is_no_run_exits_2(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 8, "loss_D": float("nan"), "loss_G": float("nan"), "D_real": 0.5,
                            "D_fake": 0.5}) + "\n")
    assert main(["doctor", str(run), "--no-samples"]) == 1
    text = capsys.readouterr().out
    assert "ERROR    divergence: Training blew up: the losses became infinite or NaN at step 8" in text
    assert main(["doctor", str(tmp_path / "nothing")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
