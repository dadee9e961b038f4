"""What the doctor's live check costs: the fmnist-demo preset for 600 steps with health_every=1 (the rules after
every log row) against health_every=0 (off), in one process after a short warm-up, the order alternating by
round (off, on; on, off; ...) so that neither setting always runs second.

    .venv/bin/python benchmarks/doctor_overhead.py [--steps 600] [--rounds 4]

Training seconds: from the first step's on_step to the last one's (the loop with its log rows, and so with the
watcher; not the building of the run or the final pictures). Also printed: the seconds spent inside the watcher's
on_log. Issue 25's target: at most 3% of step time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ganforge
import ganforge.training as training
from ganforge.config import resolve_config
from ganforge.doctor import live


def timed_watch(record: dict):
    """training.watch, plus a clock at every step and around the watcher's on_log."""
    watch, on_log = live.watch, live.HealthWatcher.on_log

    def on_log_timed(self, row):
        t = time.perf_counter()
        on_log(self, row)
        record["watcher"] += time.perf_counter() - t

    def wrapped(trainer):
        trainer.events.subscribe("on_step", lambda step: record.setdefault("first", time.perf_counter()))
        trainer.events.subscribe("on_step", lambda step: record.__setitem__("last", time.perf_counter()))
        live.HealthWatcher.on_log = on_log_timed
        return watch(trainer)

    return wrapped


def one_run(steps: int, health_every: int, out: Path) -> dict:
    cfg = resolve_config("fmnist-demo", flags={"steps": steps, "health_every": health_every, "progress": False,
                                               "sample_every": 0, "ckpt_every": 0})
    record = {"watcher": 0.0}
    original, on_log = training.watch, live.HealthWatcher.on_log
    training.watch = timed_watch(record)
    try:
        ganforge.train(cfg, out)
    finally:
        training.watch, live.HealthWatcher.on_log = original, on_log
    return {"seconds": record["last"] - record["first"], "watcher": record["watcher"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(50, 1, Path(tmp) / "warmup")
        runs = {0: [], 1: []}
        for r in range(args.rounds):
            for every in ((0, 1) if r % 2 == 0 else (1, 0)):  # the order alternates: no place is favoured
                result = one_run(args.steps, every, Path(tmp) / f"run_{r}_{every}")
                runs[every].append(result)
                print(f"round {r + 1} health_every={every}: {result['seconds']:.2f} s training, "
                      f"{result['watcher'] * 1000:.1f} ms in the watcher", flush=True)
    off = statistics.median(x["seconds"] for x in runs[0])
    on = statistics.median(x["seconds"] for x in runs[1])
    watcher = statistics.median(x["watcher"] for x in runs[1])
    print(f"median training seconds: off {off:.2f}, on {on:.2f}; on/off = {on / off:.4f}; "
          f"watcher {watcher * 1000:.1f} ms = {100 * watcher / on:.3f}% of the training seconds")


if __name__ == "__main__":
    main()
