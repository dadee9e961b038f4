"""The GPU path in one run of under 5 minutes: step times, a pix2pix step, DDP weights; on a machine
without CUDA the same sections at small sizes on the CPU (``--quick``: tiny ones, for the tests).

On the GPU machine, from the repository root (nothing to install: when ganforge is not installed the
script imports it from the repository's src/, so that machine's Python needs only ganforge's
dependencies, which its PyTorch image holds), the one command line:

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --json gpu_check.json

Here: ``.venv/bin/python benchmarks/gpu_check.py [--quick] [--json OUT] [--sections demo,ddp]``.

Sections, each printed side by side in one run:

demo     The demo's training step (preset fmnist-demo: its settings and its DCGAN, the EMA update
         included, without its clusters, so that the plain loop has the same networks; 1x28x28
         uniform-noise images, batch 64) under fp32, bf16 autocast, fp16 AMP
         (GradScaler), bf16 + channels_last and bf16 + torch.compile, with the plain loop of
         train_speed.py (same DCGAN, no EMA) in fp32 and bf16 as the reference: images/s, median of
         rounds in rotating order (train_speed.time_rounds), as ratios to ganforge fp32 and to plain fp32.
pix2pix  The reference pix2pix step (unet_256 + basic PatchGAN, 3x256x256, batch 1 and 16) against a
         plain loop of the same networks (pix2pix_speed.compare).
ddp      Two processes under torchrun train the demo 20 steps with DDP, each on its own batches; the
         weights (parameters and buffers) of both ranks must then be bit-equal, and must have moved.
         Backend: NCCL with 2 or more GPUs; with one GPU gloo on that GPU (NCCL refuses two ranks on one
         GPU; gloo's all_reduce and broadcast, all DDP needs, take CUDA tensors); without CUDA gloo on
         the CPU. The line says which ran.
sync_bn  With 2 or more GPUs: SyncBatchNorm under two NCCL processes against one process with the whole
         batch, and ``ganforge train ... sync_bn=true`` under torchrun; otherwise reported as not run.

Without CUDA the sections run at small sizes (pix2pix 3x32x32 unet_32; 47 s past the imports on 2 cores
with a load average of 8, most of it the DDP processes starting); ``--quick`` makes them tiny and uses one
thread (5 s of work past the imports). fp16 AMP then says "n/a (needs CUDA)" and torch.compile is left out
(inductor's C++ build alone took 46 s for the demo's networks). ``--json OUT`` writes every figure. The
exit status is 1 when a section fails or the DDP weights differ; ``--threads`` as ganforge's own commands.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
try:
    import ganforge  # noqa: F401
    FROM_SOURCE = False
except ImportError:  # a bare GPU machine: the repository's own source
    sys.path.insert(0, str(SRC))
    FROM_SOURCE = True
sys.path.insert(0, str(HERE))
from ganforge.config import load_preset  # noqa: E402
from ganforge.threads import add_threads_option, use_threads  # noqa: E402
from pix2pix_speed import compare  # noqa: E402
from train_speed import make_ganforge, make_plain, same_shapes, time_rounds  # noqa: E402

PRESET = "fmnist-demo"
NEEDS_CUDA = "n/a (needs CUDA)"
# name: (precision, extra config) of ganforge's step; the plain loop's two variants come first
DEMO_VARIANTS = {"fp32": ("fp32", {}), "bf16": ("bf16", {}), "fp16_amp": ("fp16", {}),
                 "bf16_channels_last": ("bf16", {"channels_last": True}), "bf16_compile": ("bf16", {"compile": True})}
BATCH = 16  # sync_bn: the whole batch; each of the two processes takes half
TOLERANCE = 1e-4


def sizes(cuda: bool, quick: bool) -> dict:
    """How big and how long each section is: the GPU's, the CPU's, the CPU's with --quick."""
    if cuda:
        return {"demo_batch": 64, "demo_rounds": 6, "demo_steps": 20, "demo_warmup": 5,
                "pix2pix": [(256, "unet_256", 1), (256, "unet_256", 16)], "pix2pix_ngf": 64,
                "pix2pix_rounds": 4, "pix2pix_steps": 5, "pix2pix_warmup": 2, "ddp_steps": 20, "ddp_batch": 32}
    if quick:
        return {"demo_batch": 16, "demo_rounds": 2, "demo_steps": 1, "demo_warmup": 1,
                "pix2pix": [(32, "unet_32", 1), (32, "unet_32", 2)], "pix2pix_ngf": 8,
                "pix2pix_rounds": 2, "pix2pix_steps": 1, "pix2pix_warmup": 1, "ddp_steps": 2, "ddp_batch": 8}
    return {"demo_batch": 64, "demo_rounds": 4, "demo_steps": 2, "demo_warmup": 2,
            "pix2pix": [(32, "unet_32", 1), (32, "unet_32", 4)], "pix2pix_ngf": 16,
            "pix2pix_rounds": 3, "pix2pix_steps": 2, "pix2pix_warmup": 1, "ddp_steps": 5, "ddp_batch": 16}


