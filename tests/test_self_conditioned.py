"""Self-conditioned GANs (cgan with clusters=K): trained on unlabelled images, sampled as unconditional ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import ganforge
from conftest import toy_images, train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.models.cgan import CGANConfig

SMALL = {"ngf": 8, "ndf": 8, "nz": 16}


def _flat_folder(path, n: int = 60, seed: int = 0):
    """``n`` unlabelled 28x28 PNGs of 10 kinds (no class subfolders)."""
    path.mkdir(parents=True, exist_ok=True)
    images, _ = toy_images(n, 28, seed)
    for i, image in enumerate(images):
        Image.fromarray(image).save(path / f"{i:03d}.png")
    return path


def _config(folder, **flags):
    values = {"model": "cgan", "data": str(folder), "image_size": 28, "channels": 1, "steps": 6, "batch_size": 10,
              "log_every": 2, "sample_every": 3, "ckpt_every": 3, "n_samples": 20, "progress": False,
              "model_options": {**SMALL, "clusters": 10}}
    values.update(flags)
    return ganforge.resolve_config(flags=values)


@pytest.fixture(scope="module")
def clustered_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("selfcond")
    folder = _flat_folder(base / "flat")
    ganforge.train(_config(folder), base / "run")
    return folder, base / "run"


def test_unlabelled_images_train_a_cgan_on_their_clusters(clustered_run):
    _, run = clustered_run
    meta = json.loads((run / "config.json").read_text())
    opts = meta["model_options"]
    assert opts["clusters"] == opts["num_classes"] == 10
    assert opts["cluster_sizes"] == [6] * 10  # the ten kinds of the folder, found without labels
    assert meta["dataset"]["class_names"] == [f"cluster {i}" for i in range(10)]
    model = ganforge.load(run)
    assert model.clustered and model.num_classes == 10 and model.class_names[3] == "cluster 3"
    assert model.describe()["clustered"] is True  # the studio offers "any cluster", not one row per class


def test_the_studio_says_a_clustered_run_draws_any_cluster(clustered_run):
    from fastapi.testclient import TestClient

    from ganforge.studio.app import create_app

    _, run = clustered_run
    with TestClient(create_app([], run.parent)) as c:
        info = c.get("/api/run", params={"run": run.name}).json()["info"]
    assert info["clustered"] is True and info["class_names"][:2] == ["cluster 0", "cluster 1"]


def test_samples_draw_clusters_by_their_shares_in_a_plain_grid(clustered_run):
    _, run = clustered_run
    model = ganforge.load(run)
    y = model.inputs(2000, 0)["y"]
    counts = torch.bincount(y, minlength=10)
    assert counts.min() > 150 and counts.max() < 250  # equal shares: about 200 each, not class-major rows
    assert model.grid_columns(20) is None and model.row_labels(y[:20], model.grid_columns(20)) is None
    assert torch.equal(model.inputs(10, 0)["y"], y[:10])  # the first images of a seed do not depend on n
    assert not torch.equal(model.inputs(10, 1)["y"], y[:10])
    with Image.open(run / "samples.png") as im:  # no class rows (10 rows of 2, labelled): a 5 x 4 grid
        assert im.width / im.height == pytest.approx(5 / 4, abs=0.02)


def test_prior_skews_the_clusters_drawn_in_the_g_phase_and_in_samples():
    cfg = CGANConfig(num_classes=3, clusters=3, cluster_sizes=[1, 998, 1])
    prior = cfg.label_prior()
    assert prior.tolist() == pytest.approx([0.001, 0.998, 0.001])
    from ganforge.train.run import build_task

    task = build_task(ganforge.resolve_config(flags={"model": "cgan", "progress": False}),
                      {**SMALL, "image_size": 28, "channels": 1, "num_classes": 3, "clusters": 3,
                       "cluster_sizes": [1, 998, 1]})
    torch.manual_seed(0)
    _, y = task._fake(task.nets["G"], 500, torch.device("cpu"))
    assert (y == 1).sum() > 480
    assert CGANConfig(num_classes=10).label_prior() is None  # the data's classes: drawn uniformly


def test_a_clustered_model_has_no_per_class_scores_and_takes_a_cluster(clustered_run, tmp_path):
    _, run = clustered_run
    result = ganforge.evaluate(run, metrics=["fid"], n=200, extractor="fmnist", record=False)
    assert not any(k.startswith(("class_accuracy", "fid_per_class")) for k in result)
    assert main(["sample", str(run), "--n", "4", "--class", "cluster 2", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["labels"].tolist() == [2] * 4


@pytest.mark.parametrize("g_cond", ["concat", "cbn"])  # cbn: the demo's G, the cluster in every batch norm
def test_a_clustered_run_resumes_bit_exactly(tmp_path, monkeypatch, g_cond):
    folder = _flat_folder(tmp_path / "flat")
    cfg = _config(folder, steps=7, model_options={**SMALL, "clusters": 10, "g_cond": g_cond})
    ganforge.train(cfg, tmp_path / "full")
    train_interrupted(cfg, tmp_path / "cut", 4, monkeypatch)  # dies after the step-3 checkpoint
    assert ganforge.resume(tmp_path / "cut").step == 7
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "cut") / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.endswith(".gain") for k in a) == (g_cond == "cbn")  # the per-cluster scales are G's, and kept


def test_resuming_on_changed_data_or_asking_too_much_is_one_sentence(clustered_run, tmp_path):
    folder, _ = clustered_run
    changed = _flat_folder(tmp_path / "flat")
    ganforge.train(_config(changed, steps=4, ckpt_every=2), tmp_path / "run")
    for i, image in enumerate(toy_images(15, 28, seed=9)[0]):  # 15 more images: other cluster sizes
        Image.fromarray(image).save(changed / f"new{i}.png")
    with pytest.raises(GanforgeError, match=r"trained on data with clusters of 6, 6, 6, \.\.\. images, but its "
                                            r"data now gives clusters of .*resume it with the data it was trained on"):
        ganforge.resume(tmp_path / "run", {"steps": 6})
    with pytest.raises(GanforgeError, match="clusters=100 asks for more clusters than the 60 training images"):
        ganforge.train(_config(folder, model_options={**SMALL, "clusters": 100}), tmp_path / "big")
    assert not (tmp_path / "big").exists()
    with pytest.raises(GanforgeError, match="clusters must be 0 .* or at least 2, got 1"):
        ganforge.train(_config(folder, model_options={**SMALL, "clusters": 1}), tmp_path / "one")
    with pytest.raises(GanforgeError, match="Unknown option 'clusters' for model 'dcgan'"):
        ganforge.train(_config(folder, model="dcgan"), tmp_path / "dc")


def test_an_export_records_the_cluster_shares(clustered_run, tmp_path):
    from ganforge.export import export, load_onnx

    _, run = clustered_run
    result = export(run, "onnx", tmp_path / "sc.onnx")
    meta = load_onnx(tmp_path / "sc.onnx").get_modelmeta().custom_metadata_map
    assert json.loads(meta["label_prior"]) == pytest.approx([0.1] * 10) and int(meta["num_classes"]) == 10
    assert result["metadata"]["label_prior"] == meta["label_prior"]



def test_info_counts_a_self_conditioned_model_by_its_clusters(capsys):
    counts = []
    for option in ("clusters=50", "num_classes=50"):
        assert main(["info", "cgan", "ngf=32", "ndf=32", option]) == 0
        counts.append(json.loads(capsys.readouterr().out))
    assert counts[0] == counts[1] == {"G": 503872, "D": 39744}  # 150 input channels of G; a 50-row embedding in D


def test_one_image_per_seed_is_that_seeds_sample(clustered_run):
    from ganforge.latent.render import render, seed_classes
    from ganforge.latent.vectors import z_from_seeds

    _, run = clustered_run
    model = ganforge.load(run)
    seeds = [3, 4, 5, 11]
    y = seed_classes(model, seeds, None)
    assert y.tolist() == [int(model.inputs(1, s)["y"][0]) for s in seeds]  # its cluster, not seed % 10
    images = render(model, z_from_seeds(seeds, model.nz), y).permute(0, 2, 3, 1).numpy()
    for i, s in enumerate(seeds):  # batches of 4 and of 1: equal up to a rounding step of the uint8 output
        assert np.abs(images[i].astype(int) - model.sample(1, seed=s)[0].astype(int)).max() <= 1
