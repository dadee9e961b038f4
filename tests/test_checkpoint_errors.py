"""Damaged, mismatched and malicious checkpoints, and NaN losses: one GanforgeError, nothing lost."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ganforge
from conftest import make_idx_dataset, tiny_config
from ganforge.checkpoint import list_checkpoints
from ganforge.errors import GanforgeError
from ganforge.losses import LOSSES, GANLoss, bce_d_loss, nonsaturating_g_loss


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny run (6 steps, checkpoints at steps 3 and 6); tests work on copies of it."""
    base = tmp_path_factory.mktemp("ckpt")
    root = make_idx_dataset(base / "fmnist")
    run = base / "run"
    result = ganforge.train(tiny_config(root, device="cpu"), run)
    assert result.step == 6
    return run


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def latest(run: Path) -> Path:
    return run / "checkpoints" / "step_00000006"


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_intact_run_loads(run_dir):
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["step_00000003", "step_00000006"]
    model = ganforge.load(run_dir)
    assert model.step == 6 and model.name == "dcgan"
    assert model.sample(3, seed=0).shape == (3, 28, 28, 1)


@pytest.mark.parametrize("keep", [0.5, 0.999, 5])
def test_truncated_weights(run_dir, keep):
    weights = latest(run_dir) / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(GanforgeError, match="corrupt or truncated") as err:
        ganforge.load(run_dir)
    assert "step_00000006" in str(err.value)
    # the earlier checkpoint is untouched and still loads
    assert ganforge.load(run_dir, "3").step == 3


def test_resume_from_truncated_weights(run_dir):
    weights = latest(run_dir) / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(GanforgeError, match="corrupt or truncated"):
        ganforge.resume(run_dir, {"steps": 8})


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff\x13garbage\x80",  # not text
        b'{"format": "ganforge-checkpoint", "step": 6, "model": "dc',  # cut off while written
        b"[1, 2, 3]",  # JSON, but not an object
        b'{"step": 6, "model": "dcgan"}',  # no format marker
        b"",
    ],
)
def test_garbage_meta_json(run_dir, content):
    (latest(run_dir) / "meta.json").write_bytes(content)
    with pytest.raises(GanforgeError) as err:
        ganforge.load(run_dir)
    assert "step_00000006" in str(err.value)


def test_missing_meta_json(run_dir):
    (latest(run_dir) / "meta.json").unlink()
    with pytest.raises(GanforgeError, match="meta.json"):
        ganforge.load(run_dir)


@pytest.mark.parametrize(("field", "value"), [("model_options", "ngf=8"), ("config", "lr_g=1e-4")])
def test_meta_fields_of_the_wrong_type(run_dir, field, value):
    meta_path = latest(run_dir) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta[field] = value
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(GanforgeError):
        ganforge.load(run_dir)


def _edit_meta(run: Path, **changes) -> None:
    meta_path = latest(run) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))


def test_meta_naming_another_model(run_dir):
    _edit_meta(run_dir, model="gan")  # dcgan's options are unknown to gan: left out with a warning, then refused
    with pytest.raises(GanforgeError, match="'gan'"), pytest.warns(UserWarning, match="ngf of model 'gan'"):
        ganforge.load(run_dir)


def test_weights_that_do_not_fit_the_model_in_meta(run_dir):
    _edit_meta(run_dir, model="gan", model_options={"image_size": 28, "channels": 1, "nz": 16})
    with pytest.raises(GanforgeError, match="do not fit") as err:
        ganforge.load(run_dir)
    assert "step_00000006" in str(err.value)


def test_weights_that_do_not_fit_the_options_in_meta(run_dir):
    meta = json.loads((latest(run_dir) / "meta.json").read_text())
    _edit_meta(run_dir, model_options={**meta["model_options"], "ngf": 16})
    with pytest.raises(GanforgeError, match="do not fit") as err:
        ganforge.load(run_dir)
    assert "shape of" in str(err.value)


def _touch(path: str) -> dict:
    Path(path).write_text("code from a checkpoint ran")
    return {}


