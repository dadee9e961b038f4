"""Killing training at any moment (SIGKILL) leaves the last complete checkpoint loadable; Ctrl-C and
SIGTERM stop it cleanly with a checkpoint of the step reached, from which --resume continues."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ganforge
from ganforge.checkpoint import list_checkpoints
from ganforge.viz import read_metrics

ENV = {**os.environ, "GANFORGE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint(idx_root, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge", "train", "dcgan", "--data", "fashion-mnist",
           "--data-root", str(idx_root), "--out", str(run), "--steps", "100000", "--batch-size", "16",
           "--no-progress", "model.ngf=8", "model.ndf=8", "model.nz=16", "ckpt_every=1", "keep_ckpts=2",
           "sample_every=0", "log_every=1", "ema_decay=0.9"]
    env = ENV
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


INTERRUPTED = re.compile(r"^ganforge: interrupted at step (\d+); checkpoint saved in (\S+); "
                         r"continue with: ganforge train --resume (\S+)$", re.MULTILINE)


@pytest.mark.parametrize("name, exit_code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_checkpoints_the_step_reached_and_resume_continues(idx_root, tmp_path, name, exit_code):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge", "train", "gan", "--data", "fashion-mnist", "--data-root", str(idx_root),
           "--out", str(run), "--steps", "100000", "--batch-size", "16", "--no-progress", "model.nz=8",
           "model.g_hidden=[32]", "model.d_hidden=[32]", "log_every=1", "sample_every=0", "ckpt_every=100000"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not read_metrics(run / "metrics.jsonl"):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(getattr(signal, name))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == exit_code, err
    found = INTERRUPTED.search(err)
    assert found, err
    step = int(found[1])
    assert Path(found[2]) == run / "checkpoints" / f"step_{step:08d}" and found[3] == str(run)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [f"step_{step:08d}"]
    assert read_metrics(run / "metrics.jsonl")[-1]["step"] == step
    assert ganforge.api.load_checkpoint(run).state()["step"] == step

    done = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--steps", str(step + 3),
                           "--no-progress"], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list_checkpoints(run / "checkpoints")[-1].name == f"step_{step + 3:08d}"
    assert read_metrics(run / "metrics.jsonl")[-1]["step"] == step + 3
