"""CycleGAN training speed: ganforge's Trainer against a plain PyTorch loop of the same step, side by side.

    .venv/bin/python benchmarks/cyclegan_speed.py                      # 256x256 batch 1 resnet_9blocks (reference)
    .venv/bin/python benchmarks/cyclegan_speed.py --size 32 --netG resnet_6blocks --ngf 32 --batch-size 16 --channels 1

One step is the reference's (models/cycle_gan_model.py): fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B),
rec_B = G_A(fake_A); one Adam over G_A + G_B with both Ds frozen on LSGAN(D_A(fake_B), 1) + LSGAN(D_B(fake_A), 1)
+ 10 |rec_A - A| + 10 |rec_B - B| + 0.5 * (10 |G_A(B) - B| + 10 |G_B(A) - A|); then one Adam over D_A + D_B on
0.5 * (LSGAN(D(real), 1) + LSGAN(D(pool(fake)), 0)) for each D, with image pools of 50.

    plain      the loop in this file on in-memory float batches, with its own image pool (the networks are
               ganforge's ResNet generators and PatchGANs, identical in both variants: this measures the loop)
    ganforge   Trainer.train_step with the cyclegan task, built by build_run on the unaligned dataset
               "random" registered here (batch fetch with random B index, per-image crop and flip, and the
               uint8 -> float conversion included)

After warm-up, each round times --steps steps of each variant in turn (order alternating); medians of the
rounds are compared. Target: ganforge >= 0.97x plain.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from ganforge.config import resolve_config
from ganforge.data.pairs import SizeRule
from ganforge.data.unaligned import UNALIGNED_DATASETS, Domains, UnalignedSource
from ganforge.families import build_model
from ganforge.train.run import build_run


class PlainPool:
    """The reference's util/image_pool.py, with Python's random as there."""

    def __init__(self, size: int = 50) -> None:
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


def make_plain(nets: dict, size: int, channels: int, batch: int):
    G_A, G_B, D_A, D_B = nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"]
    opt_g = torch.optim.Adam(list(G_A.parameters()) + list(G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pool_A, pool_B = PlainPool(), PlainPool()
    data = [(torch.rand(batch, channels, size, size) * 2 - 1, torch.rand(batch, channels, size, size) * 2 - 1)
            for _ in range(4)]
    count = 0

    def mse(x: torch.Tensor, target: float) -> torch.Tensor:
        return F.mse_loss(x, torch.full_like(x, target))

    def step() -> None:
        nonlocal count
        A, B = data[count % len(data)]
        count += 1
        fake_B = G_A(A)
        rec_A = G_B(fake_B)
        fake_A = G_B(B)
        rec_B = G_A(fake_A)
        D_A.requires_grad_(False)
        D_B.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        loss_g = (mse(D_A(fake_B), 1.0) + mse(D_B(fake_A), 1.0) + 10 * (rec_A - A).abs().mean()
                  + 10 * (rec_B - B).abs().mean() + 5 * (G_A(B) - B).abs().mean() + 5 * (G_B(A) - A).abs().mean())
        loss_g.backward()
        opt_g.step()
        D_A.requires_grad_(True)
        D_B.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        f_B, f_A = pool_B.query(fake_B), pool_A.query(fake_A)
        loss_d = (0.5 * (mse(D_A(B), 1.0) + mse(D_A(f_B), 0.0)) + 0.5 * (mse(D_B(A), 1.0) + mse(D_B(f_A), 0.0)))
        loss_d.backward()
        opt_d.step()

    return step


def register_random_domains(channels: int, n: int) -> None:
    """The unaligned dataset "random": ``n`` uniform uint8 images per domain with ``channels`` channels, stored
    at the load size the run asks for (286/256 x the crop), the same for every split."""

    def load(root: str | None, split: str, size_rule: SizeRule) -> Domains:
        side = size_rule(256).load
        g = torch.Generator().manual_seed(0)
        A, B = (torch.randint(0, 256, (n, channels, side, side), dtype=torch.uint8, generator=g) for _ in "AB")
        names = [str(i) for i in range(n)]
        return Domains(A, B, names, names)

    if "random" not in UNALIGNED_DATASETS:
        UNALIGNED_DATASETS.register("random", UnalignedSource(load, "uniform noise domains (benchmarks)"))


def make_ganforge(options: dict, size: int, channels: int, batch: int, run_dir: str):
    """One step of ganforge's Trainer with the cyclegan task (built by build_run, as ganforge.train does)."""
    register_random_domains(channels, max(8, 2 * batch))
    cfg = resolve_config(flags={
        "model": "cyclegan", "model_options": {k: options[k] for k in ("netG", "ngf", "ndf")}, "data": "random",
        "image_size": size, "channels": channels, "batch_size": batch, "device": "cpu", "progress": False,
        "steps": 10**6, "n_samples": 1})
    run = build_run(cfg, run_dir, write=False)
    return run.trainer.train_step, run.task.nets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--netG", default="resnet_9blocks")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    options = {"netG": args.netG, "ngf": args.ngf, "ndf": 64, "image_size": args.size,
               "input_nc": args.channels, "output_nc": args.channels}
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        gf_step, gf_nets = make_ganforge(options, args.size, args.channels, args.batch_size, tmp)
        plain_nets = build_model("cyclegan", options)
        plain_step = make_plain(plain_nets, args.size, args.channels, args.batch_size)
        params = {k: sum(q.numel() for q in v.parameters()) for k, v in gf_nets.items()}
        print(f"cyclegan {args.netG} ngf {args.ngf}, {args.channels}x{args.size}x{args.size}, batch {args.batch_size}: "
              + ", ".join(f"{k} {v:,}" for k, v in params.items()) + f" parameters, {args.threads} threads",
              flush=True)
        steps = {"plain": plain_step, "ganforge": gf_step}
        for fn in steps.values():
            for _ in range(args.warmup):
                fn()
        seconds: dict[str, list[float]] = {k: [] for k in steps}
        for r in range(args.rounds):
            for name in (("plain", "ganforge") if r % 2 == 0 else ("ganforge", "plain")):
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    steps[name]()
                seconds[name].append(time.perf_counter() - t0)
            print(f"  round {r + 1}/{args.rounds} images/s: " + "  ".join(
                f"{k} {args.batch_size * args.steps / v[-1]:.3f}" for k, v in seconds.items()), flush=True)
    rates = {k: statistics.median(args.batch_size * args.steps / s for s in v) for k, v in seconds.items()}
    ratio = rates["ganforge"] / rates["plain"]
    print(f"  plain    {rates['plain']:.3f} images/s ({1000 * args.batch_size / rates['plain']:.0f} ms/step)")
    print(f"  ganforge {rates['ganforge']:.3f} images/s ({1000 * args.batch_size / rates['ganforge']:.0f} ms/step)")
    print(f"  ganforge / plain = {ratio:.3f} (target >= 0.97) {'PASS' if ratio >= 0.97 else 'FAIL'}; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
