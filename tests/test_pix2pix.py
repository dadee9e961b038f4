"""pix2pix through the shared trainer: losses, L1-only switch, one G forward per step, inference modes,
resume, the CLI (train, translate, --from-reference)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from conftest import train_interrupted
from ganforge.cli import main
from ganforge.models.unet import UNetGenerator, reference_unet_key_map
from ganforge.pipelines.translation import inference_mode
from ganforge.train.run import build_task
from ganforge.train.trainer import Trainer

NETS = {"netG": "unet_32", "ngf": 8, "ndf": 8}


def p2p_config(root, **overrides):
    values = {"model": "pix2pix", "data": "edges2fashion", "data_root": str(root), "image_size": 32, "steps": 4,
              "batch_size": 4, "log_every": 1, "sample_every": 2, "ckpt_every": 2, "n_samples": 8,
              "progress": False, "model_options": dict(NETS)}
    values.update(overrides)
    return ganforge.resolve_config(flags=values)


def weights(run, which="latest"):
    from safetensors.torch import load_file

    from ganforge.checkpoint import resolve_checkpoint

    return load_file(str(resolve_checkpoint(run, which) / "weights.safetensors"))


def test_training_logs_both_losses_and_writes_triplet_pictures(idx_root, tmp_path):
    run = tmp_path / "run"
    ganforge.train(p2p_config(idx_root), run)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss_D", "D_real", "D_fake", "loss_G_GAN", "loss_G_L1"} <= set(rows[-1])
    meta = json.loads((run / "config.json").read_text())
    assert meta["model_options"]["input_nc"] == 1 and meta["model_options"]["output_nc"] == 1
    assert meta["dataset"]["name"] == "edges2fashion" and meta["dataset"]["channels_A"] == 1
    with Image.open(run / "samples.png") as im:  # 8 pairs: 4 rows of two (input | output | target) triplets
        assert im.width > im.height
    assert (run / "real_samples.png").is_file() and (run / "progress.gif").is_file()
    state = torch.load(run / "checkpoints/step_00000004/state.pt", weights_only=True)
    assert state["batches_seen"] == 4  # D and G share one batch per step


def test_l1_only_never_updates_the_discriminator(idx_root, tmp_path):
    torch.manual_seed(0)
    ganforge.train(p2p_config(idx_root, gan_weight=0), tmp_path / "l1")
    ganforge.train(p2p_config(idx_root), tmp_path / "full")
    l1, l1_early = weights(tmp_path / "l1"), weights(tmp_path / "l1", "2")
    full, full_early = weights(tmp_path / "full"), weights(tmp_path / "full", "2")
    d_keys = [k for k in l1 if k.startswith("D.")]
    assert d_keys and all(torch.equal(l1[k], l1_early[k]) for k in d_keys)  # D never moved
    assert any(not torch.equal(full[k], full_early[k]) for k in d_keys)
    assert any(not torch.equal(l1[k], l1_early[k]) for k in l1 if k.startswith("G."))
    rows = [json.loads(x) for x in (tmp_path / "l1/metrics.jsonl").read_text().splitlines()]
    assert "loss_D" not in rows[-1] and "loss_G_GAN" not in rows[-1] and "loss_G_L1" in rows[-1]
    state = torch.load(tmp_path / "l1/checkpoints/step_00000004/state.pt", weights_only=True)
    assert list(state["optim"]) == ["G"]


def test_the_generator_runs_once_per_step_and_its_loss_is_gan_plus_lambda_l1(idx_root, tmp_path, monkeypatch):
    calls = []
    original = UNetGenerator.forward

    def counted(self, x):
        calls.append(torch.is_grad_enabled())
        return original(self, x)

    monkeypatch.setattr(UNetGenerator, "forward", counted)
    seen = {}
    original_step = Trainer.train_step

    def step(self):
        before = len(calls)
        logs = original_step(self)
        seen[self.step] = len(calls) - before
        task, batch = self.task, self._last_batch if hasattr(self, "_last_batch") else None
        assert task.lambda_l1 == 100.0 and batch is None
        return logs

    monkeypatch.setattr(Trainer, "train_step", step)
    ganforge.train(p2p_config(idx_root, steps=3, sample_every=0), tmp_path / "run")
    assert seen == {1: 1, 2: 1, 3: 1}
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    for r in rows:  # vanilla GAN term is -log D(A, G(A)) >= 0; the L1 term is in [0, 2]
        assert r["loss_G_GAN"] > 0 and 0 <= r["loss_G_L1"] <= 2


def test_pix2pix_losses_follow_the_reference_scaling():
    cfg = ganforge.resolve_config(flags={"model": "pix2pix", "lambda_l1": 10.0})
    task = build_task(cfg, {**NETS, "image_size": 32, "input_nc": 1, "output_nc": 1})
    nets = task.nets
    torch.manual_seed(0)
    A, B = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    fake = nets["G"](A)
    batch = {"A": A, "B": B, "fake": fake}
    phases = {p.name: p for p in task.phases()}
    d_loss, _ = task.loss(phases["D"], batch, nets)
    r, f = nets["D"](torch.cat([A, B], 1)), nets["D"](torch.cat([A, fake.detach()], 1))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected_d = 0.5 * (bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    assert d_loss.item() == pytest.approx(expected_d.item(), rel=1e-5)
    g_loss, logs = task.loss(phases["G"], batch, nets)
    f2 = nets["D"](torch.cat([A, fake], 1))
    expected_g = bce(f2, torch.ones_like(f2)) + 10.0 * (fake - B).abs().mean()
    assert g_loss.item() == pytest.approx(expected_g.item(), rel=1e-5)


def test_reference_inference_mode_uses_batch_statistics_and_dropout_and_changes_no_buffer():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, 6, ngf=8, dropout=0.5)
    with torch.no_grad():  # give the running statistics values that differ from a batch's own
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    G.train()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.manual_seed(1)
        with inference_mode(G, "reference"):
            a = G(x)
        torch.manual_seed(2)
        with inference_mode(G, "reference"):
            b = G(x)
        with inference_mode(G, "eval"):
            c, d = G(x), G(x)
    assert G.training  # modes restored
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.allclose(a, b)  # dropout differs with the seed
    assert torch.equal(c, d) and not torch.allclose(a, c)
    with pytest.raises(ganforge.GanforgeError, match="reference, eval"):
        with inference_mode(G, "test"):
            pass


def test_resume_is_bit_identical_with_random_crops_flips_and_dropout(idx_root, tmp_path, monkeypatch):
    cfg = p2p_config(idx_root, steps=5, ckpt_every=2, load_size=36, model_options={**NETS, "dropout": 0.5})
    ganforge.train(cfg, tmp_path / "full")
    train_interrupted(cfg, tmp_path / "cut", 3, monkeypatch)
    ganforge.resume(tmp_path / "cut")
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cli_train_then_translate_the_held_out_split_and_files(idx_root, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "pix2pix", "--data", "edges2fashion", "--data-root", str(idx_root), "--out", str(run),
               "--steps", "2", "--batch-size", "4", "image_size=32", "model.netG=unet_32", "model.ngf=8",
               "model.ndf=8", "n_samples=4", "--no-progress"])
    assert rc == 0
    out = tmp_path / "out"
    assert main(["translate", str(run), "--split", "test", "--n", "12", "--out", str(out)]) == 0
    record = json.loads((out / "translate.json").read_text())
    scores = record["scores"]
    assert scores["n"] == 12 and 0 <= scores["l1"] <= 255 and 0 <= scores["ssim"] <= 1 and scores["psnr"] > 0
    assert scores["fid"] is not None and scores["fid"] >= 0
    assert record["translator"]["mode"] == "eval" and record["translator"]["step"] == 2  # auto: trained at batch 4
    assert 0 < scores["sharpness"] < 10
    assert len(list(out.glob("*.png"))) == 13  # 12 outputs + comparison.png
    printed = capsys.readouterr().out
    assert record["available"] == 64  # the fixture's test split; --n 12 took the first 12
    assert "Translated 12 of the 64 test pairs" in printed and "--n all" in printed
    # the same seed gives the same outputs, also with dropout on in the reference mode
    out2, out3 = tmp_path / "out2", tmp_path / "out3"
    assert main(["translate", str(run), "--split", "test", "--n", "12", "--out", str(out2), "--mode", "reference"]) == 0
    assert main(["translate", str(run), "--split", "test", "--n", "12", "--out", str(out3), "--mode", "reference"]) == 0
    assert json.loads((out2 / "translate.json").read_text())["translator"]["mode"] == "reference"
    for p in out2.glob("*.png"):
        assert p.read_bytes() == (out3 / p.name).read_bytes()
    out2 = tmp_path / "out4"
    assert main(["translate", str(run), "--split", "test", "--n", "12", "--out", str(out2)]) == 0
    first = sorted(p.name for p in out.glob("*.png") if p.name != "comparison.png")[0]
    assert (out / first).read_bytes() == (out2 / first).read_bytes()
    # a folder of files of other sizes (padded to multiples of 32 and cropped back) and gray/RGB inputs
    files = tmp_path / "files"
    files.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)).save(files / "a.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(files / "b.png")
    assert main(["translate", str(run), str(files), "--out", str(tmp_path / "o3"), "--mode", "eval"]) == 0
    with Image.open(tmp_path / "o3/a.png") as im:
        assert im.size == (50, 40) and im.mode == "L"
    with Image.open(tmp_path / "o3/b.png") as im:
        assert im.size == (32, 32)


def test_translate_from_a_reference_checkpoint_gives_that_network_s_outputs(tmp_path):
    torch.manual_seed(0)
    ours = UNetGenerator(3, 3, 5, ngf=8, dropout=0.5)
    for m in ours.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    table = reference_unet_key_map(5)
    reference_state = {}
    for ref_prefix, our_prefix in table.items():
        for key, value in ours.state_dict().items():
            if key.startswith(our_prefix + "."):
                reference_state[ref_prefix + key[len(our_prefix):]] = value.clone()
    assert len(reference_state) == len(ours.state_dict())
    pth = tmp_path / "latest_net_G.pth"
    torch.save(reference_state, pth)
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    for mode in ("eval", "reference"):
        out = tmp_path / mode
        assert main(["translate", "--from-reference", str(pth), "--netG", "unet_32", "--ngf", "8", "--mode", mode,
                     str(tmp_path / "in.png"), "--out", str(out), "--seed", "3"]) == 0
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            torch.manual_seed(3)
            with inference_mode(ours, mode):
                y = ours(x)
        expected = ((y[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        with Image.open(out / "in.png") as im:
            assert np.array_equal(np.asarray(im), expected), mode


@pytest.mark.parametrize("args, message", [
    (["--from-reference", "missing.pth", "x.png"], "No checkpoint file"),
    ([], "Give the run folder"),
])
def test_translate_mistakes_are_one_sentence(tmp_path, capsys, args, message):
    rc = main(["translate", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1


def test_translate_refuses_a_noise_model_and_sample_refuses_pix2pix(idx_root, tmp_path, capsys):
    from conftest import tiny_config

    ganforge.train(tiny_config(idx_root, steps=1), tmp_path / "dcgan")
    assert main(["translate", str(tmp_path / "dcgan"), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "samples from noise" in capsys.readouterr().err
    ganforge.train(p2p_config(idx_root, steps=1), tmp_path / "p2p")
    assert main(["sample", str(tmp_path / "p2p"), "--out", str(tmp_path / "s.png")]) == 2
    assert "ganforge translate" in capsys.readouterr().err


def test_large_seeds_and_reference_mode_sample_pictures_run_each_image_alone(idx_root, tmp_path):
    run = tmp_path / "run"
    ganforge.train(p2p_config(idx_root, steps=1, seed=2**31 - 1, batch_size=1, sample_every=0), run)
    model = ganforge.load(run)
    G = model.nets["G"]
    assert model.mode == "reference"  # trained at batch size 1
    A = torch.rand(3, 1, 32, 32) * 2 - 1
    G.requires_grad_(False)
    with torch.no_grad():
        torch.manual_seed(0)
        together = model.generate({"A": A}, net=G)
        torch.manual_seed(0)
        alone = torch.cat([model.generate({"A": A[i:i + 1]}, net=G) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_translate_bad_counts_are_one_sentence(idx_root, tmp_path, capsys):
    ganforge.train(p2p_config(idx_root, steps=1), tmp_path / "run")
    for flag in ("--n", "--size"):
        rc = main(["translate", str(tmp_path / "run"), "--split", "test", flag, "0", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and f"{flag} must be a positive integer" in err and len(err.splitlines()) == 1


def test_pix2pix_info_prints_the_reference_counts(capsys):
    assert main(["info", "pix2pix", "--netG", "unet_256"]) == 0
    assert json.loads(capsys.readouterr().out) == {"G": 54413955, "D": 2768705}
