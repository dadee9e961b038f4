"""Shared fixtures: tiny datasets made by the tests themselves; never the network."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _offline_and_small(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the CLI's automatic --threads leaves a set environment alone
    torch.set_num_threads(2)


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (gzipped when ``compress``)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def toy_images(n: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n small images of 10 classes: class c is a bright square at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, size, size), dtype=np.uint8)
    s = size // 4
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 4)
        images[i, r * s:(r + 1) * s + s, q * s:q * s + s] = 220
    return images, labels.astype(np.uint8)


def make_idx_dataset(root: Path, n_train: int = 256, n_test: int = 64, size: int = 28) -> Path:
    """A tiny Fashion-MNIST-format dataset in ``root`` (train + t10k, gzipped IDX)."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = toy_images(n, size, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def idx_root(tmp_path) -> Path:
    """Folder with a tiny 28x28 IDX dataset; pass as data_root with data=fashion-mnist."""
    return make_idx_dataset(tmp_path / "fmnist")


def tiny_config(data_root: Path, **overrides):
    """A TrainConfig that trains a very small DCGAN for a few steps in about a second."""
    from ganforge import resolve_config

    values = {
        "model": "dcgan", "data": "fashion-mnist", "data_root": str(data_root), "steps": 6,
        "batch_size": 16, "log_every": 2, "sample_every": 3, "ckpt_every": 3, "n_samples": 16,
        "progress": False, "model_options": {"ngf": 8, "ndf": 8, "nz": 16},
    }
    values.update(overrides)
    return resolve_config(flags=values)


class StepClock:
    """The trainer's clock for a time budget (max_minutes): ``per_step`` seconds more after every training step,
    whatever the machine does."""

    def __init__(self, per_step: float) -> None:
        self.now, self.per_step = 0.0, per_step

    def perf_counter(self) -> float:
        return self.now


def use_step_clock(per_step: float, set_attribute=setattr) -> StepClock:
    """Put a :class:`StepClock` in place of the trainer's clock (``set_attribute``: a test's monkeypatch.setattr,
    so it is put back; plain setattr in a process of its own)."""
    from ganforge.train import trainer as trainer_module

    clock = StepClock(per_step)
    step = trainer_module.Trainer.train_step

    def timed_step(self):
        out = step(self)
        clock.now += clock.per_step
        return out

    set_attribute(trainer_module, "time", clock)
    set_attribute(trainer_module.Trainer, "train_step", timed_step)
    return clock


class Interrupted(Exception):
    """Raised by :func:`train_interrupted` in place of the training step it stops at."""


def train_interrupted(cfg, run_dir: Path, stop_at: int, monkeypatch) -> None:
    """Train ``cfg`` into ``run_dir`` as if the process died just before step ``stop_at + 1``."""
    import ganforge
    from ganforge.train.trainer import Trainer

    original = Trainer.train_step

    def step(self):
        if self.step == stop_at:
            raise Interrupted
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(Interrupted):
        ganforge.train(cfg, run_dir)
    monkeypatch.setattr(Trainer, "train_step", original)


def tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz at ``path`` holding {member name: bytes} (archives for the download tests)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
