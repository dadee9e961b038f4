"""pix2pix training speed: ganforge's Trainer against a plain PyTorch loop of the same step, side by side.

    .venv/bin/python benchmarks/pix2pix_speed.py                       # 256x256 batch 1 (reference setup)
    .venv/bin/python benchmarks/pix2pix_speed.py --size 32 --netG unet_32 --batch-size 16 --channels 1

One step is the reference's: fake = G(A) once; D update on concat(A, B) and concat(A, fake.detach())
with the loss halved; G update on the vanilla GAN loss of D(concat(A, fake)) + 100 * L1(fake, B).

    plain      the loop in this file on in-memory float batches (the networks are ganforge's U-Net and
               PatchGAN, identical in both variants: this measures the loop, not the layers)
    ganforge   Trainer.train_step with the pix2pix task, built by build_run on the paired dataset
               "random" registered here (paired batch fetch with random crop/flip and the uint8 -> float
               conversion included)

After warm-up, each round times --steps steps of each variant in turn (order alternating, by
train_speed.time_rounds); medians of the rounds are compared. Target: ganforge >= 0.97x plain.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ganforge.config import resolve_config  # noqa: E402
from ganforge.data.pairs import PAIRED_DATASETS, PairedSource, SizeRule  # noqa: E402
from ganforge.families import build_model  # noqa: E402
from ganforge.train.run import build_run  # noqa: E402
from train_speed import time_rounds  # noqa: E402


def make_plain(nets: dict, size: int, channels: int, batch: int, device: str = "cpu"):
    """One step of the plain loop as a function; moves ``nets`` to ``device``."""
    G, D = nets["G"].to(device), nets["D"].to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    pairs = [tuple((torch.rand(batch, channels, size, size) * 2 - 1).to(device) for _ in "AB") for _ in range(4)]
    count = 0

    def step() -> None:
        nonlocal count
        A, B = pairs[count % len(pairs)]
        count += 1
        fake = G(A)
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        r, f = D(torch.cat([A, B], 1)), D(torch.cat([A, fake.detach()], 1))
        loss_d = 0.5 * (F.softplus(-r).mean() + F.softplus(f).mean())
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-D(torch.cat([A, fake], 1))).mean() + 100 * (fake - B).abs().mean()
        loss_g.backward()
        opt_g.step()

    return step


def register_random_pairs(channels: int, n: int) -> None:
    """The paired dataset "random": ``n`` pairs of uniform uint8 images with ``channels`` channels on both
    sides, stored at the load size the run asks for (286/256 x the crop), the same for every split."""

    def load(root: str | None, split: str, size_rule: SizeRule):
        side = size_rule(256).load
        g = torch.Generator().manual_seed(0)
        A, B = (torch.randint(0, 256, (n, channels, side, side), dtype=torch.uint8, generator=g) for _ in "AB")
        return A, B, [str(i) for i in range(n)]

    if "random" not in PAIRED_DATASETS:
        PAIRED_DATASETS.register("random", PairedSource(load, "uniform noise pairs (benchmarks)"))


def make_ganforge(options: dict, size: int, channels: int, batch: int, run_dir: str, device: str = "cpu"):
    """One step of ganforge's Trainer with the pix2pix task (built by build_run, as ganforge.train does)."""
    register_random_pairs(channels, max(8, 2 * batch))
    cfg = resolve_config(flags={
        "model": "pix2pix", "model_options": {k: options[k] for k in ("netG", "ngf", "ndf")}, "data": "random",
        "image_size": size, "channels": channels, "batch_size": batch, "loss": "vanilla", "device": device,
        "progress": False, "steps": 10**6})
    run = build_run(cfg, run_dir, write=False)
    return run.trainer.train_step, run.task.nets


def compare(netG: str, size: int, batch: int, channels: int = 3, ngf: int = 64, steps: int = 5, rounds: int = 4,
            warmup: int = 2, device: str = "cpu", sync: Callable[[], None] = lambda: None) -> dict:
    """ganforge's pix2pix step against the plain loop with the same networks, side by side: the medians
    over the rounds of images/s and the ratio ganforge / plain (printed, and returned)."""
    options = {"netG": netG, "ngf": ngf, "ndf": 64, "image_size": size, "input_nc": channels, "output_nc": channels}
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        gf_step, gf_nets = make_ganforge(options, size, channels, batch, tmp, device)
        plain_step = make_plain(build_model("pix2pix", options), size, channels, batch, device)
        params = {k: sum(q.numel() for q in v.parameters()) for k, v in gf_nets.items()}
        print(f"pix2pix {netG} ngf {ngf}, {channels}x{size}x{size}, batch {batch} on {device}: "
              f"G {params['G']:,} / D {params['D']:,} parameters", flush=True)
        seconds = time_rounds({"plain": plain_step, "ganforge": gf_step}, rounds, steps, warmup, batch, sync)
    rates = {k: statistics.median(batch * steps / s for s in v) for k, v in seconds.items()}
    ratio = rates["ganforge"] / rates["plain"]
    for name in ("plain", "ganforge"):
        print(f"  {name:<8} {rates[name]:.2f} images/s ({1000 * batch / rates[name]:.1f} ms/step)")
    print(f"  ganforge / plain = {ratio:.3f} (target >= 0.97) {'PASS' if ratio >= 0.97 else 'FAIL'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    return {"netG": netG, "image_size": size, "batch_size": batch, "channels": channels, "ngf": ngf,
            "params": params, "images_per_s": rates, "ms_per_step": {k: 1000 * batch / v for k, v in rates.items()},
            "ganforge_over_plain": ratio}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--netG", default="unet_256")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads")
    compare(args.netG, args.size, args.batch_size, args.channels, args.ngf, args.steps, args.rounds, args.warmup)


if __name__ == "__main__":
    main()
