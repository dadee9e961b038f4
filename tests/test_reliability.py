"""Nothing a user owns is overwritten, no dead ends, one sentence instead of a traceback, survivable faults.

Each case of the reliability review: what was wrong, and the sentence (or behaviour) it has now."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from conftest import tiny_config, train_interrupted
from ganforge.checkpoint import list_checkpoints, load_checkpoint
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.models.dcgan import DCGANGenerator


def _one_sentence(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("ganforge: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _train_args(idx_root, out, *extra):
    return ["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root), "--out", str(out),
            "--steps", "2", "--batch-size", "8", "--no-progress", "model.ngf=4", "model.ndf=4", "model.nz=8",
            *extra]


# ----------------------------------------------------------------------------- data loss
def test_a_folder_of_the_users_own_files_is_never_written_into(idx_root, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "losses.png").write_bytes(b"my own picture")
    (mine / "samples.png").write_bytes(b"another")
    rc = main(_train_args(idx_root, mine))
    _one_sentence(capsys, rc, str(mine), "already holds files of its own", "new or empty folder")
    assert sorted(p.name for p in mine.iterdir()) == ["losses.png", "samples.png"]
    assert (mine / "losses.png").read_bytes() == b"my own picture"


def test_the_training_data_folder_is_never_the_run_folder(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(photos / f"p{i}.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    args = ["train", "dcgan", "--data", str(photos), "--steps", "1", "--no-progress", "image_size=16"]
    _one_sentence(capsys, main([*args, "--out", str(photos)]), "already holds files of its own")
    _one_sentence(capsys, main([*args, "--out", str(photos / "run")]), "inside the training data folder")
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_a_checkpoint_is_only_written_when_its_weights_are_finite(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=6, ckpt_every=2)
    from ganforge.train.run import build_run

    r = build_run(cfg, tmp_path / "run")

    def poison(step):
        if step == 4:  # after the step (its loss finite), before its checkpoint
            with torch.no_grad():
                next(r.trainer.raw["G"].parameters()).view(-1)[0] = float("nan")

    r.trainer.events.subscribe("on_step", poison)
    with pytest.raises(GanforgeError, match=r"hold NaN or infinite values at step 4.*no checkpoint was written"
                                            r".*step_00000002 \(step 2\)"):
        r.fit()
    r.close()
    assert [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")] == ["step_00000002"]
    weights = load_checkpoint(tmp_path / "run").weights["G"]
    assert all(bool(torch.isfinite(v).all()) for v in weights.values() if v.is_floating_point())


def test_a_full_disk_names_the_folder_removes_its_temporary_files_and_keeps_the_last_checkpoint(
        idx_root, tmp_path, monkeypatch):
    import ganforge.checkpoint as ck

    real = ck.save_file
    calls = []

    def full(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(ck, "save_file", full)
    with pytest.raises(GanforgeError) as err:
        ganforge.train(tiny_config(idx_root, steps=6, ckpt_every=3), tmp_path / "run")
    msg = str(err.value)
    assert "No space left on device" in msg and str(tmp_path / "run" / "checkpoints") in msg
    assert "step_00000003" in msg and "is kept" in msg
    root = tmp_path / "run/checkpoints"
    assert [p.name for p in root.iterdir()] == ["step_00000003"]  # no .tmp-* folder holds the space
    assert ganforge.load(tmp_path / "run").step == 3


def test_a_stale_temporary_folder_of_a_killed_writer_is_removed_on_resume(idx_root, tmp_path, monkeypatch):
    cfg = tiny_config(idx_root, steps=6, ckpt_every=3)
    train_interrupted(cfg, tmp_path / "run", stop_at=4, monkeypatch=monkeypatch)
    dead = tmp_path / "run/checkpoints/.tmp-step_00000006-999999999"  # no process has this pid
    dead.mkdir()
    (dead / "weights.safetensors").write_bytes(b"half")
    ganforge.resume(tmp_path / "run")
    assert not dead.exists()


# ----------------------------------------------------------------------------- dead ends
def test_a_run_stopped_before_its_first_checkpoint_can_be_resumed_from_step_0(idx_root, tmp_path, monkeypatch,
                                                                              capsys):
    cfg = tiny_config(idx_root, steps=4, ckpt_every=0)
    train_interrupted(cfg, tmp_path / "run", stop_at=1, monkeypatch=monkeypatch)
    assert (tmp_path / "run/config.json").is_file() and not list_checkpoints(tmp_path / "run/checkpoints")
    # (a new run there replaces it instead: test_a_new_run_replaces_one_that_stopped_before_its_first_checkpoint)
    assert main(["train", "--resume", str(tmp_path / "run")]) == 0
    assert "training it again from step 0" in capsys.readouterr().err
    assert ganforge.load(tmp_path / "run").step == 4
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # the first attempt's rows are gone


def test_resume_applies_the_settings_that_may_change_and_refuses_the_others(idx_root, tmp_path, capsys, monkeypatch):
    from ganforge.train import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # no emulation warning
    assert main(_train_args(idx_root, tmp_path / "run")) == 0
    capsys.readouterr()
    for flag, value in (("--batch-size", "2"), ("--seed", "7")):
        rc = main(["train", "--resume", str(tmp_path / "run"), flag, value])
        key = flag[2:].replace("-", "_")
        _one_sentence(capsys, rc, f"Cannot change {key} with --resume", "start a new run")
    rc = main(["train", "--resume", str(tmp_path / "run"), "loss=hinge"])
    _one_sentence(capsys, rc, "Cannot change loss with --resume (the run has loss='nonsaturating')")
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "3", "--precision", "bf16",
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "resuming with steps 3 (was 2), precision 'bf16' (was 'fp32')" in err
    saved = json.loads((tmp_path / "run/checkpoints/step_00000003/meta.json").read_text())["config"]
    assert saved["precision"] == "bf16" and saved["steps"] == 3


# ----------------------------------------------------------------------------- one sentence, nothing written
@pytest.mark.parametrize(("extra", "needles"), [
    (["--epochs", "inf"], ["epochs", "finite", "inf"]),
    (["image_size=28.5"], ["image_size", "28.5", "integer"]),
    (["model.ngf=abc"], ["ngf", "'abc'", "integer"]),
    (["model.ngf=32.5"], ["ngf", "32.5", "integer"]),
    (["lr_decay_start=abc"], ["lr_decay_start", "'abc'"]),
    (["--seed", "abc"], ["--seed", "'abc'"]),
    (["--device", "meta"], ["'meta'", "cpu"]),
    (["--precision", "fp64"], ["--precision", "'fp64'", "fp32"]),
])
def test_bad_values_are_one_sentence_and_write_nothing(idx_root, tmp_path, capsys, extra, needles):
    out = tmp_path / "run"
    args = _train_args(idx_root, out)
    if extra[0] == "--epochs":
        args[args.index("--steps"):args.index("--steps") + 2] = []
    _one_sentence(capsys, main([*args, *extra]), *needles)
    assert not out.exists()


def test_out_at_a_file_under_a_file_or_in_a_read_only_folder(idx_root, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    _one_sentence(capsys, main(_train_args(idx_root, a_file)), "is a file")
    _one_sentence(capsys, main(_train_args(idx_root, a_file / "run")), "which is a file, not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    _one_sentence(capsys, main(_train_args(idx_root, locked / "run")), "read-only")
    assert a_file.read_text() == "mine" and not any(locked.iterdir())


def test_info_takes_the_train_option_syntax_and_bad_values_are_one_sentence(capsys):
    assert main(["info", "dcgan", "model.arch=tutorial", "image_size=28", "channels=1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"G": 2305472, "D": 212865}
    _one_sentence(capsys, main(["info", "dcgan", "ngf=abc"]), "ngf", "'abc'")
    _one_sentence(capsys, main(["info", "dcgan", "--ngf", "abc"]), "--ngf")


def test_sample_bad_outputs_are_one_sentence_and_leave_no_temporary_file(idx_root, tmp_path, capsys, monkeypatch):
    ganforge.train(tiny_config(idx_root, steps=1), tmp_path / "run")
    _one_sentence(capsys, main(["sample", str(tmp_path / "run"), "--nrow", "-3", "--out", str(tmp_path / "g.png")]),
                  "--nrow", "-3")
    folder = tmp_path / "pics"
    folder.mkdir()
    _one_sentence(capsys, main(["sample", str(tmp_path / "run"), "--out", str(folder)]), "must end in .png or .npz")
    named = tmp_path / "pics.png"
    named.mkdir()
    _one_sentence(capsys, main(["sample", str(tmp_path / "run"), "--out", str(named)]), "is a folder")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(folder) else real_access(p, mode))
    _one_sentence(capsys, main(["sample", str(tmp_path / "run"), "--out", str(folder / "g.png")]), "read-only")
    assert not any(folder.iterdir()) and not any(named.iterdir())


# ----------------------------------------------------------------------------- wrong or misleading answers
def test_fid_from_fewer_images_than_feature_dimensions_is_flagged_and_not_recorded(idx_root, tmp_path, capsys):
    ganforge.train(tiny_config(idx_root, steps=1), tmp_path / "run")
    before = (tmp_path / "run/metrics.jsonl").read_text()
    assert main(["eval", str(tmp_path / "run"), "--n", "5", "--data-root", str(idx_root), "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["fid_reliable"] is False and "unreliable" in result["warning"]
    assert "unreliable" in err and len([line for line in err.splitlines() if "ganforge:" in line]) == 1
    assert (tmp_path / "run/metrics.jsonl").read_text() == before


def test_eval_of_a_pix2pix_run_points_to_translate(idx_root, tmp_path, capsys):
    cfg = ganforge.resolve_config(flags={"model": "pix2pix", "data": "edges2fashion", "data_root": str(idx_root),
                                         "image_size": 32, "steps": 1, "batch_size": 2, "progress": False,
                                         "model_options": {"netG": "unet_32", "ngf": 4, "ndf": 4}})
    ganforge.train(cfg, tmp_path / "p")
    _one_sentence(capsys, main(["eval", str(tmp_path / "p")]), "ganforge translate", "--split test")


def test_a_missing_dataset_offline_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    rc = main(["train", "dcgan", "--data", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "r")])
    _one_sentence(capsys, rc, "--data-root", "unset GANFORGE_OFFLINE")
    from ganforge.data import idx

    monkeypatch.setattr(idx, "_find", lambda *a: None)  # as on a machine without the Debian package
    with pytest.raises(GanforgeError, match="apt-get install dataset-fashion-mnist"):
        idx.load_idx_dataset("fashion-mnist", str(tmp_path), "train", idx.FASHION_CLASSES)
    assert not (tmp_path / "r").exists()


def test_a_pytorch_examples_generator_file_samples_and_walks_the_latent_space(tmp_path, capsys):
    torch.manual_seed(0)
    G = DCGANGenerator(image_size=32, channels=3, nz=16, ngf=8)
    state = {f"module.{k}": v for k, v in G.state_dict().items()}  # saved from DataParallel, as users have them
    torch.save(state, tmp_path / "netG_epoch_24.pth")
    assert main(["sample", str(tmp_path / "netG_epoch_24.pth"), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    with Image.open(tmp_path / "s.png") as im:
        assert im.mode == "RGB"
    model = ganforge.load(tmp_path / "netG_epoch_24.pth")
    assert (model.nz, model.model_cfg.ngf, model.model_cfg.channels, model.model_cfg.image_size) == (16, 8, 3, 32)
    z = model.fixed_inputs(2, 0)
    with torch.no_grad():
        torch.testing.assert_close(model.generate(z), G.eval()(z["z"]))
    assert main(["latent", "interpolate", str(tmp_path / "netG_epoch_24.pth"), "--seeds", "1,2", "--steps", "3",
                 "--out", str(tmp_path / "lat")]) == 0
    assert (tmp_path / "lat/interpolate.png").is_file()


# ----------------------------------------------------------------------------- faults that stay survived
def test_a_reference_file_with_a_code_payload_is_refused_without_running(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"main.0.weight": Payload()}, tmp_path / "netG_evil.pth")
    _one_sentence(capsys, main(["sample", str(tmp_path / "netG_evil.pth"), "--out", str(tmp_path / "s.png")]),
                  "Could not read")
    assert not marker.exists()


def test_decompression_bombs_symlink_loops_and_non_utf8_names_in_an_image_folder(tmp_path):
    from ganforge.data import load_dataset

    root = tmp_path / "imgs"
    cls = root / "shirts"  # a class folder, so the loop below sits where the loader walks
    cls.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(cls / f"ok{i}.png")
    old = Image.MAX_IMAGE_PIXELS
    Image.new("L", (300, 300)).save(cls / "bomb.png")  # > 2 x MAX_IMAGE_PIXELS once the limit is lowered
    (cls / "loop").symlink_to(cls, target_is_directory=True)  # a folder that contains itself
    os.rename(cls / "ok2.png", os.fsencode(str(cls)) + b"/\xff\xfe.png")  # a name that is not valid UTF-8
    Image.MAX_IMAGE_PIXELS = 100 * 100 // 2
    try:
        with pytest.warns(UserWarning, match=r"Skipped 1 unreadable image file in .*bomb.png"):
            data = load_dataset(str(root), image_size=8)
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert len(data) == 3 and data.class_names == ["shirts"]  # ok0, ok1 and the non-UTF-8 one; the loop not followed


def test_a_new_run_replaces_one_that_stopped_before_its_first_checkpoint(idx_root, tmp_path, capsys):
    """The natural retry after a run that diverged at step 1: the same --out with a sane learning rate."""
    out = tmp_path / "nan0"
    args = ["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root), "--out", str(out),
            "--steps", "4", "--batch-size", "16", "--no-progress", "model.ngf=8", "model.ndf=8", "model.nz=16"]
    assert main(args + ["lr_g=1e30", "lr_d=1e30"]) == 2
    assert "NaN" in capsys.readouterr().err and not list_checkpoints(out / "checkpoints")
    assert (out / "config.json").is_file() and (out / "metrics.jsonl").is_file()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint; this new run replaces its logs" in err
    assert json.loads((out / "config.json").read_text())["config"]["lr_g"] == 2e-4
    assert [c.name for c in list_checkpoints(out / "checkpoints")][-1] == "step_00000004"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r.get("loss_G", 0.0)) for r in rows)  # the failed attempt's rows are gone

    # beside files of the user's own, nothing is replaced: one sentence, and the files stay
    mixed = tmp_path / "mixed"
    assert main(args[:7] + [str(mixed)] + args[8:] + ["lr_g=1e30", "lr_d=1e30"]) == 2
    (mixed / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(args[:7] + [str(mixed)] + args[8:]) == 2
    assert "not its own (notes.txt); choose another --out" in capsys.readouterr().err
    assert (mixed / "notes.txt").read_text() == "mine" and (mixed / "metrics.jsonl").is_file()
