"""``ganforge doctor``: say what is wrong with a trained run (a thin layer over :mod:`ganforge.doctor`).

    ganforge doctor RUN_DIR [--json] [--no-samples]

Exit status: 0 when no finding is an error, 1 when one is, 2 for bad input (not a run folder).
"""

from __future__ import annotations

import argparse
import json

from .threads import add_threads_option


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "doctor", help="say what is wrong with a trained run, with the evidence and the fix",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
            "checks: divergence (NaN, loss spikes, weights grown 10x, gradient spikes), D winning (G gets no\n"
            "gradient), a stalled FID/KID/IS, D overfitting (training vs held-out reals, ADA's r_t), modes covered\n"
            "on the toy ring and grid, translation (identity map, constant output, the GAN term ignored), and on\n"
            "256 samples (seed 0) constant or noise images and mode collapse (a run under 1000 steps: only when\n"
            "two checkpoints show it).\n"
            "exit status: 0 when no finding is an error, 1 when one is, 2 for bad input."))
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `ganforge train --out`")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"run", "step", "findings": [...], "notes": [...]}')
    p.add_argument("--no-samples", action="store_true", help="only read metrics.jsonl; do not load the model")
    add_threads_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    from .api import doctor
    from .doctor import report, to_json

    findings = doctor(args.run_dir, samples=not args.no_samples, threads=args.threads)
    if args.json:
        print(json.dumps(to_json(args.run_dir, findings)))
    else:
        print(report(findings))
    return 1 if any(f.severity == "error" for f in findings) else 0
