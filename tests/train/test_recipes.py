"""The quality recipes any GAN can use: augmentation (DiffAugment, ADA's p), R1, spectral norm, and the
EMA generator's batch-norm statistics re-estimated for its averaged weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import ganforge
from conftest import tiny_config, train_interrupted
from ganforge.augment import AdaptiveProbability, augment, cutout, parse_policy, translate
from ganforge.checkpoint import resolve_checkpoint
from ganforge.families import build_model
from ganforge.losses import r1_penalty
from ganforge.models import count_parameters
from ganforge.train.ema import recompute_batchnorm


def _uniform(values):
    """A stand-in for torch.rand that returns the given values, in order, one call at a time."""
    values = list(values)

    def r(*shape):
        return torch.full(shape, values.pop(0))

    return r


# ----------------------------------------------------------------------------- augmentation
def test_translation_shifts_by_whole_pixels_and_fills_with_zeros():
    x = torch.arange(1, 1 + 2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    # 8 pixels, ratio 1/8: shifts in [-1, 1]; r = 0.99 -> +1, r = 0.0 -> -1 (2 * 1 + 1 = 3 bins)
    out = translate(x, lambda n: torch.tensor([0.99, 0.0][:n]))
    assert torch.equal(out[0, 0, 1:, 1:], x[0, 0, :-1, :-1])  # image 0 moved down and right by one pixel
    assert (out[0, 0, 0] == 0).all() and (out[0, 0, :, 0] == 0).all()
    assert torch.equal(out[1, 0, :-1, :-1], x[1, 0, 1:, 1:])  # image 1 moved up and left
    assert (out[1, 0, -1] == 0).all() and (out[1, 0, :, -1] == 0).all()


def test_cutout_zeroes_one_square_of_half_the_size():
    x = torch.ones(1, 2, 28, 28)
    out = cutout(x, _uniform([0.5, 0.5]))
    zero = out[0, 0] == 0
    assert int(zero.sum()) == 14 * 14 and torch.equal(out[0, 0], out[0, 1])
    rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
    assert int(rows[-1] - rows[0]) == 13 and int(cols[-1] - cols[0]) == 13


def test_augmentation_keeps_the_shape_and_passes_gradients_and_p0_is_the_identity():
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    policy = parse_policy("color,translation,cutout")
    out = augment(x, policy, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert augment(x, policy, p=0.0) is x
    with pytest.raises(ganforge.GanforgeError, match="Unknown augmentation 'rotate'.*color, translation, cutout"):
        parse_policy("color,rotate")


def test_ada_probability_rises_while_d_is_sure_of_the_reals_and_falls_back():
    ada = AdaptiveProbability(target=0.6, interval=4, speed_images=1000)
    for _ in range(8):  # D(real) > 0 for every image: r_t = 1 > 0.6, two adjustments of 4 x 25 / 1000
        ada.observe(torch.ones(25))
    assert ada.p == pytest.approx(0.2) and ada.last_rt == 1.0
    for _ in range(12):  # r_t = -1: three steps down, clamped at 0
        ada.observe(-torch.ones(25))
    assert ada.p == 0.0
    clone = AdaptiveProbability(0.6, 4, 1000)
    ada.observe(torch.ones(25))
    clone.load_state_dict(ada.state_dict())
    assert clone.state_dict() == ada.state_dict()


def test_r1_penalty_of_a_linear_critic_is_its_weights_squared_norm():
    w = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(5, 3, requires_grad=True)
    assert float(r1_penalty(x @ w, x)) == pytest.approx(14.0)


def test_augment_auto_augments_small_data_and_records_the_choice(idx_root, tmp_path):
    small = tiny_config(idx_root, steps=2)  # 256 images
    ganforge.train(small, tmp_path / "small")
    options = json.loads((tmp_path / "small" / "config.json").read_text())["task_options"]
    assert options["augment"] == "ada"
    big = tiny_config(idx_root, steps=2)
    from ganforge.tasks.gan import GANOptions, GANTask

    assert GANTask.options_for_data(GANOptions(), 60000).augment == "none"
    assert GANTask.options_for_data(GANOptions(augment="diffaugment"), 100).augment == "diffaugment"
    big.task_options = {"augment": "none"}
    ganforge.train(big, tmp_path / "chosen")
    assert json.loads((tmp_path / "chosen" / "config.json").read_text())["task_options"]["augment"] == "none"


def test_ada_with_r1_and_spectral_norm_resumes_bit_identically(idx_root, tmp_path, monkeypatch):
    cfg = tiny_config(idx_root, steps=6, model_options={"ngf": 8, "ndf": 8, "nz": 16, "d_norm": "spectral"},
                      task_options={"augment": "ada", "ada_speed": 500, "r1_weight": 1.0, "loss": "hinge"},
                      ema_decay=0.9, ema_bn_batches=2)
    ganforge.train(cfg, tmp_path / "straight")
    train_interrupted(cfg, tmp_path / "resumed", stop_at=3, monkeypatch=monkeypatch)
    ganforge.resume(tmp_path / "resumed")
    a = load_file(str(resolve_checkpoint(tmp_path / "straight") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "resumed") / "weights.safetensors"))
    assert a.keys() == b.keys() and any("parametrizations" in k for k in a)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["aug_p"] <= 1 for r in rows if "aug_p" in r)
    states = [torch.load(resolve_checkpoint(tmp_path / run) / "state.pt", weights_only=True)["task"][0]["ada"]
              for run in ("straight", "resumed")]
    assert states[0] == states[1] and states[0]["updates"] == 6  # ADA's controller resumed where it stopped
    assert all(r["r1"] >= 0 for r in rows if "r1" in r)


@pytest.mark.parametrize("every", [1, 3])
def test_lazy_r1_adds_the_penalty_every_kth_d_update_weighted_by_k(every):
    from ganforge.train.run import build_task

    cfg = ganforge.resolve_config(flags={"model": "dcgan", "task_options": {"r1_weight": 0.5, "r1_every": every}})
    task = build_task(cfg, {"image_size": 28, "channels": 1, "ngf": 8, "ndf": 8, "nz": 16})
    D_phase = next(p for p in task.phases() if p.name == "D")
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    penalties, losses = [], []
    for update in range(7):
        torch.manual_seed(update)  # the same fakes whether or not the penalty is added
        loss, logs = task.loss(D_phase, {"image": real}, task.nets)
        losses.append(float(loss.detach()) - float(logs["loss_D"]))
        penalties.append(float(logs["r1"]))
    due = [u % every == 0 for u in range(7)]
    for update, (extra, on) in enumerate(zip(losses, due, strict=True)):
        last = max(u for u in range(update + 1) if due[u])  # the logged penalty is the last one computed
        assert penalties[update] == penalties[last] > 0
        assert extra == pytest.approx(0.5 * 0.5 * every * penalties[update] if on else 0.0, rel=1e-5, abs=1e-7)
    assert task.state_dict()["d_updates"] == 7


def test_lazy_r1_resumes_bit_identically_and_a_bad_interval_is_one_sentence(idx_root, tmp_path, monkeypatch):
    cfg = tiny_config(idx_root, steps=7, model_options={"ngf": 8, "ndf": 8, "nz": 16},
                      task_options={"r1_weight": 1.0, "r1_every": 2})
    ganforge.train(cfg, tmp_path / "straight")
    # the last checkpoint is step 3: the resumed run starts on D update 3, between two penalties (2 and 4)
    train_interrupted(cfg, tmp_path / "resumed", stop_at=4, monkeypatch=monkeypatch)
    ganforge.resume(tmp_path / "resumed")
    a = load_file(str(resolve_checkpoint(tmp_path / "straight") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "resumed") / "weights.safetensors"))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    states = [torch.load(resolve_checkpoint(tmp_path / run) / "state.pt", weights_only=True)["task"][0]
              for run in ("straight", "resumed")]
    assert states[0]["d_updates"] == states[1]["d_updates"] == 7
    rows = {run: [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("straight", "resumed")}
    logged = {run: [(r["step"], r["r1"]) for r in rs if "loss_D" in r] for run, rs in rows.items()}
    # every row has r1, the resumed run's first one too (the penalty of update 2, kept in the checkpoint)
    assert logged["straight"] == logged["resumed"] and [s for s, _ in logged["straight"]] == [2, 4, 6, 7]
    for bad, said in ((0, "r1_every must be a positive whole number of D updates, got 0"),
                      (2.5, "option r1_every must be an integer")):
        with pytest.raises(ganforge.GanforgeError, match=said):
            ganforge.train(tiny_config(idx_root, task_options={"r1_weight": 1.0, "r1_every": bad}), tmp_path / "bad")
        assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- reusing the fakes
def test_reuse_fakes_trains_g_on_the_fakes_d_scored_and_d_gets_none_of_g_s_gradient():
    from ganforge.losses import LOSSES
    from ganforge.train.run import build_task

    cfg = ganforge.resolve_config(flags={"model": "cgan", "task_options": {"reuse_fakes": True}})
    task = build_task(cfg, {"num_classes": 3, "ngf": 8, "ndf": 8, "nz": 16})
    G, D = task.nets["G"], task.nets["D"]
    assert task.shared_forward == ("G",)
    phases = {p.name: p for p in task.phases()}
    assert not phases["D"].new_batch and not phases["G"].new_batch  # the step's one batch, drawn before forward()
    batch = {"image": torch.rand(6, 1, 28, 28) * 2 - 1, "label": torch.tensor([0, 1, 2, 2, 1, 0])}
    batch.update(task.forward(batch, task.nets))
    assert torch.equal(batch["fake_label"], batch["label"])  # the fakes take the real batch's labels
    loss_d, _ = task.loss(phases["D"], batch, task.nets)
    loss_d.backward()
    assert all(p.grad is None for p in G.parameters())  # D's phase scores the fakes without G's graph
    D.requires_grad_(False)
    loss_g, _ = task.loss(phases["G"], batch, task.nets)
    loss_g.backward(retain_graph=True)  # G's graph from forward(), once more for the expected gradient
    expected = torch.autograd.grad(LOSSES.get("nonsaturating").g_loss(D(batch["fake"], batch["label"]).float()),
                                   list(G.parameters()))
    for p, g in zip(G.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_reuse_fakes_runs_g_once_per_step_and_bad_pairs_are_one_sentence(idx_root, tmp_path, monkeypatch):
    from ganforge.models.dcgan import DCGANGenerator

    calls, counted = [], {}
    original = DCGANGenerator.forward
    monkeypatch.setattr(DCGANGenerator, "forward", lambda self, z, y=None: calls.append(1) or original(self, z, y))
    for reuse in (False, True):
        calls.clear()
        ganforge.train(tiny_config(idx_root, steps=5, sample_every=0, ckpt_every=0,
                                   task_options={"reuse_fakes": reuse}), tmp_path / f"count{reuse}")
        counted[reuse] = len(calls)
    assert counted[False] - counted[True] == 5  # one forward of G fewer per step; the sample grids need the same
    monkeypatch.setattr(DCGANGenerator, "forward", original)
    # (its resume: tests/train/test_trainer.py's test_resume_is_bit_identical)
    for options, said in (({"d_steps": 2}, "reuse_fakes lets G train on the fakes of the one D update before it, "
                                          "but d_steps is 2"),
                          ({"mode_seeking": 1.0}, "reuse_fakes and mode_seeking cannot be combined")):
        with pytest.raises(ganforge.GanforgeError, match=said):
            ganforge.train(tiny_config(idx_root, task_options={"reuse_fakes": True, **options}), tmp_path / "bad")
        assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- mode seeking
@pytest.mark.parametrize("n", [6, 7])
def test_mode_seeking_pairs_share_a_label_and_add_the_inverse_distance_ratio(n):
    from ganforge.train.run import build_task

    cfg = ganforge.resolve_config(flags={"model": "cgan", "task_options": {"mode_seeking": 2.0}})
    task = build_task(cfg, {"num_classes": 3, "ngf": 8, "ndf": 8, "nz": 16})
    G, seen = task.nets["G"], {}

    def recording(z, y):
        seen.update(z=z, y=y, fake=G.__class__.forward(G, z, y))
        return seen["fake"]

    G.forward = recording
    phases = {p.name: p for p in task.phases()}
    batch = {"image": torch.zeros(n, 1, 28, 28), "label": torch.zeros(n, dtype=torch.long)}
    torch.manual_seed(0)
    loss, logs = task.loss(phases["G"], batch, task.nets)
    z, y, fake, half = seen["z"], seen["y"], seen["fake"].detach(), n // 2
    assert z.shape[0] == y.shape[0] == n and torch.equal(y[:half], y[n - half:])  # one label per pair
    ratio = (fake[:half] - fake[n - half:]).abs().mean() / (z[:half] - z[n - half:]).abs().mean()
    assert float(logs["mode_seeking"]) == pytest.approx(float(1 / (ratio + 1e-5)), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(logs["loss_G"]) + 2.0 * float(logs["mode_seeking"]), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)
    one = {"image": torch.zeros(1, 1, 28, 28), "label": torch.zeros(1, dtype=torch.long)}
    with pytest.raises(ganforge.GanforgeError, match="the batch holds 1 image; use batch_size=2 or more"):
        task.loss(phases["G"], one, task.nets)


def test_mode_seeking_trains_and_logs_its_term_and_a_negative_weight_is_one_sentence(idx_root, tmp_path):
    ganforge.train(tiny_config(idx_root, steps=4, task_options={"mode_seeking": 1.0}), tmp_path / "ms")
    rows = [json.loads(line) for line in (tmp_path / "ms" / "metrics.jsonl").read_text().splitlines()]
    assert [r["mode_seeking"] > 0 for r in rows if "loss_G" in r] == [True, True]
    with pytest.raises(ganforge.GanforgeError, match=r"mode_seeking must be zero \(off\) or a positive weight, got -1"):
        ganforge.train(tiny_config(idx_root, task_options={"mode_seeking": -1}), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ganforge.GanforgeError, match="the batch holds 1 image; use batch_size=2 or more"):
        ganforge.train(tiny_config(idx_root, batch_size=1, task_options={"mode_seeking": 1.0}), tmp_path / "one")
    assert not (tmp_path / "one").exists()


# ----------------------------------------------------------------------------- spectral normalisation
@pytest.mark.parametrize("model,options", [("dcgan", {"image_size": 28, "channels": 1}),
                                           ("cgan", {"num_classes": 10, "cond": "projection"})])
def test_spectral_norm_bounds_every_weight_of_d_by_one(model, options):
    D = build_model(model, {**options, "d_norm": "spectral"})["D"]
    plain = build_model(model, {**options, "d_norm": "none"})["D"]
    assert count_parameters(D) == count_parameters(plain)  # the weights are reparametrised, not added
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    for _ in range(30):  # power iterations in training-mode forwards
        D(x) if model == "dcgan" else D(x, y)
    normalised = [m for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(normalised) == (4 if model == "cgan" else 3)
    for m in normalised:
        w = m.weight.flatten(1) if not isinstance(m, nn.Embedding) else m.weight
        assert float(torch.linalg.matrix_norm(w.detach(), ord=2)) == pytest.approx(1.0, abs=0.02)


# ----------------------------------------------------------------------------- EMA batch-norm statistics
def test_recompute_batchnorm_gives_the_exact_statistics_of_the_batches():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    batches = [torch.randn(10, 3) for _ in range(3)]
    recompute_batchnorm(net, lambda m, b: m(b), batches)
    h = torch.stack([net[0](b) for b in batches])  # [3, 10, 4]
    bn = net[1]
    assert torch.allclose(bn.running_mean, h.mean(dim=(0, 1)), atol=1e-6)
    assert torch.allclose(bn.running_var, h.var(dim=1, unbiased=True).mean(0), atol=1e-5)
    assert bn.momentum == 0.1 and net.training


def test_ema_statistics_are_re_estimated_without_touching_training(idx_root, tmp_path):
    base = dict(steps=6, ema_decay=0.9, sample_every=2, ckpt_every=6)
    ganforge.train(tiny_config(idx_root, **base), tmp_path / "copied")
    ganforge.train(tiny_config(idx_root, **base, ema_bn_batches=3), tmp_path / "estimated")
    a = load_file(str(resolve_checkpoint(tmp_path / "copied") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "estimated") / "weights.safetensors"))
    live = [k for k in a if not k.startswith("ema.")]
    assert [k for k in live if not torch.equal(a[k], b[k])] == []  # the same training, step for step
    stats = [k for k in a if k.startswith("ema.") and "running_mean" in k]
    assert stats and all(torch.equal(a[k], a[k.removeprefix("ema.")]) for k in stats)  # copied from live G
    assert all(not torch.allclose(b[k], a[k]) for k in stats)  # re-estimated for the averaged weights
    weights = [k for k in a if k.startswith("ema.") and k.endswith("weight")]
    assert all(torch.equal(a[k], b[k]) for k in weights)


# ----------------------------------------------------------------------------- the benchmark runs
def test_time_to_quality_benchmark_trains_evaluates_and_plots(idx_root, tmp_path, monkeypatch):
    """benchmarks/time_to_quality.py end to end on the tiny dataset (a few seconds of training): it is not a
    timed test, it checks that the script's recipes, table, results and plot work."""
    import runpy
    import sys

    monkeypatch.setenv("GANFORGE_DATA", str(idx_root))
    out = tmp_path / "ttq"
    script = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "benchmarks" / "time_to_quality.py")
    monkeypatch.setattr(sys, "argv", [script, "--budget", "0.02", "--points", "0.01,0.02", "--n", "64",
                                      "--recipes", "preset,plain", "--variant", "sn:model.d_norm=spectral",
                                      "--set", "model.ngf=8", "model.ndf=8", "--out", str(out)])
    runpy.run_path(script, run_name="__main__")
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["recipe"] for r in rows] == ["fmnist-demo"] * 2 + ["plain"] * 2 + ["sn"] * 2
    assert all(r["step"] >= 1 and r["fid"] > 0 and 0 <= r["precision"] <= 1 for r in rows)
    assert rows[1]["step"] >= rows[0]["step"]
    assert (out / "fid_vs_time.png").stat().st_size > 10_000
    assert all((out / f"samples_{r}.png").is_file() for r in ("fmnist-demo", "plain", "sn"))


def test_resume_makes_the_auto_choice_again_and_an_older_run_keeps_no_augmentation(idx_root, tmp_path):
    from ganforge.tasks.gan import GANOptions, GANTask

    auto = GANOptions()
    assert GANTask.options_for_data(auto, 256, recorded={"augment": "ada", "loss": "nonsaturating"}).augment == "ada"
    assert GANTask.options_for_data(auto, 256, recorded={"loss": "nonsaturating"}).augment == "none"
    # torchrun's restart builds the run from the command line (augment=auto), not from config.json
    from ganforge.train.run import build_run

    cfg = tiny_config(idx_root, steps=3, ckpt_every=3)
    ganforge.train(cfg, tmp_path / "run")
    run = build_run(tiny_config(idx_root, steps=6, ckpt_every=3), tmp_path / "run", resume=True, write=False)
    try:
        assert run.task.augment_kind == "ada" and run.cfg.task_options["augment"] == "ada"
    finally:
        run.close()
