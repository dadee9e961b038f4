"""Super-resolution quality against training minutes: bicubic, SRResNet and SRGAN on held-out photos.

    .venv/bin/python benchmarks/sr_quality.py                             # the srgan-cpu preset (mate-nature)
    .venv/bin/python benchmarks/sr_quality.py --set data=skimage-photos   # without Debian's mate-backgrounds
    .venv/bin/python benchmarks/sr_quality.py --preset srgan-div2k --device cuda --every 20000

Trains the preset once (``--set k=v`` overrides), keeping a checkpoint every ``--every`` steps; the clock is
the training wall time at which each checkpoint was written (pictures and logging included, evaluation not:
checkpoints are evaluated after training). Each checkpoint is evaluated as ``ganforge eval CHECKPOINT`` does:
whole held-out photos (mod-crop, LR by PIL bicubic), PSNR / SSIM on Y with the scale's border shaved, the
random-filter LPIPS-like distance (lower better) and the detail ratio (1 = as much fine detail as the
original). Rows: bicubic, the SRResNet (during the MSE stage the network being trained; afterwards the copy
kept at its end) and, in the GAN stage, the SRGAN. The machine's load average and the CPU threads the run
used are printed before and after, since a busy machine stretches the minutes (not the quality per step).
Written: OUT/results.json and the run itself (OUT/run: samples.png, losses.png, checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

import ganforge
from ganforge.train.run import build_run


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="srgan-cpu")
    p.add_argument("--set", action="append", default=[], metavar="K=V", help="overrides of the preset")
    p.add_argument("--every", type=int, default=150, help="steps between evaluated checkpoints")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/sr_quality")
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    cfg = ganforge.resolve_config(args.preset, overrides=[f"ckpt_every={args.every}", "keep_ckpts=1000",
                                                          f"device={args.device}", "progress=false", *args.set])
    print("before:", load_line(), flush=True)
    run = build_run(cfg, out / "run")
    written: dict[int, float] = {}
    start = time.perf_counter()
    used: set[int] = set()

    def checkpoint(path, step) -> None:
        written.setdefault(step, time.perf_counter())
        used.add(torch.get_num_threads())  # the thread policy's choice while the run trains

    run.trainer.events.subscribe("on_checkpoint", checkpoint)
    try:
        run.fit()
    finally:
        run.close()
    threads = ",".join(map(str, sorted(used)))
    print("after: ", load_line(), f"(the run trained with {threads} threads)", flush=True)
    mse_steps = int(run.cfg.task_options.get("mse_steps", 0)) if cfg.model == "srgan" else None
    results = []
    for step in sorted(written):
        result = ganforge.evaluate(out / "run" / "checkpoints" / f"step_{step:08d}", record=False,
                                   device=args.device)
        gan = mse_steps is not None and step > mse_steps
        for row in result["rows"]:
            if row["method"] == "SRGAN" and not gan:
                continue  # the MSE stage: G is the SRResNet (G_mse is its copy)
            results.append({"minutes": round((written[step] - start) / 60, 2), "step": step,
                            "stage": "GAN" if gan else "MSE", **row})
    print(result["protocol"])
    columns = ["minutes", "step", "stage", "method", "PSNR", "SSIM", "LPIPS-rand", "detail"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in columns) + " |")
    (out / "results.json").write_text(json.dumps({"preset": args.preset, "overrides": args.set, "threads": threads,
                                                   "protocol": result["protocol"], "rows": results}, indent=2))


if __name__ == "__main__":
    main()
