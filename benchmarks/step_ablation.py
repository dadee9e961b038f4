"""What each speed change of the demo's training step buys, as cumulative ablation rows side by side in one run.

    .venv/bin/python benchmarks/step_ablation.py                      # fmnist-demo, 2 threads
    .venv/bin/python benchmarks/step_ablation.py --preset cgan-fmnist --threads 1 --rounds 8

Rows, each the one before plus one change (the same networks, data and algorithm; one step = one D and one G
update of the preset's Trainer, batch fetch and EMA update included):

    before          the step as it was before issue 24's second round: the generator's first layer run by the
                    deconvolution kernel, Adam's for-loop implementation, the default memory layout
    + matmul        the first layer (a 1x1 latent to a base x base map) as the matrix product it is
                    (ganforge.models.dcgan.LatentConvTranspose2d)
    + fused Adam    one fused kernel for every parameter (ganforge.train.optim)
    + channels_last the preset's memory format (channels_last: true), i.e. the preset as it is now

The rounds rotate the order (train_speed.time_rounds) so that drift of a shared machine touches every row
alike; medians and best rounds are printed with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ganforge.config import resolve_config  # noqa: E402
from ganforge.models.dcgan import LatentConvTranspose2d  # noqa: E402
from ganforge.train.run import build_run  # noqa: E402
from train_speed import time_rounds  # noqa: E402

ROWS = ("before", "+ matmul", "+ fused Adam", "+ channels_last")


def deconvolution_first_layer(net: nn.Module) -> None:
    """Put the plain deconvolution back in place of LatentConvTranspose2d (sharing its weight)."""
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, LatentConvTranspose2d):
                plain = nn.ConvTranspose2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                           child.padding, bias=child.bias is not None)
                plain.weight = child.weight
                if child.bias is not None:
                    plain.bias = child.bias
                setattr(parent, name, plain.to(memory_format=torch.contiguous_format))


def make_step(preset: str, row: str, tmp: str):
    keep = ROWS.index(row)
    overrides = ["progress=false", "sample_every=0", "ckpt_every=0", "steps=1000000", "health_every=0"]
    if keep < 3:
        overrides.append("channels_last=false")
    trainer = build_run(resolve_config(preset, overrides=overrides), tmp, write=False, evaluate=False).trainer
    if keep < 1:
        for net in [*trainer.raw.values(), *(e.module for e in trainer.ema.values())]:
            deconvolution_first_layer(net)
    if keep < 2:
        for name, opt in trainer.optimizers.items():
            group = opt.param_groups[0]
            trainer.optimizers[name] = type(opt)([p for g in opt.param_groups for p in g["params"]], lr=group["lr"],
                                                 betas=group["betas"], weight_decay=group["weight_decay"],
                                                 foreach=False)
    return trainer.train_step, trainer.cfg.batch_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fmnist-demo")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=30, help="steps per round and row")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        steps, batch = {}, 64
        for i, row in enumerate(ROWS):
            steps[row], batch = make_step(args.preset, row, f"{tmp}/{i}")
        seconds = time_rounds(steps, args.rounds, args.steps, warmup=10, images_per_step=batch)
    print(f"\n{args.preset}: batch {batch}, {args.threads} threads, {args.rounds} rounds of {args.steps} steps; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    base = statistics.median(seconds[ROWS[0]])
    before = base
    print(f"  {'row':<16} {'img/s median':>12} {'best':>8} {'vs row above':>13} {'vs before':>10}")
    for row in ROWS:
        med = statistics.median(seconds[row])
        rate = batch * args.steps / med
        best = batch * args.steps / min(seconds[row])
        print(f"  {row:<16} {rate:>12.0f} {best:>8.0f} {before / med:>13.3f} {base / med:>10.3f}")
        before = med


if __name__ == "__main__":
    main()
