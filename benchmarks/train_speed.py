"""Training speed of ganforge against a plain PyTorch loop of the same DCGAN, side by side in one run.

    .venv/bin/python benchmarks/train_speed.py                 # dcgan-64 (3x64x64) and dcgan-28 (1x28x28)
    .venv/bin/python benchmarks/train_speed.py --sizes 64 --steps 5 --rounds 3 --json bench.json

For each image size four variants train the same networks (batch 64, ngf = ndf = 64) with the same
algorithm, GANTask's nonsaturating GAN: one D update on a real batch and a fake batch made without
gradients, then one G update on fresh noise with D's weights frozen. One step = one D + one G update.

    plain_fp32     the loop in this file: nn.Sequential G/D as in pytorch/examples, in-memory batches
    ganforge_fp32  ganforge's Trainer.train_step, built by build_run (batch fetch and uint8 -> float
                   conversion included)
    ganforge_bf16  the same with precision=bf16 (torch.autocast on the CPU)
    plain_bf16     the plain loop under torch.autocast(bf16), for reference

After warm-up every round times ``--steps`` steps of each variant in turn, the order rotating from
round to round so that drift of the machine touches every variant alike. The medians over the rounds
are compared; the best rounds are shown too (on a shared machine they are the least disturbed ones).
Targets (the loop adds no overhead): ganforge_fp32 >= 0.97x plain_fp32, ganforge_bf16 >= 1.3x
plain_fp32 (only on a CPU with AVX512-BF16 or AMX: elsewhere bf16 is emulated, and precision=auto trains
in fp32). FLOPs of one step are counted with torch.utils.flop_counter (convolutions and matmuls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganforge.config import resolve_config
from ganforge.data import DATASETS, ImageData
from ganforge.train.precision import cpu_has_native_bf16
from ganforge.train.run import build_run

NZ, LR, BETAS = 100, 2e-4, (0.5, 0.999)
VARIANTS = ("plain_fp32", "ganforge_fp32", "ganforge_bf16", "plain_bf16")
TARGETS = {"ganforge_fp32": 0.97, "ganforge_bf16": 1.3}  # minimum images/s relative to plain_fp32
CHANNELS = {64: 3, 28: 1}  # dcgan-64 is RGB (pytorch/examples), dcgan-28 grayscale (Fashion-MNIST demo)


# --------------------------------------------------------------------------- the plain PyTorch loop
def base_and_layers(image_size: int) -> tuple[int, int]:
    """64 -> (4, 4): a 4x4 base and 4 stride-2 layers; 28 -> (7, 2)."""
    base, n = image_size, 0
    while base not in (4, 7):
        if base % 2 or base < 4:
            raise SystemExit(f"image size {image_size} is not of the form 4*2^n or 7*2^n")
        base, n = base // 2, n + 1
    return base, n


def plain_generator(image_size: int, channels: int, ngf: int = 64) -> nn.Sequential:
    """pytorch/examples netG; at 64: ConvT nz->512 4x4, 512->256, 256->128, 128->64, 64->C, Tanh."""
    base, n = base_and_layers(image_size)
    ch = ngf * 2 ** (n - 1)
    layers = [nn.ConvTranspose2d(NZ, ch, base, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
    for _ in range(n - 1):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2),
                   nn.ReLU(True)]
        ch //= 2
    layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def plain_discriminator(image_size: int, channels: int, ndf: int = 64) -> nn.Sequential:
    """pytorch/examples netD, ending in logits instead of a Sigmoid; at 64: C->64->128->256->512->1."""
    base, n = base_and_layers(image_size)
    layers = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    ch = ndf
    for _ in range(n - 1):
        layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                   nn.LeakyReLU(0.2, True)]
        ch *= 2
    layers += [nn.Conv2d(ch, 1, base, 1, 0, bias=False), nn.Flatten(0)]
    return nn.Sequential(*layers)


def weights_init(m: nn.Module) -> None:
    """pytorch/examples: conv weights N(0, 0.02), batch-norm weights N(1, 0.02) and biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def make_plain(size: int, channels: int, batch_size: int, bf16: bool, device: str = "cpu",
               width: int = 64, d_width: int | None = None) -> tuple[Callable[[], None], dict]:
    """One step of the plain loop as a function, and its networks (ngf = ``width``, ndf = ``d_width``, by default
    ``width`` too) on ``device``."""
    G, D = plain_generator(size, channels, width), plain_discriminator(size, channels, d_width or width)
    G.apply(weights_init)
    D.apply(weights_init)
    G.to(device)
    D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    reals = [(torch.rand(batch_size, channels, size, size) * 2 - 1).to(device) for _ in range(8)]  # in [-1, 1]
    device_type = torch.device(device).type
    autocast = (lambda: torch.autocast(device_type, dtype=torch.bfloat16)) if bf16 else nullcontext
    count = 0

    def step() -> None:
        nonlocal count
        real = reals[count % len(reals)]
        count += 1
        # D update: real batch, and a fake batch made without gradients
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            with torch.no_grad():
                fake = G(torch.randn(batch_size, NZ, 1, 1, device=device))
            loss_d = F.softplus(-D(real).float()).mean() + F.softplus(D(fake).float()).mean()
        loss_d.backward()
        opt_d.step()
        # G update: fresh noise, D frozen so that only G's gradients are computed
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        with autocast():
            loss_g = F.softplus(-D(G(torch.randn(batch_size, NZ, 1, 1, device=device))).float()).mean()
        loss_g.backward()
        opt_g.step()

    return step, {"G": G, "D": D}