def cuda_sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def environment() -> dict:
    cuda = torch.cuda.is_available()
    env = {"torch": torch.__version__, "python": platform.python_version(), "cuda": cuda,
           "gpus": torch.cuda.device_count() if cuda else 0, "threads": torch.get_num_threads(),
           "load_average": os.getloadavg()[0], "ganforge_from_source": FROM_SOURCE, "processor": platform.processor()}
    if cuda:
        env.update(gpu=torch.cuda.get_device_name(0), cuda_version=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), cudnn_tf32=torch.backends.cudnn.allow_tf32,
                   matmul_tf32=torch.backends.cuda.matmul.allow_tf32, cudnn_benchmark=torch.backends.cudnn.benchmark)
    return env


# --------------------------------------------------------------------------- demo
def demo(dev: str, size: dict, quick: bool) -> dict:
    preset = load_preset(PRESET)
    # the demo's DCGAN without its clusters (a self-conditioned cgan's label input): the plain loop's networks
    opts = {k: v for k, v in preset.get("model_options", {}).items() if k in ("nz", "ngf", "ndf")}
    settings = {k: v for k, v in preset.items() if k not in ("model", "model_options", "data", "batch_size", "steps",
                                                             "precision")}
    (width, d_width), b, cuda = (opts.get(k, 64) for k in ("ngf", "ndf")), size["demo_batch"], dev == "cuda"
    steps, skipped, built = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for bf16 in (False, True):
            name = f"plain_{'bf16' if bf16 else 'fp32'}"
            steps[name], built[name] = make_plain(28, 1, b, bf16, dev, width, d_width)
        for name, (precision, extra) in DEMO_VARIANTS.items():
            if precision == "fp16" and not cuda:
                skipped[name] = NEEDS_CUDA
                continue
            if extra.get("compile") and not cuda:
                skipped[name] = "skipped on the CPU (inductor's C++ build alone takes about a minute)"
                continue
            try:
                steps[name], built[name] = make_ganforge(28, 1, b, precision, f"{tmp}/{name}", dev, None, **{
                    **settings, "eval_every": 0, "model": "dcgan", "model_options": opts, **extra})
                t0 = time.perf_counter()
                steps[name]()  # the first step: compiles under torch.compile
                cuda_sync()
                if extra.get("compile"):
                    print(f"  {name}: first step (compiling) {time.perf_counter() - t0:.1f} s", flush=True)
            except Exception as e:  # one variant's failure is a result, not the end of the run
                steps.pop(name, None)
                skipped[name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        plain_matches = all(same_shapes(built["plain_fp32"][k], built["fp32"][k]) for k in ("G", "D"))
        params = {k: sum(p.numel() for p in net.parameters()) for k, net in built["fp32"].items()}
        print(f"{PRESET}'s dcgan {opts}, 1x28x28, batch {b} on {dev}: G {params['G']:,} / D "
              f"{params['D']:,} parameters; the plain loop's networks {'match' if plain_matches else 'DIFFER'}",
              flush=True)
        seconds = time_rounds(steps, size["demo_rounds"], size["demo_steps"], size["demo_warmup"], b, cuda_sync)
    rates = {k: statistics.median(b * size["demo_steps"] / s for s in v) for k, v in seconds.items()}
    best = {k: max(b * size["demo_steps"] / s for s in v) for k, v in seconds.items()}
    rows = {}
    print(f"  {'variant':<20} {'images/s':>10} {'best':>10} {'ms/step':>8} {'/ fp32':>7} {'/ plain fp32':>12} "
          f"{'/ bf16':>7}")
    for name in ["plain_fp32", "plain_bf16", *DEMO_VARIANTS]:
        if name in skipped:
            rows[name] = {"status": skipped[name]}
            print(f"  {name:<20} {skipped[name]}")
            continue
        r = rates[name]
        row = {"images_per_s": r, "images_per_s_best": best[name], "ms_per_step": 1000 * b / r,
               "over_fp32": r / rates["fp32"], "over_plain_fp32": r / rates["plain_fp32"]}
        if name.startswith("bf16_"):
            row["over_bf16"] = r / rates["bf16"]
        rows[name] = row
        over_bf16 = f"{row['over_bf16']:>7.3f}" if "over_bf16" in row else ""
        print(f"  {name:<20} {r:>10.1f} {best[name]:>10.1f} {row['ms_per_step']:>8.2f} {row['over_fp32']:>7.3f} "
              f"{row['over_plain_fp32']:>12.3f} {over_bf16}")
    return {"preset": PRESET, "model_options": opts, "batch_size": b, "device": dev, "params": params,
            "plain_networks_match": plain_matches, "rounds": size["demo_rounds"], "steps": size["demo_steps"],
            "variants": rows}


# --------------------------------------------------------------------------- pix2pix
def pix2pix(dev: str, size: dict, quick: bool) -> dict:
    runs = [compare(netG, px, batch, 3, size["pix2pix_ngf"], size["pix2pix_steps"], size["pix2pix_rounds"],
                    size["pix2pix_warmup"], dev, cuda_sync) for px, netG, batch in size["pix2pix"]]
    return {"runs": runs}


# --------------------------------------------------------------------------- ddp
def snapshot(nets: dict) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.detach().cpu().clone() for n, net in nets.items() for k, v in net.state_dict().items()}


