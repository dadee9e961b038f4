"""The command line in-process: exit code 2 and one sentence naming the bad value; a tiny happy path."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_idx_dataset
from ganforge.cli import main
from ganforge.config import load_preset
from ganforge.data import idx

TINY = ["--batch-size", "16", "--device", "cpu", "model.ngf=8", "model.ndf=8", "model.nz=16", "--no-progress"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, run folder) of one tiny training through the command line."""
    base = tmp_path_factory.mktemp("cli")
    root = make_idx_dataset(base / "fmnist")
    run = base / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_OFFLINE", "1")
        rc = main(["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(root), "--out", str(run),
                   "--steps", "4", "--batch-size", "16", "model.ngf=8", "model.ndf=8", "model.nz=16",
                   "--no-progress", "sample_every=2", "--device", "cpu"])
    assert rc == 0
    return root, run


def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def cli_error(capsys, *args) -> str:
    """Run a command that must fail as a user's mistake; return its one-line message."""
    rc, out, err = cli(capsys, *args)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ganforge: error: ")
    assert "Traceback" not in err
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(root), "--out", str(out),
            "--steps", "2", *TINY, *extra]


# ------------------------------------------------------------------ train: mistakes


@pytest.mark.parametrize("position, typo, meant", [(1, "dcgna", "dcgan"), (3, "fashion-mnst", "fashion-mnist")])
def test_unknown_model_or_dataset(capsys, idx_root, tmp_path, position, typo, meant):
    out = tmp_path / "run"
    args = train_args(idx_root, out)
    args[position] = typo
    msg = cli_error(capsys, *args)
    assert f"'{typo}'" in msg and meant in msg
    assert not out.exists()


def test_unknown_key_value_option(capsys, idx_root, tmp_path):
    msg = cli_error(capsys, *train_args(idx_root, tmp_path / "run", "lrg=1e-3"))
    assert "'lrg'" in msg
    assert not (tmp_path / "run").exists()


def test_unknown_model_option(capsys, idx_root, tmp_path):
    msg = cli_error(capsys, *train_args(idx_root, tmp_path / "run", "model.width=3"))
    assert "'width'" in msg and "dcgan" in msg


def test_negative_learning_rate(capsys, idx_root, tmp_path):
    msg = cli_error(capsys, *train_args(idx_root, tmp_path / "run", "lr_g=-0.001"))
    assert "lr_g" in msg and "-0.001" in msg
    assert not (tmp_path / "run").exists()


def test_negative_steps(capsys, idx_root, tmp_path):
    args = train_args(idx_root, tmp_path / "run")
    args[args.index("--steps") + 1] = "-3"
    msg = cli_error(capsys, *args)
    assert "steps" in msg and "-3" in msg


def test_batch_larger_than_the_dataset(capsys, idx_root, tmp_path):
    args = train_args(idx_root, tmp_path / "run")
    args[args.index("--batch-size") + 1] = "1000"
    msg = cli_error(capsys, *args)
    assert "1000" in msg and "256 images" in msg
    assert not (tmp_path / "run").exists()


def test_mode_seeking_with_a_batch_of_one_is_refused_before_anything_is_written(capsys, idx_root, tmp_path):
    args = train_args(idx_root, tmp_path / "run", "task.mode_seeking=0.3")
    args[args.index("--batch-size") + 1] = "1"
    msg = cli_error(capsys, *args)
    assert "the batch holds 1 image; use batch_size=2 or more" in msg
    assert not (tmp_path / "run").exists()


def test_another_model_with_a_preset_trains_and_says_once_what_it_left_out(capsys, idx_root, tmp_path):
    rc, out, err = cli(capsys, "train", "dcgan", "--config", "fmnist-demo", "--data-root", idx_root,
                       "--out", tmp_path / "run", "--steps", "1", *TINY)
    assert rc == 0, err
    said = [line for line in err.splitlines() if "left out" in line]
    assert len(said) == 1 and said[0].startswith("ganforge: warning: the preset 'fmnist-demo' is for model 'cgan'")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "dcgan" and "clusters" not in config["model_options"]
    assert config["model_options"]["ngf"] == 8 and config["config"]["batch_size"] == 16
    assert config["config"]["lr_g"] == load_preset("fmnist-demo")["lr_g"]  # the rest of the recipe stays


def test_missing_data_hints_at_the_debian_package(capsys, tmp_path, monkeypatch):
    # this machine may have /usr/share/datasets/fashion-mnist installed; look only in the empty folder
    original = idx._candidate_dirs
    monkeypatch.setattr(idx, "_candidate_dirs", lambda name, root: [
        d for d in original(name, root) if not str(d).startswith("/usr/share/datasets")])
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = cli_error(capsys, *train_args(empty, tmp_path / "run"))
    assert "fashion-mnist" in msg and "train-images-idx3-ubyte" in msg
    assert "dataset-fashion-mnist" in msg
    assert not (tmp_path / "run").exists()