# --------------------------------------------------------------------------- ganforge
RANDOM_IMAGES = 2048


def random_images(root: str | None, split: str) -> ImageData:
    """The "random" dataset: RANDOM_IMAGES uniform uint8 RGB images of 64x64 (converted to the run's
    image_size and channels by load_dataset), the same for every split."""
    g = torch.Generator().manual_seed(0)
    return ImageData(torch.randint(0, 256, (RANDOM_IMAGES, 3, 64, 64), dtype=torch.uint8, generator=g), name="random")


if "random" not in DATASETS:
    DATASETS.register("random", random_images)


def make_ganforge(size: int, channels: int, batch_size: int, precision: str, run_dir: str, device: str = "cpu",
                  preset: str | None = None, **flags) -> tuple[Callable[[], None], dict]:
    """One step of ganforge's Trainer (built by build_run, as ganforge.train does), and its networks.

    Without ``preset`` the networks are dcgan with ngf = ndf = 64; with one, the preset's model and
    training settings, on the "random" data. ``flags`` override both (``channels_last=True`` ...)."""
    base = {} if preset else {"model": "dcgan", "model_options": {"ngf": 64, "ndf": 64}}
    cfg = resolve_config(preset=preset, flags={
        **base, "data": "random", "image_size": size, "channels": channels, "batch_size": batch_size,
        "precision": precision, "device": device, "progress": False, "steps": 10**6, **flags})
    run = build_run(cfg, run_dir, write=False)
    return run.trainer.train_step, run.task.nets


