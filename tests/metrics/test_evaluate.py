"""The evaluate entry point: sources, references, caching, protocol, the training hook, the CLI, errors.

A small extractor registered here ("test-pixels") also tests the extension point for user extractors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganforge
from conftest import tiny_config
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.metrics import EXTRACTORS, FeatureExtractor, evaluate
from ganforge.metrics.evaluation import Features, class_coverage, compute_metrics


class PixelFeatures(FeatureExtractor):
    """4x4 average-pooled grayscale pixels as features; a fixed random linear map as 10-way logits."""

    name = "test-pixels"
    feature_dim = 16
    num_classes = 10
    class_names = [f"c{i}" for i in range(10)]

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(16, 10)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def protocol(self):
        return {"extractor": self.name, "resize": "adaptive-avg-4x4"}

    def forward(self, images):
        x = images.float().mean(1, keepdim=True) / 255
        f = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return {"features": f, "logits": self.proj(f)}


if "test-pixels" not in EXTRACTORS:
    EXTRACTORS.register("test-pixels", lambda weights, device: PixelFeatures().to(device))


@pytest.fixture
def samples_npz(tmp_path, idx_root):
    data = ganforge.load_dataset("fashion-mnist", str(idx_root), split="test")
    path = tmp_path / "s.npz"
    np.savez(path, images=data.images.permute(0, 2, 3, 1).numpy())
    return path


def test_npz_against_dataset_records_protocol_and_caches_reference(samples_npz, idx_root, tmp_path):
    r = evaluate(samples_npz, against="fashion-mnist", metrics=["fid", "kid", "is", "pr", "dc"],
                 extractor="test-pixels", data_root=str(idx_root))
    assert r["n"] == 64 and r["kind"] == "npz"
    assert r["extractor"] == {"extractor": "test-pixels", "resize": "adaptive-avg-4x4"}
    assert r["reference"]["name"] == "fashion-mnist" and r["reference"]["split"] == "train"
    assert r["reference"]["cached"] is False
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage",
                "fid_real_vs_real", "class_entropy", "mean_confidence"):
        assert np.isfinite(r[key]), key
    assert sum(r["class_counts"].values()) == 64
    assert r["real_vs_real"]["splits"] == "train vs test"
    again = evaluate(samples_npz, against="fashion-mnist", metrics=["fid"], extractor="test-pixels",
                     data_root=str(idx_root))
    assert again["reference"]["cached"] is True and again["fid"] == pytest.approx(r["fid"], rel=1e-12)


def test_identical_sets_score_as_identical(tmp_path, idx_root):
    data = ganforge.load_dataset("fashion-mnist", str(idx_root))
    d = tmp_path / "imgs"
    d.mkdir()
    from PIL import Image

    for i in range(40):
        Image.fromarray(data.images[i, 0].numpy()).save(d / f"{i:03d}.png")
    r = evaluate(d, against=str(d), metrics=["fid", "pr", "dc"], extractor="test-pixels")
    assert abs(r["fid"]) < 1e-6
    assert r["precision"] == r["recall"] == r["coverage"] == 1.0
    assert r["reference"]["kind"] == "folder"


def test_run_folder_eval_is_appended_to_metrics(idx_root, tmp_path):
    run = tmp_path / "run"
    ganforge.train(tiny_config(idx_root, steps=2), run)
    r = ganforge.evaluate(run, metrics=["fid"], extractor="test-pixels", n=50)  # loads the run, then evaluates
    assert r["kind"] == "model" and r["step"] == 2 and r["n"] == 50 and r["ema"] is False
    assert r["reference"]["name"] == "fashion-mnist"
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 2 and last["eval"]["fid"] == r["fid"]
    # the same seed generates the same images, so the same number (the same computation: bit-equal)
    model = ganforge.load(run)
    assert evaluate(run, metrics=["fid"], extractor="test-pixels", n=50, record=False, model=model)["fid"] == r["fid"]
    with pytest.raises(GanforgeError, match="evaluate run folders with ganforge.evaluate"):
        evaluate(run, metrics=["fid"], extractor="test-pixels")  # metrics.evaluate takes samples or a model


def test_training_keeps_the_best_checkpoint(idx_root, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(idx_root, steps=6, eval_every=2, eval_n=32, eval_extractor="test-pixels", ckpt_every=3)
    ganforge.train(cfg, run)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["eval_fid"]) for r in rows if "eval_fid" in r]
    assert [s for s, _ in evals] == [2, 4, 6]
    best_step, best_fid = min(evals, key=lambda t: t[1])
    meta = json.loads((run / "checkpoints/best/meta.json").read_text())
    assert meta["step"] == best_step and meta["best"]["value"] == pytest.approx(best_fid)
    assert ganforge.load(run, "best").step == best_step
    state = torch.load(run / "checkpoints/step_00000006/state.pt", weights_only=True)
    assert state["best"]["step"] == best_step


def test_cli_eval_prints_a_table_or_with_json_one_json_object(samples_npz, idx_root, capsys):
    args = ["eval", str(samples_npz), "--against", "fashion-mnist", "--data-root", str(idx_root),
            "--extractor", "test-pixels", "--metrics", "fid,kid"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"fid", "kid_mean", "fid_real_vs_real", "extractor", "reference"} <= set(out)
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith(f"{samples_npz}: {out['n']} images against fashion-mnist train")
    fid_line = next(line for line in table if line.strip().startswith("FID"))
    assert f"{out['fid']:.3f}" in fid_line and f"{out['fid_real_vs_real']:.3f}" in fid_line  # with its floor
    assert any(line.strip().startswith("KID") and f"{out['kid_mean']:.4f}" in line for line in table)
    assert len("\n".join(table)) < 600


def test_bad_requests_are_one_sentence(samples_npz, idx_root, tmp_path, capsys):
    with pytest.raises(GanforgeError, match="Unknown metric 'fud'"):
        evaluate(samples_npz, against="fashion-mnist", metrics=["fud"], extractor="test-pixels",
                 data_root=str(idx_root))
    with pytest.raises(GanforgeError, match="--against"):
        evaluate(samples_npz, extractor="test-pixels")
    with pytest.raises(GanforgeError, match="Unknown feature extractor 'nope'"):
        evaluate(samples_npz, against="fashion-mnist", extractor="nope", data_root=str(idx_root))
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 8, 8), np.float32))
    assert main(["eval", str(bad), "--against", "fashion-mnist", "--extractor", "test-pixels"]) == 2
    assert "must be uint8 [N, H, W, C]" in capsys.readouterr().err
    fake = Features(np.zeros((4, 3)), None)
    with pytest.raises(GanforgeError, match="needs reference images"):
        compute_metrics(fake, None, ["kid"], real_stats=(np.zeros(3), np.eye(3)))


def test_class_coverage_counts_and_entropy():
    logits = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]] * 10
    c = class_coverage(logits, ["a", "b", "c", "d"])
    assert c["class_counts"] == {"a": 2, "b": 2, "c": 2, "d": 2}
    assert c["class_entropy"] == pytest.approx(np.log(4))
    assert c["mean_confidence"] == pytest.approx(np.exp(10) / (np.exp(10) + 3))


class WeightlessFeatures(FeatureExtractor):
    """A fixed function (pooled pixels): no parameters or buffers for extract() to find a device from."""

    name = "test-weightless"
    feature_dim = 16

    def protocol(self):
        return {"extractor": self.name}

    def forward(self, images):
        return {"features": torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)}


def test_an_extractor_without_weights_runs_on_the_cpu():
    from ganforge.metrics.evaluation import extract

    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    got = extract([images[:6], images[6:]], WeightlessFeatures())
    assert got.features.shape == (10, 16) and got.logits is None
    want = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1).double().numpy()
    np.testing.assert_allclose(got.features, want, rtol=1e-6)
