"""Training-step speed of a preset against variants of it (``key=value`` overrides), side by side in one run.

    .venv/bin/python benchmarks/preset_speed.py --preset pix2pix-edges2fashion \
        --variant "bf16:precision=bf16" --variant "channels_last:channels_last=true"

One step = the preset's whole training step (every phase's updates, the batch fetch, EMA), built as
``ganforge train`` builds it (nothing written). The rounds rotate the order (train_speed.time_rounds), so drift
of a shared machine touches every row alike; medians and best rounds are printed with the load average before
and after. Speed only: whether a variant learns as well per step is for the quality benchmarks
(translation_curve.py, time_to_quality.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ganforge.config import resolve_config  # noqa: E402
from ganforge.train.run import build_run  # noqa: E402
from train_speed import time_rounds  # noqa: E402

QUIET = ["progress=false", "sample_every=0", "ckpt_every=0", "steps=1000000", "health_every=0"]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """"NAME:k=v,k=v" -> (NAME, ["k=v", "k=v"])."""
    name, _, rest = text.partition(":")
    if not name:
        raise SystemExit(f"--variant {text!r}: give NAME:k=v,k=v (NAME: alone is the preset as it is)")
    return name, [kv for kv in rest.split(",") if kv]


def make_step(preset: str, overrides: list[str], tmp: str):
    trainer = build_run(resolve_config(preset, overrides=[*QUIET, *overrides]), tmp, write=False,
                        evaluate=False).trainer
    return trainer.train_step, trainer.cfg.batch_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", required=True)
    p.add_argument("--variant", action="append", default=[], help='"NAME:k=v,k=v" (the preset itself is the first row)')
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=20, help="steps per round and row")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [("preset", []), *(parse_variant(v) for v in args.variant)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        steps, batch = {}, 1
        for i, (name, overrides) in enumerate(rows):
            steps[name], batch = make_step(args.preset, overrides, f"{tmp}/{i}")
        seconds = time_rounds(steps, args.rounds, args.steps, warmup=5, images_per_step=batch)
    print(f"\n{args.preset}: batch {batch}, {args.threads} threads, {args.rounds} rounds of {args.steps} steps; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    base = statistics.median(seconds["preset"])
    print(f"  {'row':<20} {'img/s median':>12} {'best':>8} {'vs preset':>10}  overrides")
    for name, overrides in rows:
        med = statistics.median(seconds[name])
        print(f"  {name:<20} {batch * args.steps / med:>12.0f} {batch * args.steps / min(seconds[name]):>8.0f} "
              f"{base / med:>10.3f}  {' '.join(overrides)}")


if __name__ == "__main__":
    main()
