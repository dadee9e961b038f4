"""What the doctor's live check costs: the fmnist-demo preset for 600 steps with the doctor on (health_every=10,
the default: the rules and the probe's D scores every 10 log rows; the probe's weight and gradient norms at every
log row) against health_every=0 (off), in one process after a short warm-up, the order alternating by round
(off, on; on, off; ...) so that neither setting always runs second. ``--every 1`` measures the worst case (rules
and D scores at every log row).

    .venv/bin/python benchmarks/doctor_overhead.py [--steps 600] [--rounds 4] [--every 10] [--log-every 20]

Training seconds: from the first step's on_step to the last one's (the loop with its log rows, and so with the
watcher and the probe; not the building of the run or the final pictures). Also printed: the seconds spent inside
the watcher's on_log and the probe's fields. Issue 25's target: at most 3% of step time.
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
from ganforge.doctor import live, probes


def timed_watch(record: dict):
    """training.watch, plus a clock at every step and around the watcher's on_log."""
    watch, on_log, fields = live.watch, live.HealthWatcher.on_log, probes.Probe.fields

    def on_log_timed(self, row):
        t = time.perf_counter()
        on_log(self, row)
        record["watcher"] += time.perf_counter() - t

    def fields_timed(self, step):
        t = time.perf_counter()
        out = fields(self, step)
        record["probe"] += time.perf_counter() - t
        return out

    def wrapped(trainer):
        trainer.events.subscribe("on_step", lambda step: record.setdefault("first", time.perf_counter()))
        trainer.events.subscribe("on_step", lambda step: record.__setitem__("last", time.perf_counter()))
        live.HealthWatcher.on_log, probes.Probe.fields = on_log_timed, fields_timed
        return watch(trainer)

    return wrapped


def one_run(steps: int, health_every: int, log_every: int, out: Path) -> dict:
    cfg = resolve_config("fmnist-demo", flags={"steps": steps, "health_every": health_every, "progress": False,
                                               "sample_every": 0, "ckpt_every": 0, "log_every": log_every})
    record = {"watcher": 0.0, "probe": 0.0}
    original, on_log, fields = training.watch, live.HealthWatcher.on_log, probes.Probe.fields
    training.watch = timed_watch(record)
    try:
        ganforge.train(cfg, out)
    finally:
        training.watch, live.HealthWatcher.on_log, probes.Probe.fields = original, on_log, fields
    return {"seconds": record["last"] - record["first"], "watcher": record["watcher"], "probe": record["probe"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--every", type=int, default=10, help="health_every of the runs with the doctor on")
    p.add_argument("--log-every", type=int, default=20, help="log_every of every run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(50, 1, args.log_every, Path(tmp) / "warmup")
        runs = {0: [], args.every: []}
        for r in range(args.rounds):
            for every in ((0, args.every) if r % 2 == 0 else (args.every, 0)):  # no place is favoured
                result = one_run(args.steps, every, args.log_every, Path(tmp) / f"run_{r}_{every}")
                runs[every].append(result)
                print(f"round {r + 1} health_every={every}: {result['seconds']:.2f} s training, "
                      f"{result['watcher'] * 1000:.1f} ms in the watcher, {result['probe'] * 1000:.1f} ms in the "
                      f"probe", flush=True)
    off = statistics.median(x["seconds"] for x in runs[0])
    on = statistics.median(x["seconds"] for x in runs[args.every])
    watcher = statistics.median(x["watcher"] for x in runs[args.every])
    probe = statistics.median(x["probe"] for x in runs[args.every])
    print(f"median training seconds: off {off:.2f}, on {on:.2f}; on/off = {on / off:.4f}; "
          f"watcher {watcher * 1000:.1f} ms = {100 * watcher / on:.3f}%, probe {probe * 1000:.1f} ms = "
          f"{100 * probe / on:.3f}% of the training seconds")


if __name__ == "__main__":
    main()