def ddp_worker(out: str, backend: str, device: str, steps: int, batch: int) -> None:
    """One of two torchrun processes: the demo's run under DDP for ``steps`` steps; writes its weights."""
    import torch.distributed as dist

    if backend == "gloo" and device.startswith("cuda"):  # ganforge would choose NCCL for CUDA
        dist.init_process_group("gloo")
    if device == "cpu":
        torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        precision = load_preset(PRESET).get("precision", "fp32")
        step, nets = make_ganforge(28, 1, batch, precision, tmp, device, PRESET, eval_every=0)
        rank = dist.get_rank()
        initial = snapshot(nets)
        logs = [step() for _ in range(steps)][-1]
        torch.save({"rank": rank, "backend": dist.get_backend(), "device": str(next(nets["G"].parameters()).device),
                    "initial": initial, "final": snapshot(nets), "logs": {k: float(v) for k, v in logs.items()}},
                   Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def torchrun(args: list[str], cpu: bool, timeout: float) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc-per-node 2 ARGS``; output captured."""
    env = dict(os.environ)
    if FROM_SOURCE:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1" if cpu else str(max(1, (os.cpu_count() or 2) // 2)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def ddp_run(backend: str, device: str, size: dict) -> list[dict]:
    """The two ranks' weights, initial weights and last logs after the DDP run under torchrun."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = torchrun([__file__, "--ddp-worker", tmp, backend, device, str(size["ddp_steps"]),
                         str(size["ddp_batch"])], device == "cpu", timeout=120)
        files = [Path(tmp) / f"rank{r}.pt" for r in range(2)]
        if proc.returncode or not all(f.is_file() for f in files):
            print(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise RuntimeError(f"the DDP run ({backend} on {device}) ended with exit status {proc.returncode}")
        return [torch.load(f, weights_only=True) for f in files]


def ddp(dev: str, size: dict, quick: bool) -> dict:
    gpus = torch.cuda.device_count() if dev == "cuda" else 0
    backend, device = ("nccl", "cuda") if gpus >= 2 else ("gloo", "cuda:0") if gpus == 1 else ("gloo", "cpu")
    where = {"nccl": "NCCL, one GPU per rank", "gloo": "gloo, both ranks on cuda:0" if gpus else "gloo on the CPU"}
    print(f"2 processes under torchrun, backend {where[backend]}; the demo's run, batch {size['ddp_batch']} per "
          f"rank, {size['ddp_steps']} steps", flush=True)
    try:
        ranks = ddp_run(backend, device, size)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        if device != "cuda:0":
            raise
        print(f"  {e}; again with gloo on the CPU", flush=True)
        device = "cpu"
        ranks = ddp_run(backend, device, size)
    a, b = ranks[0]["final"], ranks[1]["final"]
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    max_diff = max(((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()),
                   default=0.0)
    moved = max((a[k].double() - ranks[0]["initial"][k].double()).abs().max().item()
                for k in a if a[k].is_floating_point())
    losses = [r["logs"] for r in ranks]
    own_batches = losses[0] != losses[1]
    equal = not unequal and moved > 0 and own_batches
    print(f"  ran: backend {ranks[0]['backend']}, devices {ranks[0]['device']} / {ranks[1]['device']}")
    shown = [", ".join(f"{k} {v:.4f}" for k, v in r.items() if k.startswith("loss")) for r in losses]
    print(f"  last step's losses: rank 0 {shown[0]}; rank 1 {shown[1]} "
          f"({'different: each rank its own batches' if own_batches else 'THE SAME: the ranks saw the same data'})")
    print(f"  weights after {size['ddp_steps']} steps: {len(a) - len(unequal)} of {len(a)} tensors bit-equal on both "
          f"ranks (largest difference {max_diff:.3g}); moved from their start by up to {moved:.3g}")
    ran = f"{ranks[0]['backend']} on {'the CPU' if device == 'cpu' else 'cuda:0' if gpus == 1 else 'one GPU per rank'}"
    print(f"  DDP weights equal on both ranks: {'yes' if equal else 'NO'} ({ran})")
    return {"backend": ranks[0]["backend"], "ran": ran, "devices": [r["device"] for r in ranks], "gpus": gpus,
            "steps": size["ddp_steps"], "batch_per_rank": size["ddp_batch"], "tensors": len(a), "unequal": unequal,
            "max_difference": max_diff, "moved_from_start": moved, "losses": losses, "equal": equal}


# --------------------------------------------------------------------------- sync_bn (2 GPUs)
def sync_bn_worker() -> None:
    """One of two torchrun processes: outputs and gradients of half the batch, with and without sync_bn."""
    import torch.distributed as dist
    from torch import nn

    from ganforge.models.dcgan import DCGANDiscriminator
    from ganforge.train.distributed import convert_sync_bn

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    dist.init_process_group("nccl")
    rank, device = dist.get_rank(), torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    x = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    half = x.chunk(2)[rank]
    for sync in (True, False):
        torch.manual_seed(0)
        plain = DCGANDiscriminator(image_size=32, channels=3, ndf=16).to(device)
        net = DCGANDiscriminator(image_size=32, channels=3, ndf=16).to(device)
        net.load_state_dict(plain.state_dict())
        if sync:
            net = convert_sync_bn(net)
        ddp_net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index])
        out = ddp_net(half)
        out.mean().backward()
        outs = [torch.empty_like(out) for _ in range(2)]
        dist.all_gather(outs, out.detach())
        if rank == 0:  # the single process with the whole batch
            ref = plain(x)
            ref.mean().backward()
            d_out = (torch.cat(outs) - ref.detach()).abs().max().item()
            pairs = zip(net.parameters(), plain.parameters(), strict=True)
            d_grad = max((p.grad - q.grad).abs().max().item() for p, q in pairs)
            ok = d_out <= TOLERANCE and d_grad <= TOLERANCE
            if sync:
                print(f"sync_bn, 2 NCCL processes vs 1 process with the whole batch: outputs differ by at most "
                      f"{d_out:.2e}, gradients by {d_grad:.2e} (tolerance {TOLERANCE:.0e}): {'OK' if ok else 'FAIL'}")
                if not ok:
                    sys.exit(1)
            else:
                print(f"without sync_bn (each process its own half's statistics): outputs differ by {d_out:.2e}")
    dist.destroy_process_group()


