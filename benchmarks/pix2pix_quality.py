"""pix2pix: cGAN + L1 against the same U-Net trained with L1 alone, on held-out pairs, side by side.

    # train both from the CPU preset (the L1-only run gets the cGAN run's wall-clock time), then compare
    .venv/bin/python benchmarks/pix2pix_quality.py --train --out runs/p2p-quality
    # or compare two finished runs
    .venv/bin/python benchmarks/pix2pix_quality.py --gan runs/e2f --l1 runs/e2f-l1 --out runs/p2p-quality

Both runs translate the same held-out split (default: the first 10,000 test pairs) in the same
inference mode (--mode; auto = eval for runs trained with batches > 1) with the same seed. Printed per
run: L1 (0..255), PSNR, SSIM against the targets, sharpness (mean neighbouring-pixel difference of the
outputs over the targets'; blur lowers it) and FID between outputs and targets with the fmnist
extractor (for small gray images). The paper's finding (Isola et al. 2017, table 1 / figure 4): L1 alone gives
blurry outputs with good per-pixel scores; adding the GAN loss sharpens them, which shows in FID
(distribution realism) more than in L1/PSNR. Writes OUT/compare.png: input | L1 only | cGAN + L1 | target.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import ganforge
from ganforge.translation import load_translator, paired_scores, paired_split
from ganforge.viz import save_grid


def train_pair(out: Path, preset: str, overrides: list[str]) -> tuple[Path, Path]:
    gan_dir, l1_dir = out / "cgan_l1", out / "l1_only"
    cfg = ganforge.resolve_config(preset, overrides=overrides + ["progress=false"])
    t0 = time.perf_counter()
    ganforge.train(cfg, gan_dir)
    seconds = time.perf_counter() - t0
    # L1 alone is cheaper per step: measure its speed on a short run, then give it the same time
    probe = ganforge.resolve_config(preset, overrides=overrides + ["gan_weight=0", "steps=200", "progress=false"])
    t0 = time.perf_counter()
    ganforge.train(probe, out / "l1_probe")
    per_step = (time.perf_counter() - t0) / 200
    steps = max(1, int(seconds / per_step))
    cfg_l1 = ganforge.resolve_config(preset, overrides=overrides + ["gan_weight=0", f"steps={steps}",
                                                                    "progress=false"])
    ganforge.train(cfg_l1, l1_dir)
    print(f"cGAN + L1: {cfg.steps} steps in {seconds:.0f} s; L1 only: {steps} steps in the same time")
    return gan_dir, l1_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gan", help="run folder trained with the GAN loss + L1")
    p.add_argument("--l1", help="run folder trained with L1 alone (gan_weight=0)")
    p.add_argument("--train", action="store_true", help="train both first from --preset")
    p.add_argument("--preset", default="pix2pix-edges2fashion")
    p.add_argument("--set", nargs="*", default=[], help="key=value overrides for --train")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--mode", default="auto", help="inference mode: auto | reference | eval")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.train:
        gan_dir, l1_dir = train_pair(out, args.preset, args.set)
    elif args.gan and args.l1:
        gan_dir, l1_dir = Path(args.gan), Path(args.l1)
    else:
        raise SystemExit("give --train, or both --gan RUN and --l1 RUN")
    trained = ganforge.load(gan_dir)
    d, size = trained.data_config(), trained.model_cfg.image_size
    inputs, _, targets = paired_split(d.name, args.split, d.root, d.direction, d.derive, size, args.n)
    A, B = torch.stack(inputs), torch.stack(targets)
    results, outputs = {}, {}
    for name, run in (("l1_only", l1_dir), ("cgan_l1", gan_dir)):
        t = load_translator(run, seed=0, mode=args.mode)
        outputs[name] = t(A)
        results[name] = {k: v for k, v in paired_scores(outputs[name], B).items() if k != "fid_extractor"}
        results[name]["step"] = ganforge.load(run).step
        results[name]["mode"] = t.mode
    print(f"{args.split} split, {len(A)} pairs, {d.name} at {size}x{size}")
    print(f"  {'run':<10} {'steps':>6} {'L1':>7} {'PSNR':>7} {'SSIM':>7} {'sharpness':>9} {'FID':>8}")
    for name, r in results.items():
        print(f"  {name:<10} {r['step']:>6} {r['l1']:>7.2f} {r['psnr']:>7.2f} {r['ssim']:>7.4f} {r['sharpness']:>9.3f} "
              f"{r['fid']:>8.3f}")
    ratio = results["cgan_l1"]["fid"] / results["l1_only"]["fid"]
    print(f"  FID cGAN+L1 / FID L1-only = {ratio:.3f} (< 1: the GAN loss brings outputs closer to the targets'"
          " distribution)")
    print("  sharpness = mean neighbouring-pixel difference of outputs / of targets (< 1: blurrier than the targets)")
    k = 16
    rows = []
    for i in range(k):
        rows += [A[i].expand(B.shape[1], -1, -1), outputs["l1_only"][i], outputs["cgan_l1"][i], B[i]]
    grid = torch.stack(rows)
    save_grid(grid, out / "compare.png", nrow=8, min_width=960)
    (out / "quality.json").write_text(json.dumps({"split": args.split, "n": len(A), "results": results,
                                                  "fid_ratio": ratio, "runs": {"cgan_l1": str(gan_dir),
                                                                               "l1_only": str(l1_dir)}}, indent=2))
    print(f"  pictures: {out / 'compare.png'} (input | L1 only | cGAN + L1 | target, two per row)")


if __name__ == "__main__":
    main()
