"""Checkpoints written by the first release (0.1, flat training config, no "pipeline" entry) still load,
sample the same images and resume; unknown keys in a saved config are a warning, not a refusal; loading
builds no training task and no training config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ganforge
from ganforge import config as config_module
from ganforge.tasks import Task

FIXTURES = Path(__file__).parent / "fixtures" / "v0_1"


def _run_from_fixture(tmp_path: Path, name: str) -> Path:
    run = tmp_path / name
    shutil.copytree(FIXTURES / f"{name}_step2", run / "checkpoints" / "step_00000002")
    return run


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_first_release_checkpoints_sample_the_same_images(name, tmp_path):
    model = ganforge.load(_run_from_fixture(tmp_path, name))
    expected = np.load(FIXTURES / f"{name}_samples_seed3.npy")
    got = model.sample(10, seed=3)
    assert got.shape == expected.shape
    # the same weights through the same layers: at most one grey level apart (rounding of the last float bit)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    if name == "cgan":
        assert model.num_classes == 10 and model.class_names[0] == "T-shirt/top"
        assert model.class_index("sandal") == 5


def test_loading_builds_no_task_and_no_train_config(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ganforge.load must not build a training task or config")

    monkeypatch.setattr(Task, "__init__", refuse)
    monkeypatch.setattr(config_module.TrainConfig, "__init__", refuse)
    model = ganforge.load(_run_from_fixture(tmp_path, "dcgan"))
    assert model.sample(2, seed=0).shape == (2, 28, 28, 1)


def test_unknown_keys_in_a_saved_checkpoint_are_a_warning(tmp_path):
    run = _run_from_fixture(tmp_path, "dcgan")
    meta_path = run / "checkpoints/step_00000002/meta.json"
    meta = json.loads(meta_path.read_text())
    meta["model_options"]["from_the_future"] = 3
    meta["config"]["also_new"] = True
    meta["pipeline"] = {"kind": "noise", "class_names": [], "new_setting": 1}
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="from_the_future"):
        model = ganforge.load(run)
    assert model.sample(1).shape == (1, 28, 28, 1)


def test_first_release_run_resumes_with_its_flat_config(tmp_path, idx_root):
    run = _run_from_fixture(tmp_path, "dcgan")
    meta = json.loads((run / "checkpoints/step_00000002/meta.json").read_text())
    assert meta["config"]["loss"] == "nonsaturating" and isinstance(meta["config"]["data"], str)  # the old layout
    # the fixture was trained on the real Fashion-MNIST; point the resumed run at the tests' tiny copy
    meta["config"]["data_root"] = str(idx_root)
    (run / "checkpoints/step_00000002/meta.json").write_text(json.dumps(meta))
    result = ganforge.resume(run, {"steps": 3})
    assert result.step == 3
    saved = json.loads((run / "checkpoints/step_00000003/meta.json").read_text())
    assert saved["config"]["task_options"]["loss"] == "nonsaturating"
    assert saved["config"]["data"]["root"] == str(idx_root) and saved["pipeline"]["kind"] == "noise"


def test_first_release_pix2pix_meta_gives_the_batch_size_mode(tmp_path, idx_root):
    # a fresh tiny pix2pix run, its meta.json replaced by one the first release wrote (same options)
    old = json.loads((FIXTURES / "pix2pix_meta.json").read_text())
    cfg = ganforge.resolve_config(flags={
        "model": "pix2pix", "data": "edges2fashion", "data_root": str(idx_root), "image_size": 32, "batch_size": 2,
        "steps": 1, "progress": False, "model_options": {k: old["model_options"][k] for k in
                                                         ("netG", "ngf", "ndf", "n_layers_D")}})
    ganforge.train(cfg, tmp_path / "p")
    ckpt = tmp_path / "p/checkpoints/step_00000001"
    (ckpt / "meta.json").write_text(json.dumps(old))
    model = ganforge.load(tmp_path / "p")
    assert model.kind == "translation" and model.mode == "eval"  # trained with batch 2
    old["config"]["batch_size"] = 1
    (ckpt / "meta.json").write_text(json.dumps(old))
    assert ganforge.load(tmp_path / "p").mode == "reference"
    out = model.translate(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    assert out.shape == (1, 1, 32, 32)