def write_images(folder: Path, n: int = 256) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def sync_bn(dev: str, size: dict, quick: bool) -> dict:
    gpus = torch.cuda.device_count() if dev == "cuda" else 0
    if gpus < 2:
        reason = (f"not run: it needs 2 GPUs for 2 NCCL processes (NCCL refuses two ranks on one GPU); this machine "
                  f"has {gpus}")
        print(f"  {reason}")
        return {"ran": False, "reason": reason}
    check = torchrun([__file__, "--sync-bn-worker"], False, timeout=120)
    print(check.stdout.strip() or check.stderr[-3000:])
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp) / "images")
        train = torchrun(["-m", "ganforge", "train", "dcgan", "--data", f"{tmp}/images", "--out", f"{tmp}/run",
                          "--steps", "20", "--batch-size", "8", "--device", "cuda", "--no-progress", "sync_bn=true",
                          "sample_every=0", "ckpt_every=0"], False, timeout=180)
        saved = sorted(p.name for p in Path(tmp, "run/checkpoints").glob("*")) if not train.returncode else []
    print(f"  ganforge train sync_bn=true under torchrun (2 processes, 20 steps): exit status {train.returncode}"
          f"{', checkpoints ' + str(saved) if saved else ''}")
    if train.returncode:
        print(train.stderr[-3000:])
    return {"ran": True, "check_exit_status": check.returncode, "check_output": check.stdout.strip(),
            "train_exit_status": train.returncode, "ok": check.returncode == 0 and train.returncode == 0}


