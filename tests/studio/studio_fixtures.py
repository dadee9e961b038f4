"""Tiny runs for the studio tests, trained once per test process: a DCGAN, a conditional GAN, a pix2pix and a
CycleGAN run under one runs root (a few seconds on the CPU)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

import ganforge

_BUILT: dict[str, Path] = {}
SMALL = {"ngf": 8, "ndf": 8, "nz": 16}
CYCLE = {"netG": "resnet_1blocks", "ngf": 4, "ndf": 8, "netD": "n_layers", "n_layers_D": 2}


def build_runs(base: Path) -> Path:
    """runs/dcgan (evaluated every 30 steps: a best checkpoint), runs/cgan (10 classes), runs/p2p (edges ->
    clothes, 32 x 32), runs/cycle (CycleGAN, clothes <-> edges, 32 x 32); returns the runs root."""
    from conftest import make_idx_dataset, tiny_config

    data = make_idx_dataset(base / "fmnist")
    root = base / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_OFFLINE", "1")
        ganforge.train(tiny_config(data, steps=60, ema_decay=0.9, log_every=10, sample_every=30, ckpt_every=30,
                                   eval_every=30, eval_n=160, eval_extractor="fmnist"), root / "dcgan")
        ganforge.train(tiny_config(data, model="cgan", steps=4, n_samples=20,
                                   model_options={**SMALL, "cond": "projection"}), root / "cgan")
        p2p = ganforge.resolve_config(flags={
            "model": "pix2pix", "data": "edges2fashion", "data_root": str(data), "image_size": 32, "steps": 30,
            "batch_size": 4, "log_every": 10, "sample_every": 30, "ckpt_every": 30, "n_samples": 4, "progress": False,
            "model_options": {"netG": "unet_32", "ngf": 8, "ndf": 8}})
        ganforge.train(p2p, root / "p2p")
        cyc = ganforge.resolve_config(flags={
            "model": "cyclegan", "data": "fashion2edges", "data_root": str(data), "image_size": 32, "steps": 2,
            "batch_size": 2, "log_every": 1, "sample_every": 2, "ckpt_every": 2, "n_samples": 4, "progress": False,
            "model_options": CYCLE})
        ganforge.train(cyc, root / "cycle")
    return root


@pytest.fixture(scope="session")
def studio_data(tmp_path_factory) -> dict[str, Path]:
    if not _BUILT:
        base = tmp_path_factory.mktemp("studio")
        _BUILT["root"] = build_runs(base)
        _BUILT["data"] = base / "fmnist"
    return dict(_BUILT)


@contextlib.contextmanager
def serve(app):
    """``app`` on a real uvicorn server (a thread) at 127.0.0.1; yields the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not srv.started and time.monotonic() < end:
        time.sleep(0.05)
    assert srv.started, "the studio server did not start"
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(10)
