"""``ganforge toy``: watch a GAN learn 1-D / 2-D toy data (a thin layer over :mod:`ganforge.toy_runs`).

    ganforge toy --data ring2d --out runs/ring [--compare minimax,nonsaturating:5] [key=value ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .threads import add_threads_option, parse_threads


def add_parser(subparsers) -> argparse.ArgumentParser:
    y = subparsers.add_parser(
        "toy", help="watch a GAN learn 1-D / 2-D toy data (figure 1 of Goodfellow et al., GAN Lab)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
                           "data: gaussian1d, mixture1d, uniform1d, ring2d, grid2d, moons2d, spiral2d, line2d, or a\n"
                           ".csv/.txt/.npy file of your own 1-D samples or 2-D points (centred and scaled to unit\n"
                           "standard deviation). Writes RUN_DIR/samples/step_*.png, progress.gif, losses.png,\n"
                           "divergence.png, toy_metrics.jsonl; with --compare one run per loss in RUN_DIR/<loss>/\n"
                           "and compare.gif, compare.png, compare_curves.png. Other TrainConfig fields as key=value."))
    y.add_argument("--data", required=True, help="toy distribution name or a file of points")
    y.add_argument("--out", help="run folder to create (default runs/toy-<data>)")
    losses = y.add_mutually_exclusive_group()
    losses.add_argument("--loss", help="minimax | nonsaturating (default) | lsgan | hinge | wgan | wgan-gp")
    losses.add_argument("--compare", metavar="LOSS[:K],LOSS[:K],...",
                        help="train once per loss (optionally with K D steps), same data and seed, side by side")
    y.add_argument("--steps", type=int, help="generator steps (default 3000 for 1-D data, 5000 for 2-D)")
    y.add_argument("--d-steps", type=int, help="k: discriminator updates per generator update (default 1)")
    y.add_argument("--lr-g", type=float, help="Adam learning rate of G (default 2e-4)")
    y.add_argument("--lr-d", type=float, help="Adam learning rate of D (default 2e-3; betas: beta1=, beta2=)")
    y.add_argument("--batch-size", type=int, help="points per batch (default 256)")
    y.add_argument("--z", choices=("uniform", "normal"), help="noise: uniform on [-1, 1] (default) or normal")
    y.add_argument("--frames", type=int, default=60, help="pictures over training (default 60)")
    y.add_argument("--seed", type=int)
    y.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default cpu)")
    y.add_argument("--progress", action="store_true", help="show a progress bar")
    add_threads_option(y)
    return y


def run(args: argparse.Namespace) -> int:
    from .toy_runs import compare_toy, toy_config, train_toy

    flags = {"steps": args.steps, "d_steps": args.d_steps, "lr_g": args.lr_g, "lr_d": args.lr_d,
             "batch_size": args.batch_size, "seed": args.seed, "device": args.device or "cpu",
             "loss": args.loss, "progress": True if args.progress else None, "threads": parse_threads(args.threads)}
    if args.z:
        flags["model_options"] = {"z_dist": args.z}
    cfg = toy_config(args.data, flags, args.overrides, frames=args.frames)
    out = Path(args.out or f"runs/toy-{Path(args.data).stem}")
    if args.compare:
        runs = compare_toy(cfg, args.compare, out)
        for label, run in runs.items():
            print(_toy_summary(label, run))
        print(f"Side by side: {out}/compare.gif, {out}/compare.png, {out}/compare_curves.png")
    else:
        run = train_toy(cfg, out)
        print(_toy_summary(cfg.task_options.get("loss", "nonsaturating"), run))
        print(f"Pictures: {out}/progress.gif, {out}/samples.png, {out}/losses.png, {out}/divergence.png")
    return 0


def _toy_summary(label: str, run: dict) -> str:
    w = f"W1 {run['w1']:.4f}" if "w1" in run else f"sliced W1 {run.get('sw1', float('nan')):.4f}"
    return f"{label}: step {run['step']}, {w}, JS {run.get('js', float('nan')):.4f} -> {run['run_dir']}/"