def test_wrong_image_size_for_the_model(capsys, idx_root, tmp_path):
    msg = cli_error(capsys, *train_args(idx_root, tmp_path / "run", "image_size=30"))
    assert "30" in msg and "dcgan" in msg
    assert not (tmp_path / "run").exists()


def test_out_pointing_at_an_existing_run_is_refused_and_left_intact(capsys, cli_run, tmp_path):
    root, run = cli_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = tree_digest(copy)
    assert "config.json" in before and "checkpoints/step_00000004/weights.safetensors" in before
    msg = cli_error(capsys, *train_args(root, copy))
    assert str(copy) in msg and "--resume" in msg
    assert tree_digest(copy) == before


def test_fp16_on_cpu(capsys, idx_root, tmp_path):
    msg = cli_error(capsys, *train_args(idx_root, tmp_path / "run", "--precision", "fp16"))
    assert "fp16" in msg and "CUDA" in msg


def test_refused_fp16_run_does_not_block_its_out_folder(capsys, idx_root, tmp_path):
    out = tmp_path / "run"
    cli_error(capsys, *train_args(idx_root, out, "--precision", "fp16"))
    # nothing was trained, so the same --out must still be free for the corrected command
    assert not (out / "config.json").exists()
    rc, stdout, err = cli(capsys, *train_args(idx_root, out, "--precision", "fp32"))
    assert rc == 0, err
    assert "step 2" in stdout


def test_resume_with_other_settings_is_refused(capsys, cli_run):
    _, run = cli_run
    msg = cli_error(capsys, "train", "--resume", run, "loss=hinge")
    assert "--resume" in msg


# ------------------------------------------------------------------ sample / info: mistakes


def test_sample_to_an_unknown_file_type(capsys, cli_run, tmp_path):
    _, run = cli_run
    msg = cli_error(capsys, "sample", run, "--out", tmp_path / "file.txt")
    assert "file.txt" in msg and ".png" in msg and ".npz" in msg
    assert not (tmp_path / "file.txt").exists()


def test_sample_from_a_folder_that_is_not_a_run(capsys, tmp_path):
    (tmp_path / "notes").mkdir()
    msg = cli_error(capsys, "sample", tmp_path / "notes", "--out", tmp_path / "x.png")
    assert str(tmp_path / "notes") in msg and "no checkpoint" in msg
    msg = cli_error(capsys, "sample", tmp_path / "missing", "--out", tmp_path / "x.png")
    assert str(tmp_path / "missing") in msg
    assert not (tmp_path / "x.png").exists()


def test_sample_from_a_step_that_was_not_saved(capsys, cli_run, tmp_path):
    _, run = cli_run
    msg = cli_error(capsys, "sample", run, "--ckpt", "3", "--out", tmp_path / "x.npz")
    assert "step 3" in msg and "it has: 4" in msg


def test_sample_ema_from_a_run_without_ema(capsys, cli_run, tmp_path):
    _, run = cli_run
    msg = cli_error(capsys, "sample", run, "--ema", "--out", tmp_path / "x.npz")
    assert "EMA" in msg and "--no-ema" in msg


def test_sample_zero_images(capsys, cli_run, tmp_path):
    _, run = cli_run
    msg = cli_error(capsys, "sample", run, "--n", "0", "--out", tmp_path / "x.npz")
    assert "got 0" in msg


def test_info_prints_the_exact_counts(capsys):
    rc, out, err = cli(capsys, "info", "dcgan", "--image-size", "64", "--channels", "3")
    assert rc == 0, err
    assert out == '{"G": 3576704, "D": 2765568}\n'
    assert json.loads(out) == {"G": 3576704, "D": 2765568}


def test_info_with_model_options(capsys):
    rc, out, _ = cli(capsys, "info", "dcgan", "--image-size", "28", "--channels", "1", "arch=tutorial")
    assert rc == 0
    assert json.loads(out) == {"G": 2305472, "D": 212865}


def test_info_unknown_option_and_model(capsys):
    msg = cli_error(capsys, "info", "dcgan", "ngff=3")
    assert "'ngff'" in msg
    msg = cli_error(capsys, "info", "stylegan")
    assert "'stylegan'" in msg and "dcgan" in msg


# ------------------------------------------------------------------ help


def _help(capsys, *args) -> str:
    assert main(list(args)) == 0  # --help: main returns the exit status argparse gives
    return capsys.readouterr().out


@pytest.mark.parametrize("args", [("--help",), ("train", "--help")])
def test_help_lists_models_and_datasets(capsys, args):
    text = _help(capsys, *args)
    assert re.search(r"^\s+dcgan\s", text, re.MULTILINE)
    assert re.search(r"^\s+gan\s", text, re.MULTILINE)
    datasets = re.search(r"^datasets:\s*(.*)$", text, re.MULTILINE)
    assert datasets is not None
    names = [n.strip() for n in datasets.group(1).split(",")]
    assert "fashion-mnist" in names and "mnist" in names
    assert "nonsaturating" in text and "wgan-gp" in text
    assert "fmnist-demo" in text


def test_no_command_prints_help_and_fails(capsys):
    rc, out, _ = cli(capsys)
    assert rc == 2
    assert "usage: ganforge" in out


