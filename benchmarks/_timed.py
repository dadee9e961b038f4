"""What the benchmarks that score a run against minutes share: training with a clock on every checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import torch

import ganforge


def train_timed(cfg, run_dir: Path) -> tuple[dict[int, float], float, set[int]]:
    """Train ``cfg`` into ``run_dir`` with ganforge.train (its thread policy and live doctor); returns {step: minutes
    from the call when its checkpoint was written}, the minutes of the whole call (building the run included)
    and the CPU threads the run trained with."""
    written: dict[int, float] = {}
    used: set[int] = set()

    def checkpoint(path, step) -> None:
        written.setdefault(step, time.perf_counter())
        used.add(torch.get_num_threads())  # the thread policy's choice while the run trains

    start = time.perf_counter()
    ganforge.train(cfg, run_dir, events={"on_checkpoint": checkpoint})
    end = time.perf_counter()
    return {step: (t - start) / 60 for step, t in sorted(written.items())}, (end - start) / 60, used