# --------------------------------------------------------------------------- the CPU's peak
def cpu_peaks(threads: int, peak_fp32: float | None, peak_bf16: float | None) -> dict:
    """Peak GFLOP/s = cores x GHz x FLOP/cycle/core, from /proc/cpuinfo (model, flags, "cpu MHz")."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    vendor = info.get("vendor_id", "")
    ghz = float(info.get("cpu MHz", 0) or 0) / 1000
    if "avx512f" in flags and vendor == "AuthenticAMD":
        fp32, why32 = 32, "AVX-512 on AMD Zen 4, executed as 2 x 256-bit: 2 FMA x 8 lanes x 2"
    elif "avx512f" in flags:
        fp32, why32 = 64, "AVX-512 with 2 FMA units x 16 fp32 lanes x 2 FLOP"
    elif "avx2" in flags and "fma" in flags:
        fp32, why32 = 32, "AVX2 with 2 FMA units x 8 fp32 lanes x 2 FLOP"
    else:
        fp32, why32 = 8, "SSE, no FMA: 2 units x 4 lanes"
    if "amx_bf16" in flags:
        bf16, why16 = 1024, "AMX-BF16 tile unit, 1024 bf16 FLOP/cycle"
    elif "avx512_bf16" in flags:
        bf16, why16 = 2 * fp32, "AVX512-BF16 dot products, twice the fp32 rate"
    else:
        bf16, why16 = fp32, "no bf16 units: the fp32 rate"
    out = {"model": info.get("model name", "unknown"), "vendor": vendor, "ghz": ghz, "cores": threads,
           "fp32_flop_per_cycle": fp32, "bf16_flop_per_cycle": bf16,
           "peak_fp32_gflops": peak_fp32 or threads * ghz * fp32,
           "peak_bf16_gflops": peak_bf16 or threads * ghz * bf16}
    cores = f"{threads} cores x {ghz:.2f} GHz"
    src32 = "given with --peak-gflops" if peak_fp32 else f"{cores} x {fp32} ({why32})"
    src16 = "given with --peak-bf16-gflops" if peak_bf16 else f"{cores} x {bf16} ({why16})"
    out["notes"] = [f"peak fp32 {out['peak_fp32_gflops']:.0f} GFLOP/s = {src32}",
                    f"peak bf16 {out['peak_bf16_gflops']:.0f} GFLOP/s = {src16}",
                    "assumed: one thread per physical core, the clock of /proc/cpuinfo 'cpu MHz' (no turbo)"]
    return out


# --------------------------------------------------------------------------- measuring
def count_flops(step: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def same_shapes(a: nn.Module, b: nn.Module) -> bool:
    return [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


def time_rounds(steps: dict[str, Callable[[], None]], rounds: int, steps_per_round: int, warmup: int,
                images_per_step: int, sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds of ``steps_per_round`` calls of each step function, per round, measured side by side.

    First ``warmup`` untimed calls of each; then every round times each variant in turn, the order rotating
    from round to round so that drift of the machine touches every variant alike. ``sync`` waits for queued
    work (``torch.cuda.synchronize`` on a GPU) before each clock reading. Prints images/s per round."""
    names = list(steps)
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    sync()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            for _ in range(steps_per_round):
                steps[name]()
            sync()
            seconds[name].append(time.perf_counter() - t0)
        rates = "  ".join(f"{n} {images_per_step * steps_per_round / seconds[n][-1]:.1f}" for n in names)
        print(f"  round {r + 1}/{rounds} images/s: {rates}", flush=True)
    return seconds


