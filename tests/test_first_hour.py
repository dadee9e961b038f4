"""A new user's first hour: the README's examples that failed as written, and pictures that explain themselves."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config
from ganforge.checkpoint import resolve_checkpoint
from ganforge.cli import main

P2P = ["model.ngf=8", "model.ndf=8", "--no-progress"]


def _photos(folder, n, size, seed=0, gray_every=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = (size, size) if gray_every and i % gray_every == 0 else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"p{i:03d}.png")
    return folder


@pytest.fixture
def colour_run(tmp_path):
    """The README's `train pix2pix --data PHOTOS derive=gray2color` on a folder of 20 photos, no other setting
    (pairs are 64-px square crops): the defaults fit the folder (U-Net depth from the size, batch <= folder)."""
    run = tmp_path / "colour"
    assert main(["train", "pix2pix", "--data", str(_photos(tmp_path / "photos", 20, 32)), "derive=gray2color",
                 "--out", str(run), "--steps", "1", *P2P]) == 0
    return run


def test_pix2pix_on_a_small_folder_of_small_photos_trains_with_the_defaults(colour_run, capsys):
    config = json.loads((colour_run / "config.json").read_text())
    assert config["model_options"]["image_size"] == 64
    assert config["model_options"]["netG"] == "unet_64"  # the deepest U-Net that 64 px allows, not unet_256
    assert config["config"]["batch_size"] == 20  # the whole folder, not the default 64
    with Image.open(colour_run / "samples.png") as im:  # headers and a title that says these are training pairs
        assert im.width < 3 * im.height  # wrapped into groups, not one tall or wide strip


def test_every_hint_in_a_refusal_is_a_command_that_works(tmp_path, capsys):
    folder = _photos(tmp_path / "photos", 8, 32)
    args = ["train", "pix2pix", "--data", str(folder), "derive=gray2color", "--steps", "1", *P2P]
    assert main([*args, "--out", str(tmp_path / "a"), "model.netG=unet_256"]) == 2
    err = capsys.readouterr().err
    assert "use model.netG=unet_64" in err and not (tmp_path / "a").exists()
    assert main([*args, "--out", str(tmp_path / "b"), "model.netG=unet_64"]) == 0  # the hint, as given
    assert main([*args, "--out", str(tmp_path / "c"), "--batch-size", "9"]) == 2
    err = capsys.readouterr().err
    assert "use --batch-size 8 or less" in err and not (tmp_path / "c").exists()
    assert main(["info", "dcgan", "model.arch=examples", "--image-size", "28"]) == 0  # info takes model.X= too
    capsys.readouterr()
    assert main(["info", "dcgan", "model.arch=tutorial"]) == 0  # its own 28x28 grayscale size
    assert json.loads(capsys.readouterr().out) == {"G": 2305472, "D": 212865}
    assert main(["info", "cgan", "model.num_classes=10", "--image-size", "28", "--channels", "1"]) == 0


def test_translate_a_folder_that_mixes_gray_and_rgb_images_of_any_size(colour_run, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, shape in (("a.png", (64, 64)), ("b.png", (64, 64, 3)), ("c.png", (20, 45)), ("d.png", (70, 40, 3))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)
    out = tmp_path / "out"
    assert main(["translate", str(colour_run), str(folder), "--out", str(out)]) == 0
    record = json.loads((out / "translate.json").read_text())
    assert record["n"] == 4 and "Translated 4 images" in capsys.readouterr().out
    with Image.open(out / "c.png") as im:
        assert im.size == (45, 20)  # each output keeps its input's size
    with Image.open(out / "comparison.png") as im:  # all four rows, under the headers input | output
        one = Image.open(out / "a.png")
        assert im.height > 4 * one.height * (im.width / (2 * one.width)) * 0.9


def test_translate_a_split_takes_a_default_count_and_says_how_many_it_left(idx_root, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "pix2pix", "--data", "edges2fashion", "--data-root", str(idx_root), "--out", str(run),
                 "--steps", "1", "--batch-size", "4", "image_size=32", "model.netG=unet_32", *P2P]) == 0
    monkeypatch.setattr("ganforge.translation.SPLIT_N", 10)
    assert main(["translate", str(run), "--split", "test", "--out", str(tmp_path / "o"), "--no-fid"]) == 0
    printed = capsys.readouterr().out
    assert "Translated 10 of the 64 test pairs" in printed and "--n all" in printed
    assert main(["translate", str(run), "--split", "test", "--n", "all", "--out", str(tmp_path / "o2"),
                 "--no-fid"]) == 0
    assert "Translated 64 of the 64 test pairs" in capsys.readouterr().out
    record = ganforge.translate(run, split="test", n=3, out=tmp_path / "o3", fid=False)  # the same, from Python
    assert record["n"] == 3 and record["available"] == 64 and (tmp_path / "o3/comparison.png").is_file()
    assert main(["translate", str(run), "--split", "test", "--n", "some", "--out", str(tmp_path / "o4")]) == 2
    assert "--n must be a positive integer or all, got 'some'" in capsys.readouterr().err
    assert not (tmp_path / "o4").exists()


def test_wgan_gp_gets_a_critic_without_batch_norm_and_the_original_wgan_clips_weights(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=2, task_options={"loss": "wgan-gp"})
    result = ganforge.train(cfg, tmp_path / "gp")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in result.nets["D"].modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in result.nets["D"].modules())  # layer norm
    assert ganforge.info("dcgan", {"d_norm": "layer"}) == ganforge.info("dcgan")  # same parameter count
    explicit = tiny_config(idx_root, steps=1, task_options={"loss": "wgan-gp"},
                           model_options={"ngf": 8, "ndf": 8, "nz": 16, "d_norm": "batch"})
    kept = ganforge.train(explicit, tmp_path / "gp-bn")  # what the user sets wins
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in kept.nets["D"].modules())

    cfg = tiny_config(idx_root, steps=2, lr_d=0.05, task_options={"loss": "wgan", "d_steps": 5, "clip_value": 0.02})
    ganforge.train(cfg, tmp_path / "wgan")
    ckpt = resolve_checkpoint(tmp_path / "wgan", "latest")
    weights = load_file(str(ckpt / "weights.safetensors"))
    params = dict(result.nets["D"].named_parameters())
    clipped = [v for k, v in weights.items() if k.startswith("D.") and k[2:] in params]
    assert clipped and max(float(v.abs().max()) for v in clipped) <= 0.02 + 1e-7
    state = torch.load(ckpt / "state.pt", weights_only=True)
    assert "alpha" in state["optim"]["D"]["param_groups"][0]  # RMSprop, as in Arjovsky et al.


def test_losses_png_names_the_loss_and_plots_the_gradient_penalty_and_a_single_point(idx_root, tmp_path):
    from ganforge.viz import plot_losses

    metrics = tmp_path / "m.jsonl"
    metrics.write_text(json.dumps({"step": 1, "loss_D": 0.5, "loss_G": 1.0, "D_real": 2.0, "D_fake": -1.0,
                                   "gp": 0.3}) + "\n")
    out = plot_losses(metrics, tmp_path / "l.png", title="dcgan: wgan-gp loss", score="critic score",
                      probabilities=False)
    with Image.open(out) as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    blue = (np.abs(arr - np.array([31, 119, 180])).sum(-1) < 30).sum()  # matplotlib's first line colour
    assert blue > 20  # the one logged point is drawn (a marker), not an empty axis
    assert arr.shape[1] > 1500  # three panels: loss, critic score, gradient penalty

    cfg = tiny_config(idx_root, steps=2, log_every=1, task_options={"loss": "hinge"})
    from ganforge.train.run import build_task

    labels = build_task(cfg).plot_labels("dcgan")  # what the trainer draws losses.png with
    assert labels == {"title": "dcgan: hinge loss", "score": "D score", "probabilities": False}
    ganforge.train(cfg, tmp_path / "run")
    assert (tmp_path / "run/losses.png").is_file()


def test_gif_captions_sit_in_a_margin_above_the_frame(tmp_path):
    from ganforge.viz import CAPTION_HEIGHT, save_gif

    frame = tmp_path / "f.png"
    Image.fromarray(np.zeros((40, 60, 3), dtype=np.uint8)).save(frame)
    gif = save_gif([frame, frame], tmp_path / "a.gif", captions=["step 0", "step 5"])
    with Image.open(gif) as im:
        assert im.size == (60, 40 + CAPTION_HEIGHT)
        below = np.asarray(im.convert("RGB"))[CAPTION_HEIGHT:]
        assert below.max() < 10  # the sample itself is not covered


def test_toy_runs_write_the_number_of_frames_asked(tmp_path):
    from ganforge.api import TOY_FRAMES, frame_interval

    for steps in (3000, 5000, 4000, 1000):
        every = frame_interval(steps, TOY_FRAMES)
        assert steps // every + 1 + (steps % every != 0) == TOY_FRAMES  # step 0 and the last one included
    assert main(["toy", "--data", "gaussian1d", "--steps", "30", "--frames", "1", "--out", str(tmp_path / "t")]) == 2


def test_train_toy_and_ganforge_toy_share_defaults_and_frames(tmp_path, capsys):
    assert main(["train", "toy", "--data", "ring2d", "--steps", "40", "--out", str(tmp_path / "a"), "--no-progress",
                 "sample_every=20"]) == 0
    assert main(["toy", "--data", "ring2d", "--steps", "40", "--out", str(tmp_path / "b"), "sample_every=20"]) == 0
    a, b = (json.loads((tmp_path / r / "config.json").read_text())["config"] for r in "ab")
    for key in ("batch_size", "lr_g", "lr_d", "beta1", "beta2", "sample_every", "task_options"):
        assert a[key] == b[key], key
    assert sorted(p.name for p in (tmp_path / "a/samples").iterdir()) == \
        sorted(p.name for p in (tmp_path / "b/samples").iterdir())
    assert main(["train", "toy", "--out", str(tmp_path / "c")]) == 2
    assert "ganforge train toy needs --data" in capsys.readouterr().err


def test_threads_auto_leaves_busy_cores_alone_and_bad_counts_are_one_sentence(monkeypatch, capsys, tmp_path):
    from ganforge import threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(threads, "cpu_cores", lambda: 2)
        monkeypatch.setattr(threads, "busy_cores", lambda: 1.2)  # another program keeps one core busy
        torch.set_num_threads(2)
        assert (threads.choose_threads(None).threads, threads.choose_threads(None).why) == (1, "auto")
        assert (threads.choose_threads("2").threads, threads.choose_threads("2").why) == (2, "given")
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert threads.choose_threads(None).why == "environment"
    finally:
        torch.set_num_threads(before)
    assert main(["train", "--out", str(tmp_path / "r"), "--threads", "none"]) == 2
    assert "--threads must be a positive number of CPU threads or auto, got 'none'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_busy_cores_sees_another_program_at_once():
    import subprocess
    import sys

    from ganforge import threads

    idle = threads.busy_cores(0.3)
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        busy = threads.busy_cores(0.5)
    finally:
        spin.kill()
        spin.wait()
    # one core kept busy shows within half a second (a load average takes minutes)
    assert busy >= min(idle + 0.5, (os.cpu_count() or 1) - 0.5)


def test_a_long_run_says_how_long_it_will_take_early(monkeypatch):
    from ganforge.train import logs

    said = []
    clock = iter([0.0, 20.0])  # the first step starts the clock; 20 s later one step more was done
    monkeypatch.setattr(logs.time, "perf_counter", lambda: next(clock))
    notice = logs.DurationNotice(total=10_000, initial=0, device="cpu", write=said.append)
    notice.on_step(1)
    notice.on_step(2)
    assert len(said) == 1 and "the 9,998 steps left take about 55 h 32 min" in said[0] and "--resume" in said[0]
    quick = logs.DurationNotice(total=100, initial=0, device="cpu", write=said.append)
    clock = iter([0.0, 16.0])
    quick.on_step(1)
    quick.on_step(2)  # 98 steps at 16 s each: 26 min, under the half hour
    assert len(said) == 1


def test_resume_with_steps_at_or_below_the_step_reached_is_refused(idx_root, tmp_path, capsys):
    run = tmp_path / "run"
    ganforge.train(tiny_config(idx_root, steps=3), run)
    before = (run / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(run), "--steps", "2"]) == 2
    assert "is already at step 3; --steps is the total to reach, so give more than 3" in capsys.readouterr().err
    assert main(["train", "--resume", str(run)]) == 2
    assert (run / "metrics.jsonl").read_text() == before


def test_warnings_are_one_line_for_people(idx_root, tmp_path, capsys, colour_run):
    folder = tmp_path / "in"
    _photos(folder, 2, 32)
    (folder / "broken.png").write_bytes(b"not a png")
    assert main(["translate", str(colour_run), str(folder), "--out", str(tmp_path / "o")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    warned = [line for line in err if "broken.png" in line]
    assert len(warned) == 1 and warned[0].startswith("ganforge: warning:")
    assert not any("warnings.warn" in line or ".py:" in line for line in err)  # no source lines


def test_sample_of_one_class_and_truncation_name_the_classes(idx_root, tmp_path):
    run = tmp_path / "cgan"
    ganforge.train(tiny_config(idx_root, model="cgan", steps=1, model_options={"ngf": 8, "ndf": 8, "nz": 16}), run)
    one = tmp_path / "one.png"
    assert main(["sample", str(run), "--n", "4", "--nrow", "4", "--class", "3", "--out", str(one)]) == 0
    assert main(["sample", str(run), "--n", "4", "--nrow", "4", "--out", str(tmp_path / "all.png")]) == 0
    with Image.open(tmp_path / "one.png") as one, Image.open(tmp_path / "all.png") as plain:
        assert one.height == plain.height + 15  # a title line: the class and the step
    fig = ganforge.latent.truncation(ganforge.load(run), [None, 1.0], n=3)
    names = ganforge.load(run).class_names
    assert fig.record["classes"] == [0, 1, 2]
    assert fig.record["columns"] == [f"{s}: {names[s][:10]}" for s in range(3)]  # the picture's column headers


def test_project_a_real_image_and_use_its_latent_as_a_seed(idx_root, tmp_path, capsys):
    run = tmp_path / "run"
    ganforge.train(tiny_config(idx_root, steps=2), run)
    image = ganforge.load_dataset("fashion-mnist", str(idx_root), "test").images[0, 0].numpy()
    Image.fromarray(image).save(tmp_path / "real.png")
    out = tmp_path / "proj"
    assert main(["latent", "project", str(run), str(tmp_path / "real.png"), "--steps", "12", "--starts", "2",
                 "--out", str(out)]) == 0
    assert "Projected real.png" in capsys.readouterr().out
    record = json.loads((out / "project.json").read_text())
    assert record["history"][-1]["loss"] < record["history"][0]["loss"]  # the optimisation lowered the loss
    with np.load(out / "project.npz") as f:
        z = torch.from_numpy(f["z"])
    model = ganforge.load(run)
    fig = ganforge.latent.interpolate(model, [[str(out / "project.npz"), 3]], steps=4)
    assert torch.equal(fig.latents["grid"][0, 0], z)  # the path starts at the projected latent
    assert torch.equal(fig.images["grid"][0, 0], ganforge.latent.render(model, z[None])[0])
    again = ganforge.latent.regenerate(out / "project.json")  # the record redraws the same projection
    assert torch.equal(again.latents["projection"][0], z)
    assert main(["latent", "project", str(run), str(tmp_path / "missing.png"), "--out", str(tmp_path / "p2")]) == 2
    assert "does not exist or is not a file" in capsys.readouterr().err