class _Payload:
    """Unpickling this calls _touch(path): a stand-in for arbitrary code in a malicious state.pt."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (_touch, (self.path,))


def test_the_payload_would_run_if_unpickled(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.is_file()


def test_state_with_pickled_code_is_refused_and_never_runs(run_dir, tmp_path):
    marker = tmp_path / "ran"
    state_path = latest(run_dir) / "state.pt"
    real_state = torch.load(state_path, weights_only=True)
    torch.save({**real_state, "evil": _Payload(marker)}, state_path)
    with pytest.raises(GanforgeError, match="state.pt") as err:
        ganforge.resume(run_dir, {"steps": 8})
    assert "corrupt" in str(err.value)
    assert not marker.exists()
    # sampling never reads state.pt at all
    assert ganforge.load(run_dir).step == 6
    assert not marker.exists()


def test_truncated_state_is_refused_by_resume(run_dir):
    state_path = latest(run_dir) / "state.pt"
    state_path.write_bytes(state_path.read_bytes()[:100])
    with pytest.raises(GanforgeError, match="state.pt.*missing or corrupt"):
        ganforge.resume(run_dir, {"steps": 8})


def test_diverging_learning_rate_stops_at_the_first_bad_step(idx_root, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(GanforgeError) as err:
        ganforge.train(tiny_config(idx_root, device="cpu", lr_d=1e30, ckpt_every=1), run)
    msg = str(err.value)
    assert "NaN or infinite at step 1 " in msg
    assert "no checkpoint had been written yet" in msg
    assert list_checkpoints(run / "checkpoints") == []


class _NanAfter:
    """bce_d_loss for the first ``good`` calls, NaN from then on."""

    def __init__(self, good: int) -> None:
        self.good = good
        self.calls = 0

    def __call__(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = bce_d_loss(real, fake)
        return loss * math.nan if self.calls > self.good else loss


@pytest.fixture
def nan_loss(monkeypatch) -> _NanAfter:
    """Registers loss 'nan-test' (D loss NaN from its 3rd call = step 3) for this test only."""
    monkeypatch.setattr(LOSSES, "_items", dict(LOSSES._items))
    d_loss = _NanAfter(good=2)
    LOSSES.register("nan-test", GANLoss("nan-test", d_loss, nonsaturating_g_loss))
    return d_loss


def test_nan_loss_names_the_step_and_keeps_the_last_checkpoint(idx_root, tmp_path, nan_loss):
    run = tmp_path / "run"
    with pytest.raises(GanforgeError) as err:
        ganforge.train(tiny_config(idx_root, device="cpu", loss="nan-test", ckpt_every=2), run)
    msg = str(err.value)
    assert "at step 3 " in msg
    assert "loss_D=nan" in msg
    assert "step_00000002" in msg
    assert nan_loss.calls == 3  # it stopped right at the bad step
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000002"]
    model = ganforge.load(run)
    assert model.step == 2
    for net in model.nets.values():
        assert all(torch.isfinite(p).all() for p in net.state_dict().values() if p.is_floating_point())


def test_nan_loss_leaves_the_earlier_checkpoints_bit_identical(idx_root, tmp_path, nan_loss):
    run = tmp_path / "run"
    ganforge.train(tiny_config(idx_root, device="cpu", loss="nan-test", steps=2, ckpt_every=1), run)
    ckpts = run / "checkpoints"
    before = tree_digest(ckpts)
    assert {k.split("/")[0] for k in before} == {"step_00000001", "step_00000002"}
    images_before = ganforge.load(run).sample(4, seed=1)

    with pytest.raises(GanforgeError, match="at step 3 ") as err:
        ganforge.resume(run, {"steps": 6})
    assert "step_00000002" in str(err.value)

    assert tree_digest(ckpts) == before
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000001", "step_00000002"]  # no temp folders
    model = ganforge.load(run)
    assert model.step == 2
    assert np.array_equal(model.sample(4, seed=1), images_before)


def test_a_pickled_module_given_for_weights_is_named_and_refused_without_running(tmp_path):
    from torch import nn

    from ganforge.style.weights import read_state_dict

    torch.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "net.pth")  # torch.save(net), not net.state_dict()
    said = (r"holds a pickled torch\.nn\.modules\.container\.Sequential object \(saved with torch\.save\(net\)\), "
            r"not a PyTorch state dict; it is refused on purpose, since loading a pickled module runs code from the "
            r"file; save the weights instead with torch\.save\(net\.state_dict\(\), path\)")
    with pytest.raises(GanforgeError, match=said):
        ganforge.load(tmp_path / "net.pth")
    with pytest.raises(GanforgeError, match="holds a pickled torch.nn.modules.container.Sequential object"):
        read_state_dict(tmp_path / "net.pth")  # the style networks' weights (--weights FILE)