def bench_size(size: int, args: argparse.Namespace, peaks: dict) -> dict:
    channels, b = CHANNELS[size], args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        made = {
            "plain_fp32": make_plain(size, channels, b, bf16=False),
            "ganforge_fp32": make_ganforge(size, channels, b, "fp32", tmp + "/fp32"),
            "ganforge_bf16": make_ganforge(size, channels, b, "bf16", tmp + "/bf16"),
            "plain_bf16": make_plain(size, channels, b, bf16=True),
        }
        plain_nets, gf_nets = made["plain_fp32"][1], made["ganforge_fp32"][1]
        for name in ("G", "D"):
            if not same_shapes(plain_nets[name], gf_nets[name]):
                raise SystemExit(f"dcgan-{size}: the plain {name} differs from ganforge's {name}")
        params = {n: sum(p.numel() for p in net.parameters()) for n, net in plain_nets.items()}
        steps = {name: fn for name, (fn, _) in made.items()}
        flops = count_flops(steps["plain_fp32"])
        print(f"\ndcgan-{size}: {channels}x{size}x{size}, batch {b}, G {params['G']:,} / D {params['D']:,} "
              f"parameters, {flops / 1e9:.2f} GFLOP per step (one D + one G update)", flush=True)

        seconds = time_rounds(steps, args.rounds, args.steps, args.warmup, b)

    results = {}
    print(f"  {'variant':<14} {'images/s':>9} {'best':>7} {'worst':>7} {'ms/step':>8} {'GFLOP/s':>8}  of peak")
    for name in VARIANTS:
        rates = [b * args.steps / s for s in seconds[name]]
        med = statistics.median(rates)
        gflops = flops / 1e9 * med / b
        kind = "bf16" if name.endswith("bf16") else "fp32"
        frac = gflops / peaks[f"peak_{kind}_gflops"] if peaks[f"peak_{kind}_gflops"] else float("nan")
        results[name] = {"images_per_s": med, "images_per_s_best": max(rates), "images_per_s_rounds": rates,
                         "ms_per_step": 1000 * b / med, "gflops": gflops, "fraction_of_peak": frac, "peak": kind}
        print(f"  {name:<14} {med:>9.1f} {max(rates):>7.1f} {min(rates):>7.1f} {1000 * b / med:>8.0f} "
              f"{gflops:>8.1f}  {100 * frac:5.1f}% of {kind} peak")

    def ratio(num: str, den: str) -> tuple[float, float]:  # of the medians, of the best rounds
        x, y = results[num], results[den]
        return x["images_per_s"] / y["images_per_s"], x["images_per_s_best"] / y["images_per_s_best"]

    ratios, passed = {}, {}
    for a, ref in [(n, "plain_fp32") for n in VARIANTS[1:]] + [("ganforge_bf16", "plain_bf16")]:
        med, best = ratios[f"{a}/{ref}"] = ratio(a, ref)
        target = TARGETS.get(a) if ref == "plain_fp32" else None
        verdict = "(reference)"
        if a == "ganforge_bf16" and target is not None and not cpu_has_native_bf16():
            target, verdict = None, "(no target: emulated bf16)"  # precision=auto trains such a CPU in fp32
        if target is not None:
            passed[a] = med >= target
            verdict = f"(target >= {target:.2f})  {'PASS' if passed[a] else 'FAIL'}"
        print(f"  {a + ' / ' + ref:<28} = {med:.3f}  {verdict:<26} best rounds: {best:.3f}")
    load = os.getloadavg()[0]
    if load > args.threads + 0.5:
        print(f"  warning: load average {load:.1f} with {args.threads} threads: other processes share the CPU, "
              "so these numbers are unreliable")
    return {"image_size": size, "channels": channels, "batch_size": b, "params": params,
            "flops_per_step": flops, "variants": results, "ratios_median_best": ratios, "pass": passed,
            "load_average_after": load}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=8, help="timed steps per variant per round (default 8)")
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (default 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sizes", default="64,28", help="comma-separated image sizes: 64 (RGB) and/or 28 (gray)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="default: all cores")
    p.add_argument("--peak-gflops", type=float, default=None, help="the CPU's fp32 peak (default: estimated)")
    p.add_argument("--peak-bf16-gflops", type=float, default=None, help="the CPU's bf16 peak")
    p.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in CHANNELS:
            p.error(f"size {s} is not one of {sorted(CHANNELS)}")

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    peaks = cpu_peaks(threads, args.peak_gflops, args.peak_bf16_gflops)
    print(f"torch {torch.__version__}, {threads} threads, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"CPU: {peaks['model']} ({peaks['vendor']}), {peaks['ghz']:.2f} GHz")
    for note in peaks["notes"]:
        print(f"  {note}")
    print(f"{args.rounds} rounds x {args.steps} steps per variant after {args.warmup} warm-up steps; "
          f"images/s = batch x steps / seconds, median over rounds")

    results = [bench_size(s, args, peaks) for s in sizes]
    if args.json is not None:
        env = {"torch": torch.__version__, "threads": threads, "cpu": peaks, "steps": args.steps,
               "rounds": args.rounds, "warmup": args.warmup}
        args.json.write_text(json.dumps({"env": env, "results": results}, indent=2))
        print(f"\nwrote {args.json}")
    ok = all(all(r["pass"].values()) for r in results)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
