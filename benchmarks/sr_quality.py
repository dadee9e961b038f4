"""Super-resolution quality against training minutes: bicubic, SRResNet and SRGAN on held-out photos.

    .venv/bin/python benchmarks/sr_quality.py                             # the srgan-cpu preset (mate-nature)
    .venv/bin/python benchmarks/sr_quality.py --set data=skimage-photos   # without Debian's mate-backgrounds
    .venv/bin/python benchmarks/sr_quality.py --preset srgan-div2k --device cuda --every 20000

Trains the preset once per arm with ``ganforge.train`` (the thread policy, the doctor's live check; ``--set k=v``
overrides), keeping a checkpoint every ``--every`` steps; the clock is the wall time from the call (building the
run included) at which each checkpoint was written (pictures and logging included, evaluation not: checkpoints
are evaluated after training). Each checkpoint is evaluated as ``ganforge eval CHECKPOINT`` does:
whole held-out photos (mod-crop, LR by PIL bicubic), PSNR / SSIM on Y with the scale's border shaved, the
random-filter LPIPS-like distance (lower better), the detail ratio (1 = as much fine detail as the
original) and the patch MMD (texture statistics of 32-pixel tiles against the original's; lower better).
Rows: bicubic, the SRResNet (during the MSE stage the network being trained; afterwards the copy
kept at its end) and, in the GAN stage, the SRGAN. The machine's load average and the CPU threads the run
used are printed before and after, since a busy machine stretches the minutes (not the quality per step).

Arms (``--arms``), each the preset trained the same number of steps from the same seed, so that a row of the
SRGAN can be read beside the same G trained without what SRGAN adds:

* ``srgan``         the preset as it is (MSE stage, then content + adversarial);
* ``content``       ``task.adversarial_weight=0``: the same stages without the adversarial term (D still
                    trains, and its scores say whether SR and HR are told apart when G ignores D);
* ``mse``           ``task.adversarial_weight=0 task.content=mse``: the SRResNet trained on MSE all the way,
                    the paper's PSNR-oriented baseline at the same number of updates.

Each arm's D scores over the GAN stage (the logged means of D(HR) and D(SR)) are printed beside its table.
Written: OUT/results.json and the runs themselves (OUT/ARM: samples.png, losses.png, checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch

import ganforge

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timed import train_timed  # noqa: E402


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


ARMS = {"srgan": [], "content": ["task.adversarial_weight=0"],
        "mse": ["task.adversarial_weight=0", "task.content=mse"]}


def train_arm(preset: str, overrides: list[str], every: int, device: str, out: Path) -> tuple[list[dict], str, str]:
    """Train one arm with a checkpoint every ``every`` steps; evaluate each. Returns (rows, protocol, threads)."""
    cfg = ganforge.resolve_config(preset, overrides=[f"ckpt_every={every}", "keep_ckpts=1000", f"device={device}",
                                                     "progress=false", *overrides])
    minutes, _, used = train_timed(cfg, out)
    mse_steps = int(cfg.task_options.get("mse_steps", 0)) if cfg.model == "srgan" else None
    rows, protocol = [], ""
    for step in minutes:
        result = ganforge.evaluate(out / "checkpoints" / f"step_{step:08d}", record=False, device=device)
        protocol = result["protocol"]
        gan = mse_steps is not None and step > mse_steps
        for row in result["rows"]:
            if row["method"] == "SRGAN" and not gan:
                continue  # the MSE stage: G is the SRResNet (G_mse is its copy)
            rows.append({"minutes": round(minutes[step], 2), "step": step,
                         "stage": "GAN" if gan else "MSE", **row})
    return rows, protocol, ",".join(map(str, sorted(used)))


def d_scores(run: Path) -> str:
    """The logged D(HR) / D(SR) means of the GAN stage: first and last logged rows, and the last quarter's mean."""
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "D_real" in r]
    if not rows:
        return "no GAN stage"
    tail = rows[-max(1, len(rows) // 4):]
    mean = lambda key: sum(r[key] for r in tail) / len(tail)  # noqa: E731
    return (f"D(HR) / D(SR) at step {rows[0]['step']}: {rows[0]['D_real']:.2f} / {rows[0]['D_fake']:.2f}; "
            f"at step {rows[-1]['step']}: {rows[-1]['D_real']:.2f} / {rows[-1]['D_fake']:.2f}; "
            f"mean over the last {len(tail)} logged rows: {mean('D_real'):.2f} / {mean('D_fake'):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="srgan-cpu")
    p.add_argument("--set", action="append", default=[], metavar="K=V", help="overrides of the preset (every arm)")
    p.add_argument("--arms", default="srgan", help=f"comma-separated, of: {', '.join(ARMS)} (default srgan)")
    p.add_argument("--every", type=int, default=150, help="steps between evaluated checkpoints")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/sr_quality")
    args = p.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        p.error(f"unknown arm {bad[0] if bad else args.arms!r}; choose from {', '.join(ARMS)}")
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    results, protocol = [], ""
    for arm in arms:
        print(f"[{arm}] before:", load_line(), flush=True)
        rows, protocol, threads = train_arm(args.preset, ARMS[arm] + args.set, args.every, args.device, out / arm)
        print(f"[{arm}] after: ", load_line(), f"(the run trained with {threads} threads)", flush=True)
        print(f"[{arm}]", d_scores(out / arm), flush=True)
        results += [{"arm": arm, **r} for r in rows]
    print(protocol)
    columns = ["arm", "minutes", "step", "stage", *dict.fromkeys(k for r in results for k in r if k not in
                                                                 ("arm", "minutes", "step", "stage"))]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        print("| " + " | ".join(str(r.get(c, "-")) for c in columns) + " |")
    (out / "results.json").write_text(json.dumps({"preset": args.preset, "overrides": args.set, "arms": arms,
                                                   "protocol": protocol, "rows": results}, indent=2))


if __name__ == "__main__":
    main()
