"""benchmarks/gpu_check.py's CPU fallback: every section runs at tiny sizes, as the GPU machine would run it
(``python benchmarks/gpu_check.py``, in its own process), and its table and JSON say what ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
DEMO_VARIANTS = ("plain_fp32", "plain_bf16", "fp32", "bf16", "fp16_amp", "bf16_channels_last", "bf16_compile")


def test_gpu_check_cpu_fallback(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the CPU path, also on a machine with a GPU
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)], cwd=SCRIPT.parents[1],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    assert "no CUDA: the CPU fallback at tiny sizes" in text
    for section in ("demo", "pix2pix", "ddp", "sync_bn", "summary"):
        assert f"== {section} ==" in text
    lines = text.splitlines()
    assert any(line.split()[:1] == ["fp16_amp"] and line.endswith("n/a (needs CUDA)") for line in lines)
    assert "DDP weights equal on both ranks: yes (gloo on the CPU, 2 steps, 0 of " in text
    assert "sync_bn: not run: it needs 2 GPUs" in text

    report = json.loads(out.read_text())
    assert report["env"]["cuda"] is False and report["quick"] is True
    results = report["results"]
    assert set(results) == {"demo", "pix2pix", "ddp", "sync_bn"}
    assert not any("error" in r for r in results.values())

    demo = results["demo"]
    assert demo["preset"] == "fmnist-demo" and demo["plain_networks_match"] is True
    rows = demo["variants"]
    assert tuple(rows) == DEMO_VARIANTS
    assert rows["fp16_amp"] == {"status": "n/a (needs CUDA)"}
    assert rows["bf16_compile"]["status"].startswith("skipped on the CPU")
    assert rows["fp32"]["over_fp32"] == 1.0
    for name in ("plain_fp32", "plain_bf16", "fp32", "bf16", "bf16_channels_last"):
        row = rows[name]
        assert row["images_per_s"] > 0
        assert abs(row["over_fp32"] - row["images_per_s"] / rows["fp32"]["images_per_s"]) < 1e-9
        assert abs(row["ms_per_step"] - 1000 * demo["batch_size"] / row["images_per_s"]) < 1e-6
    assert "over_bf16" in rows["bf16_channels_last"]

    runs = results["pix2pix"]["runs"]
    assert [(r["netG"], r["image_size"], r["batch_size"]) for r in runs] == [("unet_32", 32, 1), ("unet_32", 32, 2)]
    for r in runs:
        ratio = r["images_per_s"]["ganforge"] / r["images_per_s"]["plain"]
        assert abs(r["ganforge_over_plain"] - ratio) < 1e-9

    ddp = results["ddp"]
    assert ddp["backend"] == "gloo" and ddp["ran"] == "gloo on the CPU" and ddp["devices"] == ["cpu", "cpu"]
    assert ddp["equal"] is True and ddp["unequal"] == [] and ddp["max_difference"] == 0.0
    assert ddp["tensors"] > 10 and ddp["moved_from_start"] > 0  # every weight and buffer of G and D, trained
    assert ddp["losses"][0] != ddp["losses"][1]  # each rank trained on its own batches

    assert results["sync_bn"]["ran"] is False