SECTIONS = {"demo": demo, "pix2pix": pix2pix, "ddp": ddp, "sync_bn": sync_bn}


def summary(results: dict) -> list[str]:
    """The figures side by side: one line per section."""
    lines = []
    d = results.get("demo", {})
    if "variants" in d:
        cells = [f"{k} {v['over_fp32']:.2f}" if "over_fp32" in v else f"{k} {v['status']}"
                 for k, v in d["variants"].items() if k != "fp32"]
        lines.append(f"demo step, images/s / ganforge fp32 ({d['variants']['fp32']['images_per_s']:.0f} images/s): "
                     + ", ".join(cells))
    for run in results.get("pix2pix", {}).get("runs", []):
        lines.append(f"pix2pix {run['netG']} {run['image_size']}px batch {run['batch_size']}: ganforge / plain "
                     f"{run['ganforge_over_plain']:.3f} ({run['ms_per_step']['ganforge']:.1f} vs "
                     f"{run['ms_per_step']['plain']:.1f} ms/step)")
    if "equal" in results.get("ddp", {}):
        r = results["ddp"]
        lines.append(f"DDP weights equal on both ranks: {'yes' if r['equal'] else 'NO'} ({r['ran']}, {r['steps']} "
                     f"steps, {len(r['unequal'])} of {r['tensors']} tensors differ)")
    s = results.get("sync_bn", {})
    if "ran" in s:
        lines.append(f"sync_bn: {'OK' if s.get('ok') else 'FAILED'}" if s["ran"] else f"sync_bn: {s['reason']}")
    lines += [f"{name}: FAILED ({r['error']})" for name, r in results.items() if "error" in r]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU (seconds; for the tests)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    add_threads_option(p)  # default: ganforge's policy (the cores other programs leave free); 1 with --quick
    args = p.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    for s in chosen:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r}; choose from {', '.join(SECTIONS)}")
    with use_threads(args.threads or (1 if args.quick else None)):
        return run_sections(chosen, args.quick, args.json)


def run_sections(chosen: list[str], quick: bool, json_path: Path | None) -> int:
    start = time.perf_counter()
    cuda = torch.cuda.is_available()
    dev, size = ("cuda" if cuda else "cpu"), sizes(cuda, quick)
    env = environment()
    where = f"{env['gpus']} x {env['gpu']}, CUDA {env['cuda_version']}" if cuda else (
        f"no CUDA: the CPU fallback at {'tiny' if quick else 'small'} sizes")
    threads = f"{env['threads']} CPU thread{'s' if env['threads'] != 1 else ''}"
    print(f"gpu_check: torch {env['torch']}, python {env['python']}, {where}, {threads}, load average "
          f"{env['load_average']:.2f}{', ganforge from src/' if FROM_SOURCE else ''}")
    if cuda:
        print(f"  TF32 for cuDNN convolutions {env['cudnn_tf32']}, for matmuls {env['matmul_tf32']}; "
              f"cudnn.benchmark {env['cudnn_benchmark']} (PyTorch's defaults; ganforge sets none of them)")
    results: dict[str, dict] = {}
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = SECTIONS[name](dev, size, quick)
        except Exception as e:  # the other sections still run on a one-shot machine
            traceback.print_exc()
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        results[name]["seconds"] = time.perf_counter() - t0
        print(f"  ({results[name]['seconds']:.1f} s)", flush=True)
    total = time.perf_counter() - start
    print("\n== summary ==")
    for line in summary(results):
        print(line)
    print(f"total {total:.1f} s")
    if json_path is not None:
        json_path.write_text(json.dumps({"env": env, "quick": quick, "sizes": size, "results": results,
                                         "seconds": total}, indent=2))
        print(f"wrote {json_path}")
    failed = any("error" in r for r in results.values()) or results.get("ddp", {}).get("equal") is False
    failed = failed or results.get("sync_bn", {}).get("ok") is False
    return 1 if failed else 0


if __name__ == "__main__":
    if "--sync-bn-worker" in sys.argv:
        sync_bn_worker()
    elif "--ddp-worker" in sys.argv:
        i = sys.argv.index("--ddp-worker")
        out, backend, device, steps, batch = sys.argv[i + 1:i + 6]
        ddp_worker(out, backend, device, int(steps), int(batch))
    else:
        sys.exit(main())
