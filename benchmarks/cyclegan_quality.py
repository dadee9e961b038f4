"""CycleGAN on a domain pair with a known answer: cycle terms on, cycle terms off, and paired pix2pix.

    .venv/bin/python benchmarks/cyclegan_quality.py --out runs/cg-quality --minutes 6      # trains all, then scores
    .venv/bin/python benchmarks/cyclegan_quality.py --out runs/cg-quality --cyclegan-run runs/f2e --minutes 14
    .venv/bin/python benchmarks/cyclegan_quality.py --out runs/cg-quality --score-only     # score finished runs

(``--cyclegan-run`` scores a finished run of the preset as the CycleGAN variant; give --minutes its training
time, so the other variants get the same.)

Data: fashion2edges (A = Fashion-MNIST garments, B = Canny edge maps of other garments; no pair seen in
training). The held-out test split keeps the pairs (x, edges(x)), so both directions are scored against
the answer: G_B(edges(x)) against x and G_A(x) against edges(x).

Variants, each trained for about the same wall-clock time (--minutes; the steps come from timing a few
steps of each variant first, so a cheaper step buys more steps):

    cyclegan     the preset (--preset, default cyclegan-fashion2edges)
    gan_alone    the same networks without the cycle terms: lambda_A = lambda_B = 0 and no identity term
                 (the paper's "GAN alone" ablation, table 4)
    pix2pix      paired pix2pix (preset pix2pix-edges2fashion): one run per direction (edges -> garment on
                 edges2fashion, garment -> edges with direction=BtoA), each half the time, as CycleGAN
                 trains both generators in its time

Printed per variant and direction: L1 (0..255), PSNR, SSIM against the answer, FID between outputs and
answers with the fmnist extractor, and for edges -> garment the accuracy of the fmnist classifier on the
outputs (the central 28x28, where the garment lies) against the class of x, next to its accuracy on x
itself. Writes OUT/quality.json and OUT/compare.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.metrics.evaluation import get_extractor
from ganforge.train.run import build_run
from ganforge.translation import load_translator, paired_scores
from ganforge.viz.columns import save_column_grid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _translation import accuracy, held_out_pairs  # noqa: E402

GAN_ALONE = ["task.lambda_A=0", "task.lambda_B=0", "task.lambda_identity=0"]


def seconds_per_step(preset: str, overrides: list[str], probe: int = 8) -> float:
    """Time ``probe`` training steps (after 2 of warm-up) of a run built from ``preset`` and ``overrides``."""
    cfg = ganforge.resolve_config(preset, overrides=overrides + ["progress=false", "steps=1000000", "device=cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(cfg, tmp, write=False)
        for _ in range(2):
            run.trainer.train_step()
        t0 = time.perf_counter()
        for _ in range(probe):
            run.trainer.train_step()
        return (time.perf_counter() - t0) / probe


def train(out: Path, name: str, preset: str, overrides: list[str], seconds: float) -> dict:
    per_step = seconds_per_step(preset, overrides)
    steps = max(10, int(seconds / per_step))
    cfg = ganforge.resolve_config(preset, overrides=overrides + [f"steps={steps}", "progress=false", "device=cpu"])
    t0 = time.perf_counter()
    ganforge.train(cfg, out / name)
    took = time.perf_counter() - t0
    print(f"  {name}: {steps} steps ({per_step * 1000:.0f} ms/step measured) in {took:.0f} s", flush=True)
    return {"steps": steps, "seconds": round(took, 1), "ms_per_step": round(per_step * 1000, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="cyclegan-fashion2edges")
    p.add_argument("--pix2pix-preset", default="pix2pix-edges2fashion")
    p.add_argument("--minutes", type=float, default=6.0, help="wall-clock training time of each variant")
    p.add_argument("--set", nargs="*", default=[], help="key=value overrides for the CycleGAN runs")
    p.add_argument("--n", type=int, default=10000, help="held-out pairs to score")
    p.add_argument("--score-only", action="store_true", help="score the runs already in OUT")
    p.add_argument("--cyclegan-run", help="a finished CycleGAN run to score instead of training one")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = 60 * args.minutes
    runs = {"cyclegan": out / "cyclegan", "gan_alone": out / "gan_alone", "pix2pix": out / "pix2pix_e2f",
            "pix2pix_f2e": out / "pix2pix_f2e"}
    if args.cyclegan_run:
        runs["cyclegan"] = Path(args.cyclegan_run)
    training = {}
    if not args.score_only:
        if not args.cyclegan_run:
            training["cyclegan"] = train(out, "cyclegan", args.preset, args.set, budget)
        training["gan_alone"] = train(out, "gan_alone", args.preset, args.set + GAN_ALONE, budget)
        training["pix2pix_e2f"] = train(out, "pix2pix_e2f", args.pix2pix_preset, [], budget / 2)
        training["pix2pix_f2e"] = train(out, "pix2pix_f2e", args.pix2pix_preset, ["direction=BtoA"], budget / 2)

    garments, edge_maps, labels = held_out_pairs(args.n)
    n = garments.shape[0]
    outputs = {}
    for name in ("cyclegan", "gan_alone"):
        model = ganforge.load(runs[name])
        outputs[name] = {"e2g": model.translate(edge_maps, direction="BtoA"),
                         "g2e": model.translate(garments, direction="AtoB")}
    outputs["pix2pix"] = {"e2g": load_translator(runs["pix2pix"])(edge_maps),
                          "g2e": load_translator(runs["pix2pix_f2e"])(garments)}
    classifier = get_extractor("fmnist")
    results = {"real": {"e2g_accuracy": accuracy(classifier, garments, labels)}}
    for name, o in outputs.items():
        r = {}
        for direction, target in (("e2g", garments), ("g2e", edge_maps)):
            s = paired_scores(o[direction], target)
            r.update({f"{direction}_{k}": s[k] for k in ("l1", "psnr", "ssim", "fid")})
        r["e2g_accuracy"] = accuracy(classifier, o["e2g"], labels)
        results[name] = r
    print(f"fashion2edges test split, {n} pairs, 32x32; FID with the fmnist extractor (outputs vs answers)")
    print(f"  {'':<10} | {'edges -> garment (vs x)':^44} | {'garment -> edges (vs edges(x))':^34}")
    print(f"  {'variant':<10} | {'L1':>6} {'PSNR':>6} {'SSIM':>6} {'FID':>8} {'class acc':>10} | "
          f"{'L1':>6} {'PSNR':>6} {'SSIM':>6} {'FID':>8}")
    for name in ("cyclegan", "gan_alone", "pix2pix"):
        r = results[name]
        print(f"  {name:<10} | {r['e2g_l1']:>6.2f} {r['e2g_psnr']:>6.2f} {r['e2g_ssim']:>6.3f} {r['e2g_fid']:>8.2f} "
              f"{r['e2g_accuracy']:>10.3f} | {r['g2e_l1']:>6.2f} {r['g2e_psnr']:>6.2f} {r['g2e_ssim']:>6.3f} "
              f"{r['g2e_fid']:>8.2f}")
    print(f"  classifier accuracy on the real garments x: {results['real']['e2g_accuracy']:.3f}")
    k = 12
    columns = [edge_maps[:k]] + [outputs[v]["e2g"][:k] for v in ("cyclegan", "gan_alone", "pix2pix")]
    columns += [garments[:k]] + [outputs[v]["g2e"][:k] for v in ("cyclegan", "gan_alone", "pix2pix")]
    headers = ["edges(x)", "CycleGAN", "GAN alone", "pix2pix", "x", "CycleGAN", "GAN alone", "pix2pix"]
    save_column_grid(columns, out / "compare.png", headers, min_width=960)
    steps = {name: ganforge.load(run).step for name, run in runs.items()}
    print("  steps: " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    (out / "quality.json").write_text(json.dumps({"n": n, "minutes_each": args.minutes, "training": training,
                                                  "steps": steps, "runs": {k: str(v) for k, v in runs.items()},
                                                  "results": results}, indent=2))
    print(f"  pictures: {out / 'compare.png'} (edges -> garment by each variant | garment -> edges by each)")


if __name__ == "__main__":
    main()
