"""Exported generators: export time and file size, and onnxruntime against PyTorch eager, side by side in one run.

    .venv/bin/python benchmarks/export_speed.py                      # every registered model
    .venv/bin/python benchmarks/export_speed.py --models dcgan,pix2pix --rounds 3

Networks have random weights (built through their pipeline objects, as ``ganforge.load`` would give them;
no training), default options except dcgan at 28x28 gray (the lecture size) and cgan with 10 classes.

    export      ``ganforge.export.export`` to ONNX and to .pt2: tracing, conversion, writing and the parity
                check at batch 1 and 5 (and a second size for translation networks), and the file size
    speed       images/s of the exported ONNX file in onnxruntime (CPU, as many threads as torch) against
                PyTorch eager (eval, no_grad) on the same inputs: dcgan-28 at batch 64, pix2pix unet_256 and
                cyclegan resnet_9blocks (when registered) at 256x256 batch 1

After a warm-up call each, every round times both runtimes in turn (order alternating) for about
--seconds each; the medians of the rounds are compared (ratio = onnxruntime / eager).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganforge.export import export, inputs_at, load_onnx
from ganforge.families import MODELS, model_config
from ganforge.pipelines import pipeline_for

OPTIONS = {"dcgan": {"image_size": 28, "channels": 1}, "cgan": {"num_classes": 10}}
SPEED = {"dcgan": 64, "pix2pix": 1, "cyclegan": 1}  # model -> batch of the speed comparison
LABELS = {"dcgan": "dcgan-28", "pix2pix": "pix2pix unet_256", "cyclegan": "cyclegan resnet_9blocks"}


def build(name: str):
    """The pipeline of ``name`` with random weights (default options, except OPTIONS)."""
    cfg = model_config(name, OPTIONS.get(name, {}))
    nets = MODELS.get(name).build(cfg)
    for net in nets.values():
        net.eval()
    return pipeline_for(name, cfg, nets)


def rate(call, images: int, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return images * calls / (time.perf_counter() - start)


def compare(pipe, path: Path, batch: int, rounds: int, seconds: float) -> tuple[float, float]:
    """(onnxruntime images/s, eager images/s), medians over ``rounds``."""
    inputs = inputs_at(pipe, batch, seed=0)
    names = [s.name for s in pipe.input_specs()]
    session = load_onnx(path, threads=torch.get_num_threads())
    feed = {n: inputs[n].numpy() for n in names}
    net = pipe.generator(False).eval()

    def ort() -> None:
        session.run(None, feed)

    def eager() -> None:
        with torch.no_grad():
            pipe.forward(net, inputs)

    calls = {}
    for label, fn in (("ort", ort), ("eager", eager)):
        fn()  # warm-up
        start = time.perf_counter()
        fn()
        calls[label] = max(1, round(seconds / max(time.perf_counter() - start, 1e-6)))
    results: dict[str, list[float]] = {"ort": [], "eager": []}
    for r in range(rounds):
        order = [("ort", ort), ("eager", eager)]
        for label, fn in order if r % 2 == 0 else order[::-1]:
            results[label].append(rate(fn, batch, calls[label]))
    return statistics.median(results["ort"]), statistics.median(results["eager"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma-separated (default: every registered model)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per runtime per round (default 1)")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else MODELS.names()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(f"{'model':28s} {'format':6s} {'export + check s':>16s} {'MiB':>9s} {'max abs diff':>13s}")
    speed_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            pipe = build(name)
            for fmt in ("onnx", "pt2"):
                out = Path(tmp) / f"{name}.{fmt}"
                result = export(pipe, fmt, out)
                print(f"{LABELS.get(name, name):28s} {fmt:6s} {result['seconds']:16.1f} "
                      f"{result['bytes'] / 2**20:9.2f} {result['max_abs_diff']:13.2e}", flush=True)
            if name in SPEED:
                speed_rows.append((name, SPEED[name], *compare(pipe, Path(tmp) / f"{name}.onnx", SPEED[name],
                                                               args.rounds, args.seconds)))
    print()
    print(f"{'inference (CPU)':28s} {'batch':>5s} {'onnxruntime img/s':>18s} {'eager img/s':>12s} {'ratio':>6s}")
    for name, batch, ort_rate, eager_rate in speed_rows:
        print(f"{LABELS.get(name, name):28s} {batch:5d} {ort_rate:18.1f} {eager_rate:12.1f} "
              f"{ort_rate / eager_rate:5.2f}x")


if __name__ == "__main__":
    main()
