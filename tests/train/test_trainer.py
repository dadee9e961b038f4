"""The shared training loop: outputs, resume bit-exactness, EMA, k D steps, precision, schedules."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config, train_interrupted
from ganforge.checkpoint import list_checkpoints
from ganforge.train.run import build_run
from ganforge.train.trainer import lr_factor


def weights(run_dir, which="latest"):
    from ganforge.checkpoint import resolve_checkpoint

    return load_file(str(resolve_checkpoint(run_dir, which) / "weights.safetensors"))


def test_run_folder_has_pictures_logs_and_checkpoints(idx_root, tmp_path):
    run = tmp_path / "run"
    result = ganforge.train(tiny_config(idx_root, steps=6, keep_ckpts=2), run)
    assert result.step == 6
    for name in ("samples.png", "real_samples.png", "progress.gif", "losses.png", "config.json", "metrics.jsonl"):
        assert (run / name).is_file(), name
    frames = sorted(p.name for p in (run / "samples").glob("step_*.png"))
    assert frames == ["step_00000000.png", "step_00000003.png", "step_00000006.png"]
    with Image.open(run / "progress.gif") as gif:
        assert gif.n_frames == 3
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert {"loss_D", "loss_G", "D_real", "D_fake", "img_per_s"} <= set(rows[0])
    assert any((run / "tb").glob("events.out.tfevents.*"))
    ckpts = list_checkpoints(run / "checkpoints")
    assert [p.name for p in ckpts] == ["step_00000003", "step_00000006"]  # keep_ckpts=2
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["steps"] == 6 and cfg["model_options"]["image_size"] == 28
    meta = json.loads((ckpts[-1] / "meta.json").read_text())
    assert meta["model"] == "dcgan" and meta["step"] == 6 and meta["model_options"]["ngf"] == 8
    state = torch.load(ckpts[-1] / "state.pt", weights_only=True)
    assert state["step"] == 6 and state["batches_seen"] == 6


@pytest.mark.parametrize("options", [
    {"ema_decay": 0.9, "d_steps": 2, "lr_schedule": "linear", "loss": "hinge"},
    {"loss": "wgan-gp", "model": "gan", "model_options": {"nz": 8, "g_hidden": [32], "d_hidden": [32]}},
    {"ema_decay": 0.9, "task_options": {"reuse_fakes": True}},  # G's one forward a step, before the phases
])
def test_resume_is_bit_identical(idx_root, tmp_path, monkeypatch, options):
    cfg = tiny_config(idx_root, steps=7, ckpt_every=3, **options)
    full = ganforge.train(cfg, tmp_path / "full")
    train_interrupted(cfg, tmp_path / "cut", 4, monkeypatch)  # after the step-3 checkpoint, mid-way to the next
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "checkpoints")] == ["step_00000003"]
    resumed = ganforge.resume(tmp_path / "cut")
    assert resumed.step == full.step == 7

    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = torch.load(tmp_path / "full/checkpoints/step_00000007/state.pt", weights_only=True)
    sb = torch.load(tmp_path / "cut/checkpoints/step_00000007/state.pt", weights_only=True)
    assert torch.equal(sa["rng"][0]["cpu"], sb["rng"][0]["cpu"])
    for phase in sa["optim"]:
        for idx, st in sa["optim"][phase]["state"].items():
            assert torch.equal(st["exp_avg_sq"], sb["optim"][phase]["state"][idx]["exp_avg_sq"])
    # the metrics of the cut run hold each step once, as in the full run
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut/metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 7]


def test_resume_can_extend_a_finished_run(idx_root, tmp_path):
    ganforge.train(tiny_config(idx_root, steps=3), tmp_path / "r")
    assert ganforge.resume(tmp_path / "r", {"steps": 5}).step == 5
    with pytest.raises(ganforge.GanforgeError, match="Cannot change lr_g"):
        ganforge.resume(tmp_path / "r", {"lr_g": 1.0})


def test_k_discriminator_steps_use_fresh_batches(idx_root, tmp_path):
    ganforge.train(tiny_config(idx_root, steps=2, d_steps=3), tmp_path / "r")
    state = torch.load(tmp_path / "r/checkpoints/step_00000002/state.pt", weights_only=True)
    assert state["batches_seen"] == 6
    # D's Adam took 6 steps, G's 2
    assert int(next(iter(state["optim"]["D"]["state"].values()))["step"]) == 6
    assert int(next(iter(state["optim"]["G"]["state"].values()))["step"]) == 2


def test_generator_phase_leaves_discriminator_untouched(idx_root, tmp_path):
    run = build_run(tiny_config(idx_root, steps=1), tmp_path / "r", write=False)
    trainer, task, stream, nets = run.trainer, run.task, run.stream, run.task.nets
    assert not (tmp_path / "r").exists()  # write=False: building writes nothing
    g_phase = trainer.phases[1]
    assert g_phase.name == "G"
    d_before = {k: v.clone() for k, v in nets["D"].named_parameters()}
    g_before = {k: v.clone() for k, v in nets["G"].state_dict().items()}
    batch = trainer._to_device(stream.batch(0))
    for name, net in nets.items():
        net.requires_grad_(name in g_phase.nets)
    loss, _ = task.loss(g_phase, batch, nets)
    loss.backward()
    assert all(p.grad is None for p in nets["D"].parameters())
    assert all(p.grad is not None for p in nets["G"].parameters())
    trainer.optimizers["G"].step()
    assert all(torch.equal(v, d_before[k]) for k, v in nets["D"].named_parameters())
    assert any(not torch.equal(v, g_before[k]) for k, v in nets["G"].state_dict().items())


def test_ema_averages_generator_weights(idx_root, tmp_path):
    ganforge.train(tiny_config(idx_root, steps=4, ema_decay=0.5), tmp_path / "r")
    w = weights(tmp_path / "r")
    ema_keys = [k for k in w if k.startswith("ema.G.")]
    assert ema_keys and len(ema_keys) == len([k for k in w if k.startswith("G.")])
    differs = [k for k in ema_keys if w[k].is_floating_point() and "running" not in k
               and not torch.equal(w[k], w[k[4:]])]
    assert differs  # averaged weights are not the current ones
    m = ganforge.load(tmp_path / "r")
    assert not torch.equal(torch.from_numpy(m.sample(4, ema=True)), torch.from_numpy(m.sample(4, ema=False)))


def test_ema_decay_warms_up():
    from ganforge.train.ema import EMA

    e = EMA(torch.nn.Linear(2, 2), 0.999)
    assert e.decay_at(0) == pytest.approx(0.1)
    assert e.decay_at(90) == pytest.approx(0.91)
    assert e.decay_at(10**6) == 0.999


def test_bf16_autocast_on_cpu(idx_root, tmp_path, monkeypatch):
    from ganforge.train import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # no emulation warning
    seen = []
    cfg = tiny_config(idx_root, steps=2, precision="bf16")
    original = ganforge.tasks.gan.GANTask.loss

    def spy(self, phase, batch, nets):
        out = nets["D"].main[0](batch["image"])  # first conv under the trainer's autocast
        seen.append(out.dtype)
        return original(self, phase, batch, nets)

    monkeypatch.setattr(ganforge.tasks.gan.GANTask, "loss", spy)
    ganforge.train(cfg, tmp_path / "r")
    assert seen and all(d == torch.bfloat16 for d in seen)
    rows = [json.loads(line) for line in (tmp_path / "r/metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss_D"])) for r in rows)


def test_channels_last_trains_to_same_shapes(idx_root, tmp_path):
    result = ganforge.train(tiny_config(idx_root, steps=2, channels_last=True), tmp_path / "r")
    w = result.nets["G"].main[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last)
    assert ganforge.load(tmp_path / "r").sample(3).shape == (3, 28, 28, 1)


def test_linear_learning_rate_decay():
    assert lr_factor(0, 100, "linear", 0.5) == 1.0
    assert lr_factor(49, 100, "linear", 0.5) == 1.0
    assert lr_factor(75, 100, "linear", 0.5) == 0.5
    assert lr_factor(100, 100, "linear", 0.5) == 0.0
    assert lr_factor(75, 100, "constant", 0.5) == 1.0


def test_sampling_is_reproducible_and_seeded(idx_root, tmp_path):
    ganforge.train(tiny_config(idx_root, steps=2), tmp_path / "r")
    m = ganforge.load(tmp_path / "r")
    a, b, c = m.sample(5, seed=1), m.sample(5, seed=1), m.sample(5, seed=2)
    assert a.dtype.name == "uint8" and a.shape == (5, 28, 28, 1)
    assert (a == b).all() and not (a == c).all()
    # the first images do not depend on how many are asked for
    assert (m.sample(2, seed=1) == a[:2]).all()
