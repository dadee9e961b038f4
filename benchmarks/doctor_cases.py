"""Known answers for the GAN doctor: runs made healthy or broken on purpose, each with the finding it should get,
trained with two seeds and diagnosed after training (rows and samples). Prints one line per run and whether the
doctor named what was broken, and nothing else as an error.

    .venv/bin/python benchmarks/doctor_cases.py [--seeds 0,1] [--steps 800] [--cases healthy,minimax_d_wins,...]

Cases (a 28x28 DCGAN on Fashion-MNIST, batch 64, width 16, logged every 20 steps):
  healthy          the fmnist-demo recipe (width 32, bf16, Adam 8e-4, EMA): expect no warning or error
  minimax_d_wins   the saturating minimax loss against a D that learns 200x faster and 5 times per G step:
                   expect d_wins (an error naming loss=nonsaturating)
  divergence       learning rates of 5 for both players: expect divergence (an error)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.config import resolve_config
from ganforge.errors import GanforgeError

COMMON = {"progress": False, "sample_every": 0, "ckpt_every": 200, "log_every": 20, "batch_size": 64}
CASES = {
    "healthy": ("fmnist-demo", {}, set()),
    "minimax_d_wins": (None, {"model": "dcgan", "data": "fashion-mnist", "loss": "minimax", "d_steps": 5,
                              "lr_d": 2e-3, "lr_g": 1e-5, "model_options": {"ngf": 16, "ndf": 32}}, {"d_wins"}),
    "divergence": (None, {"model": "dcgan", "data": "fashion-mnist", "lr_d": 5.0, "lr_g": 5.0,
                          "model_options": {"ngf": 16, "ndf": 16}}, {"divergence"}),
}


def run_case(name: str, seed: int, steps: int, root: Path) -> dict:
    preset, flags, expected = CASES[name]
    cfg = resolve_config(preset, flags={**flags, **COMMON, "steps": steps, "seed": seed})
    out = root / f"{name}-{seed}"
    t = time.perf_counter()
    try:
        ganforge.train(cfg, out)
        failed = None
    except GanforgeError as e:  # a run that diverges stops with one sentence; its rows are what the doctor reads
        failed = str(e)
    seconds = time.perf_counter() - t
    findings = ganforge.doctor(out)
    serious = {f.code for f in findings if f.severity in ("warning", "error")}
    errors = {f.code for f in findings if f.severity == "error"}
    found = expected <= serious
    extra = (errors - expected) if expected else serious
    return {"case": name, "seed": seed, "seconds": seconds, "stopped": failed is not None, "expected": expected,
            "found": sorted(serious), "ok": found and not extra,
            "first": {f.code: f.first_step for f in findings if f.severity != "info"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            for seed in seeds:
                r = run_case(name, seed, args.steps, Path(tmp))
                results.append(r)
                print(f"{r['case']:16s} seed {r['seed']}: {r['seconds']:6.1f} s{' (stopped)' if r['stopped'] else ''}"
                      f"  expected {sorted(r['expected']) or 'nothing'}  found {r['found'] or 'nothing'} "
                      f"{r['first'] or ''}  {'OK' if r['ok'] else 'WRONG'}", flush=True)
    right = sum(r["ok"] for r in results)
    print(f"{right} of {len(results)} runs diagnosed as expected")


if __name__ == "__main__":
    main()
