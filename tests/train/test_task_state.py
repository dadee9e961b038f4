"""Task state beyond the networks is saved in every checkpoint and restored on resume: a GAN whose D
trains on an image pool of past fakes (CycleGAN's, Shrivastava et al. 2017) resumes bit-identically,
and would not if its pool were lost."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config, train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.families import Family, register_family, unregister_family
from ganforge.families.data import image_data
from ganforge.models import ModelSpec
from ganforge.models.mlp import MLPGANConfig, build_mlp_gan
from ganforge.pipelines import NoisePipeline
from ganforge.tasks.gan import GANTask

POOL_MODEL, POOL_TASK, POOL_SIZE = "test-pool-gan", "test-pool-gan", 50


class ImagePool:
    """CycleGAN's history of generated images: until full, store and return each image; then, with
    probability 1/2, return a stored image and keep the new one in its place, else return the new one.
    Draws from torch's global RNG, so the trainer's saved RNG state makes it reproducible."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(1)) < 0.5:
                i = int(torch.randint(0, self.size, (1,)))
                out.append(self.images[i].to(image.device))  # restored pools come back on the CPU
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


class PoolGANTask(GANTask):
    """GANTask whose D phase scores fakes drawn through an :class:`ImagePool`."""

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        self.pool = ImagePool(POOL_SIZE)

    def loss(self, phase, batch, nets):
        if phase.name != "D":
            return super().loss(phase, batch, nets)
        real = batch["image"]
        with torch.no_grad():
            fake = self.pool.query(nets["G"](self._noise(real.shape[0], real.device)))
        loss = self.gan_loss.d_loss(nets["D"](real).float(), nets["D"](fake).float())
        return loss, {"loss_D": loss.detach()}

    def state_dict(self) -> dict:
        return {"pool": torch.stack(self.pool.images) if self.pool.images else torch.zeros(0)}

    def load_state_dict(self, state: dict) -> None:
        self.pool.images = list(state["pool"].unbind(0))


@pytest.fixture
def pool_model(monkeypatch):
    """The pool model and task, registered for one test only: the registries are global, and the contract
    tests (tests/test_contract.py) check every registered model."""
    spec = ModelSpec(POOL_MODEL, MLPGANConfig, build_mlp_gan, "MLP GAN with an image pool (tests)")
    family = Family(POOL_TASK, (spec,), PoolGANTask, NoisePipeline, frozenset({"sample"}), image_data)
    register_family(family)
    yield POOL_MODEL
    unregister_family(POOL_TASK)


def _weights(run_dir, which="latest"):
    return load_file(str(resolve_checkpoint(run_dir, which) / "weights.safetensors"))


def test_resume_restores_the_task_state_and_is_bit_identical_only_with_it(pool_model, idx_root, tmp_path,
                                                                          monkeypatch):
    cfg = tiny_config(idx_root, model=pool_model, steps=8, ckpt_every=4,
                      model_options={"nz": 8, "g_hidden": [32], "d_hidden": [32], "dropout": 0.0})
    ganforge.train(cfg, tmp_path / "full")
    state = torch.load(tmp_path / "full/checkpoints/step_00000004/state.pt", weights_only=True)
    assert state["task"][0]["pool"].shape == (POOL_SIZE, 1, 28, 28)  # full after 4 D updates of 16 fakes

    train_interrupted(cfg, tmp_path / "cut", 5, monkeypatch)  # dies after the step-4 checkpoint
    ganforge.resume(tmp_path / "cut")
    full, cut = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert full.keys() == cut.keys()
    assert all(torch.equal(full[k], cut[k]) for k in full)
    end_full = torch.load(tmp_path / "full/checkpoints/step_00000008/state.pt", weights_only=True)
    end_cut = torch.load(tmp_path / "cut/checkpoints/step_00000008/state.pt", weights_only=True)
    assert torch.equal(end_full["task"][0]["pool"], end_cut["task"][0]["pool"])

    # the same resume with the pool dropped: D sees other images, so the weights differ
    train_interrupted(cfg, tmp_path / "lost", 5, monkeypatch)
    monkeypatch.setattr(PoolGANTask, "load_state_dict", lambda self, state: None)
    ganforge.resume(tmp_path / "lost")
    lost = _weights(tmp_path / "lost")
    assert any(not torch.equal(full[k], lost[k]) for k in full)