def test_unrecognised_flag_is_one_sentence(capsys):
    assert main(["sample", "run", "--out", "x.png", "steps=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "steps=3" in err and len(err.splitlines()) == 1 and err.startswith("ganforge: error: ")


# ------------------------------------------------------------------ happy path


def test_train_through_the_cli_writes_a_run(cli_run):
    _, run = cli_run
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["steps"] == 4
    assert saved["config"]["batch_size"] == 16
    assert saved["config"]["sample_every"] == 2  # the key=value after the flags was applied
    assert saved["config"]["progress"] is False
    assert saved["model_options"]["ngf"] == 8 and saved["model_options"]["nz"] == 16
    assert saved["model_options"]["image_size"] == 28 and saved["model_options"]["channels"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000004"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000000.png", "step_00000002.png", "step_00000004.png"]
    for name in ("samples.png", "real_samples.png", "losses.png", "progress.gif", "metrics.jsonl"):
        assert (run / name).is_file(), name


def _npz(capsys, run: Path, out: Path, *extra) -> np.ndarray:
    rc, stdout, err = cli(capsys, "sample", run, "--n", "10", "--out", out, *extra)
    assert rc == 0, err
    assert "10 samples from step 4" in stdout
    with np.load(out) as f:
        return f["images"]


def test_sample_npz_is_reproducible(capsys, cli_run, tmp_path):
    _, run = cli_run
    a = _npz(capsys, run, tmp_path / "a.npz", "--seed", "3")
    b = _npz(capsys, run, tmp_path / "b.npz", "--seed", "3")
    c = _npz(capsys, run, tmp_path / "c.npz", "--seed", "4")
    assert a.dtype == np.uint8
    assert a.shape == (10, 28, 28, 1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a)) > 1  # not a constant
    with np.load(tmp_path / "a.npz") as f:
        assert int(f["seed"]) == 3 and int(f["step"]) == 4


def test_sample_png_grid(capsys, cli_run, tmp_path):
    _, run = cli_run
    out = tmp_path / "sub" / "grid.png"
    rc, _, err = cli(capsys, "sample", run, "--n", "10", "--out", out)
    assert rc == 0, err
    with Image.open(out) as im:
        assert im.format == "PNG"
        im.load()
        assert im.width >= 4 * 28 and im.height >= 3 * 28


# ------------------------------------------------------------------ wording of settings and of files
@pytest.mark.parametrize("setting, said", [
    ("steps=abc", "steps must be an integer (a whole number such as 500), got 'abc'."),
    ("lr_g=fast", "lr_g must be a number (such as 0.0002, 2e-4 or 1), got 'fast'."),
    ("channels_last=maybe", "channels_last must be true or false (a yes/no setting), got 'maybe'."),
    ("eval_extractor=[1, 2]", "eval_extractor must be text (a name or a path such as 'fashion-mnist'), got [1, 2]."),
])
def test_a_setting_of_the_wrong_type_names_what_is_accepted(capsys, idx_root, tmp_path, setting, said):
    line = cli_error(capsys, *train_args(idx_root, tmp_path / "r", setting))
    assert line == f"ganforge: error: {said}"
    assert not (tmp_path / "r").exists()


def _reference_generator(path: Path) -> Path:
    """A state dict as pytorch/examples' dcgan/main.py saves it (netG_epoch_N.pth): no step anywhere."""
    import torch

    from ganforge.models.dcgan import DCGANGenerator

    torch.save(DCGANGenerator(image_size=32, channels=3, nz=16, ngf=8).state_dict(), path)
    return path


def test_sample_and_latent_say_what_a_reference_state_dict_is(capsys, tmp_path):
    ref = _reference_generator(tmp_path / "netG_epoch_300.pth")
    rc, out, err = cli(capsys, "sample", ref, "--n", "4", "--out", tmp_path / "grid.png")
    assert rc == 0, err
    said = "netG_epoch_300.pth, a reference state dict of pytorch/examples' DCGAN without a training step"
    assert out.strip() == f"Wrote 4 samples from {said} to {tmp_path / 'grid.png'}"
    rc, out, err = cli(capsys, "latent", "interpolate", ref, "--seeds", "1,2", "--steps", "2", "--out",
                       tmp_path / "lat")
    assert rc == 0, err
    assert f"({said}, raw weights)" in out and "None" not in out


def test_a_pickled_module_is_named_and_refused_on_purpose(capsys, tmp_path):
    import torch

    from ganforge.models.dcgan import DCGANGenerator

    torch.save(DCGANGenerator(image_size=32, channels=3, nz=16, ngf=8), tmp_path / "netG.pth")  # the whole module
    line = cli_error(capsys, "sample", tmp_path / "netG.pth", "--out", tmp_path / "grid.png")
    assert "holds a pickled ganforge.models.dcgan.DCGANGenerator object (saved with torch.save(net))" in line
    assert "refused on purpose, since loading a pickled module runs code from the file" in line
    assert "torch.save(net.state_dict(), path)" in line
    assert "incomplete" not in line and not (tmp_path / "grid.png").exists()
