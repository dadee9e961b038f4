"""The contract of the family design: a new model family, defined here and nowhere else, is trained,
checkpointed, resumed bit-identically, loaded, sampled, exported and shown by the studio, through the same
entry points as the built-in families, without a change to any shared file of ganforge."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

import ganforge
from conftest import make_idx_dataset, tiny_config, train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.cli import main
from ganforge.export.files import load_pt2
from ganforge.families import Family, family_of, register_family, unregister_family
from ganforge.families.data import image_data
from ganforge.losses import LOSSES
from ganforge.models import ModelSpec
from ganforge.pipelines import NoisePipeline
from ganforge.tasks import Phase, Task


@dataclass
class BlobConfig:
    image_size: int = 28
    channels: int = 1
    nz: int = 8  # latent size
    hidden: int = 16

    def validate(self) -> None:
        if self.hidden < 1:
            raise ganforge.GanforgeError(f"blob option hidden must be positive, got {self.hidden}.")


class BlobG(nn.Module):
    def __init__(self, cfg: BlobConfig) -> None:
        super().__init__()
        self.shape = (cfg.channels, cfg.image_size, cfg.image_size)
        self.net = nn.Sequential(nn.Linear(cfg.nz, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, int(np.prod(self.shape))), nn.Tanh())

    def forward(self, z, y=None):
        return self.net(z).view(-1, *self.shape)


class BlobD(nn.Module):
    def __init__(self, cfg: BlobConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.image_size ** 2, cfg.hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, 1))

    def forward(self, x, y=None):
        return self.net(x).view(-1)


class BlobTask(Task):
    """The lectures' alternating game with the non-saturating loss, written for this test."""

    ema_nets = ("G",)

    def phases(self):
        return [Phase("D", ("D",), lr=self.loop.lr_d, betas=self.loop.betas),
                Phase("G", ("G",), lr=self.loop.lr_g, betas=self.loop.betas, new_batch=False)]

    def loss(self, phase, batch, nets):
        real = batch["image"]
        loss_fn = LOSSES.get("nonsaturating")
        z = torch.randn(real.shape[0], self.pipeline.nz, device=real.device)
        if phase.name == "D":
            with torch.no_grad():
                fake = nets["G"](z)
            loss = loss_fn.d_loss(nets["D"](real).float(), nets["D"](fake).float())
            return loss, {"loss_D": loss.detach()}
        loss = loss_fn.g_loss(nets["D"](nets["G"](z)).float())
        return loss, {"loss_G": loss.detach()}


class BlobPipeline(NoisePipeline):
    kind = "blob"


BLOB = ModelSpec("blob", BlobConfig, lambda cfg: {"G": BlobG(cfg), "D": BlobD(cfg)}, "a test family's model")
FAMILY = Family("blobs", (BLOB,), BlobTask, BlobPipeline, frozenset({"sample", "eval", "export"}), image_data,
                description="a family defined in a test")


@pytest.fixture
def blobs():
    register_family(FAMILY)
    try:
        yield FAMILY
    finally:
        unregister_family(FAMILY.name)


def _cfg(root: Path, steps: int):
    return tiny_config(root, model="blob", steps=steps, ckpt_every=2, ema_decay=0.9, model_options={"hidden": 16})


