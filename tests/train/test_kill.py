"""Killing training at any moment (SIGKILL) leaves the last complete checkpoint loadable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import ganforge
from ganforge.train.checkpoint import list_checkpoints


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint(idx_root, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge", "train", "dcgan", "--data", "fashion-mnist",
           "--data-root", str(idx_root), "--out", str(run), "--steps", "100000", "--batch-size", "16",
           "--no-progress", "model.ngf=8", "model.ndf=8", "model.nz=16", "ckpt_every=1", "keep_ckpts=2",
           "sample_every=0", "log_every=1", "ema_decay=0.9"]
    env = {**os.environ, "GANFORGE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    for attempt in range(4):
        if attempt:
            cmd = [sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--no-progress"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        start_step = len(list_checkpoints(run / "checkpoints"))
        while time.time() < deadline and proc.poll() is None:
            ckpts = list_checkpoints(run / "checkpoints")
            if ckpts and int(ckpts[-1].name[5:]) >= start_step + 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.3))  # land anywhere: mid-step, mid-write, mid-rename
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        model = ganforge.load(run)  # the newest complete checkpoint
        assert model.sample(2).shape == (2, 28, 28, 1)
        assert ganforge.api.load_checkpoint(run).state()["step"] == model.step
    ckpts = list_checkpoints(run / "checkpoints")
    assert len(ckpts) in (1, 2, 3)  # keep_ckpts=2, plus possibly one whose pruning was interrupted
