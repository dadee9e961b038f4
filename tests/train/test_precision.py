"""precision=auto: bf16 only on a CPU that computes in bf16 natively, recorded as the precision used; bf16 asked
for on a CPU that would emulate it warns. The CPU is stood in for by the probe, so the tests say the same on
every machine."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import ganforge
from conftest import tiny_config
from ganforge.cli import main
from ganforge.train import precision as precision_module
from ganforge.train.precision import resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(params=[True, False], ids=["native-bf16", "emulated-bf16"])
def native(request, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: request.param)
    return request.param


def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(native):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
        assert resolve_precision("auto", CUDA) == "fp32"  # no GPU has measured the presets in bf16
        assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("fp16", CUDA) == "fp16"
        assert resolve_precision("bf16", CUDA) == "bf16"
        if native:
            assert resolve_precision("bf16", CPU) == "bf16"
    if not native:
        with pytest.warns(UserWarning, match="bf16 is emulated.*use precision=auto or fp32"):
            assert resolve_precision("bf16", CPU) == "bf16"  # asked for: kept, with the reason not to


def test_the_probe_reads_pytorchs_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert precision_module.cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert precision_module.cpu_has_native_bf16() is True


def test_a_run_records_the_precision_it_used_and_trains_in_it(native, idx_root, tmp_path, monkeypatch):
    seen = []
    original = ganforge.tasks.gan.GANTask.loss

    def spy(self, phase, batch, nets):
        seen.append(nets["D"].main[0](batch["image"]).dtype)  # D's first convolution, under the trainer's autocast
        return original(self, phase, batch, nets)

    monkeypatch.setattr(ganforge.tasks.gan.GANTask, "loss", spy)
    ganforge.train(tiny_config(idx_root, steps=2, ckpt_every=2, precision="auto"), tmp_path / "run")
    used = "bf16" if native else "fp32"
    assert set(seen) == {torch.bfloat16 if native else torch.float32}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["precision"] == used
    meta = json.loads((tmp_path / "run/checkpoints/step_00000002/meta.json").read_text())
    assert meta["config"]["precision"] == used


def test_the_cpu_presets_and_the_command_line_take_auto(native, idx_root, tmp_path, capsys):
    for preset in ("fmnist-demo", "cgan-fmnist"):
        assert ganforge.resolve_config(preset).precision == "auto"
    rc = main(["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root), "--out", str(tmp_path / "r"),
               "--steps", "1", "--batch-size", "4", "--precision", "auto", "--no-progress", "model.ngf=4",
               "model.ndf=4", "model.nz=8", "n_samples=4"])
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert saved["precision"] == ("bf16" if native else "fp32")