def test_a_family_defined_in_a_test_goes_through_every_entry_point(blobs, tmp_path, monkeypatch, capsys):
    root = make_idx_dataset(tmp_path / "fmnist")
    assert family_of("blob") is FAMILY and "blob" in ganforge.MODELS

    # trained and checkpointed; resumed bit-identically
    ganforge.train(_cfg(root, 4), tmp_path / "straight")
    train_interrupted(_cfg(root, 4), tmp_path / "resumed", stop_at=2, monkeypatch=monkeypatch)
    ganforge.resume(tmp_path / "resumed")
    a = load_file(str(resolve_checkpoint(tmp_path / "straight") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "resumed") / "weights.safetensors"))
    assert sorted(a) == sorted(b) and any(k.startswith("ema.G.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)

    # loaded and sampled, from Python and from the command line
    model = ganforge.load(tmp_path / "straight")
    assert type(model) is BlobPipeline and model.step == 4 and set(model.ema) == {"G"}
    images = model.sample(6, seed=1)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
    assert (images == model.sample(6, seed=1)).all()
    assert main(["sample", str(tmp_path / "straight"), "--n", "4", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 28

    # exported: the graph computes what the model computes
    out = tmp_path / "blob.pt2"
    assert main(["export", str(tmp_path / "straight"), "--out", str(out)]) == 0
    program, meta = load_pt2(out)
    assert meta["model"] == "blob" and meta["pipeline"] == "blob"
    z = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(z), model.generator().eval()(z), rtol=1e-5, atol=1e-6)

    # shown by the studio: listed for the Generate page, its grid drawn
    from fastapi.testclient import TestClient

    from ganforge.studio.app import create_app

    with TestClient(create_app([], tmp_path)) as client:
        runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
        assert "sample" in runs["straight"]["offers"] and runs["straight"]["model"] == "blob"
        r = client.get("/api/generate", params={"run": "straight", "n": 4, "seed": 2})
        assert r.status_code == 200, r.text
        picture = np.asarray(Image.open(io.BytesIO(r.content)))
        assert picture.shape[0] >= 28 and picture.std() > 0
    capsys.readouterr()


def _count_args(parser) -> None:
    parser.add_argument("run")
    parser.add_argument("--times", type=int, default=1)


def _count_run(args) -> int:
    model = ganforge.load(args.run)
    if args.times < 1:
        raise ganforge.GanforgeError(f"--times must be at least 1, got {args.times}.")
    print(f"{model.name} at step {model.step}, {args.times} time(s)")
    return 0


def _held_out_mean(model, n=None, seed=0, **_):
    images = model.sample(n or 8, seed=seed)
    return {"source": str(model.path), "step": model.step, "protocol": "mean pixel of the samples",
            "rows": [{"name": "blob", "mean": float(images.mean())}, {"name": "zero", "mean": 0.0}]}


def test_a_family_adds_a_command_and_its_own_evaluation(tmp_path, capsys):
    from ganforge.families import FamilyCommand

    count = FamilyCommand("blobcount", "say what a blob run is", _count_args, _count_run)
    with pytest.raises(ValueError, match="must be in offers"):
        Family("blobs2", (BLOB,), BlobTask, BlobPipeline, frozenset({"sample"}), image_data, commands=(count,))
    family = Family("blobs2", (BLOB,), BlobTask, BlobPipeline, frozenset({"sample", "blobcount"}), image_data,
                    commands=(count,), evaluate=_held_out_mean)
    register_family(family)
    try:
        root = make_idx_dataset(tmp_path / "fmnist")
        ganforge.train(_cfg(root, 2), tmp_path / "run")
        capsys.readouterr()
        assert main(["blobcount", str(tmp_path / "run"), "--times", "3"]) == 0
        assert "blob at step 2, 3 time(s)" in capsys.readouterr().out
        assert main(["blobcount", str(tmp_path / "run"), "--times", "0"]) == 2
        assert "--times must be at least 1, got 0." in capsys.readouterr().err
        assert main(["eval", str(tmp_path / "run"), "--n", "4"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0] == "mean pixel of the samples" and "zero" in out and "0.0000" in out
        result = ganforge.evaluate(tmp_path / "run", n=4, record=False)
        assert result["rows"][1] == {"name": "zero", "mean": 0.0} and result["step"] == 2
        recorded = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert [r["eval"]["protocol"] for r in recorded if "eval" in r] == ["mean pixel of the samples"]
    finally:
        unregister_family(family.name)
    assert main(["blobcount", str(tmp_path / "run")]) == 2  # gone with its family
