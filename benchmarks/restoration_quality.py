"""Restoration on held-out pairs: pix2pix (cGAN + L1) against the same U-Net trained with L1 alone and
against the trivial baseline, for denoising, colourisation and inpainting.

    .venv/bin/python benchmarks/restoration_quality.py --out runs/restoration            # all three tasks
    .venv/bin/python benchmarks/restoration_quality.py --tasks noise --steps 500 --out runs/restoration

For each task (derived pairs, so everything runs offline):

* noise       ``noise-fashion``: Fashion-MNIST garments (32x32) + Gaussian noise of sigma 25 levels -> the
              clean garment; the trivial baseline is the noisy input itself;
* gray2color  ``gray2color-photos``: 32x32 crops of the bundled colour photos, luma -> colour (held out:
              the crops of two photos no training crop comes from); baseline: the gray input as RGB;
* inpaint     ``inpaint-fashion``: garments with 1 to 3 gray rectangles -> the whole garment; baseline:
              the masked input.

(a) ``cgan_l1`` is the CPU preset pix2pix-edges2fashion (unet_32, PatchGAN of 2 layers, vanilla GAN loss
+ 100 x L1, batches of 16) on the task's pairs; (b) ``l1_only`` is the same preset with ``gan_weight=0``
(the D phase dropped); both get the same number of G updates (``--steps``), from the same seed; their
training times are printed (L1 alone is cheaper per step). (c) ``input`` is the trivial baseline. All
three are scored on the same held-out pairs (``--n`` of the test split) in the same inference mode:
L1 (0..255), PSNR (dB), SSIM, sharpness (mean neighbouring-pixel difference of the outputs over the
targets'; blur lowers it, noise raises it), FID against the targets with the fmnist extractor for the
gray 32x32 tasks, and for colour the colourfulness (Hasler and Suesstrunk 2003) over the targets'
(desaturated outputs score below 1). The machine's load average is printed before and after each
training, since 2 shared cores make times noisy. Writes OUT/TASK.png (rows of input | L1 only | cGAN +
L1 | target) and OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import ganforge
from ganforge.translation import load_translator, paired_scores, paired_split
from ganforge.viz import save_grid

PRESET = "pix2pix-edges2fashion"
TASKS = {  # name: (paired dataset, what the trivial baseline is)
    "noise": ("noise-fashion", "the noisy input"),
    "gray2color": ("gray2color-photos", "the gray input as RGB"),
    "inpaint": ("inpaint-fashion", "the masked input"),
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def colourfulness(images: torch.Tensor) -> float:
    """Hasler and Suesstrunk's colourfulness of uint8 RGB images [N, 3, H, W] (0 for gray), over all pixels:
    sqrt(var(rg) + var(yb)) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2), rg = R - G, yb = (R + G) / 2 - B."""
    r, g, b = images.double().unbind(1)
    rg, yb = r - g, (r + g) / 2 - b
    return float(torch.sqrt(rg.var() + yb.var()) + 0.3 * torch.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def train(task: str, run: Path, steps: int, l1_only: bool, extra: list[str]) -> float:
    """Train the preset on the task's pairs into ``run``; the seconds it took."""
    overrides = [f"data.name={TASKS[task][0]}", f"steps={steps}", f"ckpt_every={steps}",
                 f"sample_every={max(steps, 250)}", "progress=false", *extra]
    if l1_only:
        overrides.append("gan_weight=0")
    cfg = ganforge.resolve_config(PRESET, overrides=overrides)
    t0 = time.perf_counter()
    ganforge.train(cfg, run)
    return time.perf_counter() - t0


def score(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    s = paired_scores(outputs, targets, fid=targets.shape[1] == 1)
    row = {k: s[k] for k in ("l1", "psnr", "ssim", "sharpness")}
    row["fid"] = s.get("fid")
    if targets.shape[1] == 3:
        row["colour"] = colourfulness(outputs) / max(colourfulness(targets), 1e-12)
    return row


def run_task(task: str, out: Path, steps: int, n: int, extra: list[str]) -> dict:
    runs, seconds = {"cgan_l1": out / f"{task}-cgan_l1", "l1_only": out / f"{task}-l1_only"}, {}
    for name, run in runs.items():
        print(f"[{task}] training {name}: {steps} steps; {load()}", flush=True)
        seconds[name] = train(task, run, steps, name == "l1_only", extra)
        print(f"[{task}] {name} took {seconds[name]:.0f} s; {load()}", flush=True)
    trained = ganforge.load(runs["cgan_l1"])
    d, size = trained.data_config(), trained.model_cfg.image_size
    inputs, _, targets = paired_split(d.name, "test", d.root, d.direction, d.derive, size, n)
    A, B = torch.stack(inputs), torch.stack(targets)
    outputs = {"input": A.expand(-1, B.shape[1], -1, -1).contiguous()}
    for name, run in runs.items():
        outputs[name] = load_translator(run, seed=0, mode="auto")(A)
    results = {name: score(out_images, B) for name, out_images in outputs.items()}
    for name in runs:
        results[name].update(steps=steps, seconds=round(seconds[name], 1))
    k = min(16, len(A))
    rows = []
    for i in range(k):
        rows += [outputs["input"][i], outputs["l1_only"][i], outputs["cgan_l1"][i], B[i]]
    save_grid(torch.stack(rows), out / f"{task}.png", nrow=8, min_width=960)
    return {"data": d.name, "size": size, "n": len(A), "baseline": TASKS[task][1], "results": results}


def print_table(task: str, r: dict) -> None:
    print(f"\n{task}: {r['data']} at {r['size']}x{r['size']}, {r['n']} held-out pairs; input = {r['baseline']}")
    print(f"  {'model':<9} {'steps':>5} {'train s':>7} {'L1':>6} {'PSNR':>6} {'SSIM':>6} {'sharp':>6} {'FID':>7} "
          f"{'colour':>6}")
    for name in ("input", "l1_only", "cgan_l1"):
        x = r["results"][name]
        fid = f"{x['fid']:7.2f}" if x.get("fid") is not None else f"{'-':>7}"
        colour = f"{x['colour']:6.3f}" if "colour" in x else f"{'-':>6}"
        print(f"  {name:<9} {x.get('steps', ''):>5} {x.get('seconds', ''):>7} {x['l1']:6.2f} {x['psnr']:6.2f} "
              f"{x['ssim']:6.4f} {x['sharpness']:6.3f} {fid} {colour}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--steps", type=int, default=600, help="G updates for both trained models (default 600)")
    p.add_argument("--n", type=int, default=2000, help="held-out pairs scored (default 2000)")
    p.add_argument("--set", nargs="*", default=[], help="key=value overrides for both trainings")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {load()}")
    t0 = time.perf_counter()
    report = {}
    for task in args.tasks:
        report[task] = run_task(task, out, args.steps, args.n, args.set)
    for task, r in report.items():
        print_table(task, r)
    print(f"\nall in {time.perf_counter() - t0:.0f} s; {load()}")
    print("  sharp = sharpness of the outputs / of the targets; colour = colourfulness of the outputs / of the "
          "targets; FID with the fmnist extractor (gray 32x32 only)")
    print(f"  pictures: {', '.join(str(out / f'{t}.png') for t in report)} (input | L1 only | cGAN + L1 | target)")
    (out / "results.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
