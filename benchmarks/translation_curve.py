"""Translation quality against training minutes: a fashion <-> edges CPU preset's whole run, scored at every checkpoint.

    .venv/bin/python benchmarks/translation_curve.py --preset pix2pix-edges2fashion --every 500 --out runs/curve-p2p
    .venv/bin/python benchmarks/translation_curve.py --preset cyclegan-fashion2edges --every 250 --out runs/curve-cg
    .venv/bin/python benchmarks/translation_curve.py --set steps=40 --every 20 --n 200 --out runs/curve-smoke

Trains the preset once with ``ganforge.train`` (the thread policy, the doctor's live check; ``--set k=v``
overrides), keeping a checkpoint every ``--every`` steps; the clock is the wall time from the call (building the
run, a few seconds, included) at which each checkpoint was written (pictures, logging and the live check included;
the checkpoints are scored after training).
Each checkpoint translates the first ``--n`` held-out pairs (x, edges(x)) of the Fashion-MNIST test split from
edges to garments (pix2pix edges2fashion AtoB: the run's U-Net; CycleGAN: G_B), scored as cyclegan_quality.py
scores them: the fmnist classifier's accuracy on the central 28x28 against the class of x, and L1 (0..255) and SSIM
against x; for CycleGAN also garment -> edges (G_A) against edges(x): SSIM, and the F1 of its line pixels within
1 pixel of Canny's (``_translation.edge_scores``; SSIM alone asks for each line at its exact pixel). Then the GAN
doctor's verdict over the whole run (``ganforge.doctor``: its rules over every row, and the samples) and the health
rows its live check wrote during training. The load average is printed before and after training, since a busy
machine stretches the minutes (not the quality per step). Writes the run to OUT/run and the numbers to OUT/curve.json.
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
from ganforge.metrics.evaluation import get_extractor
from ganforge.translation import load_translator, paired_scores
from ganforge.viz import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timed import train_timed  # noqa: E402
from _translation import accuracy, edge_scores, held_out_pairs  # noqa: E402


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPU cores"


def score(checkpoint: Path, cyclegan: bool, garments, edges, labels, classifier) -> dict:
    """Accuracy, L1 and SSIM of the checkpoint's edges -> garment outputs (and CycleGAN's garment -> edges SSIM)."""
    t = load_translator(checkpoint, seed=0)
    made = t.translate(edges, direction="BtoA") if cyclegan else t.translate(edges)
    s = paired_scores(made, garments, fid=False)
    row = {"accuracy": accuracy(classifier, made, labels), "l1": s["l1"], "ssim": s["ssim"]}
    if cyclegan:
        drawn = t.translate(garments, direction="AtoB")
        row["ssim_g2e"] = paired_scores(drawn, edges, fid=False)["ssim"]
        row.update({f"{k}_g2e": v for k, v in edge_scores(drawn, edges).items()})
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="pix2pix-edges2fashion", help="pix2pix-edges2fashion or cyclegan-fashion2edges")
    p.add_argument("--set", action="append", default=[], metavar="K=V", help="an override of the preset (repeatable)")
    p.add_argument("--every", type=int, default=500, help="steps between scored checkpoints")
    p.add_argument("--n", type=int, default=2000, help="held-out pairs to score")
    p.add_argument("--out", default="runs/translation_curve")
    args = p.parse_args()
    cfg = ganforge.resolve_config(args.preset, overrides=[f"ckpt_every={args.every}", "keep_ckpts=100000",
                                                          "progress=false", *args.set])
    cyclegan = cfg.model == "cyclegan"
    if cfg.data.name != ("fashion2edges" if cyclegan else "edges2fashion") or cfg.data.direction != "AtoB":
        p.error(f"{args.preset} trains on {cfg.data.name} ({cfg.data.direction}); this script scores pix2pix on "
                "edges2fashion AtoB or CycleGAN on fashion2edges")
    out = Path(args.out)
    shutil.rmtree(out / "run", ignore_errors=True)
    print("before:", load_line(), flush=True)
    minutes, total, used = train_timed(cfg, out / "run")
    threads = max(used)
    print("after: ", load_line(), f"(trained {cfg.steps} steps in {total:.2f} minutes with {threads} threads)",
          flush=True)

    garments, edges, labels = held_out_pairs(args.n)
    classifier = get_extractor("fmnist")
    rows = [{"minutes": round(m, 2), "step": step,
             **score(out / "run" / "checkpoints" / f"step_{step:08d}", cyclegan, garments, edges, labels, classifier)}
            for step, m in minutes.items()]
    real = accuracy(classifier, garments, labels)
    print(f"\n{' '.join([args.preset, *args.set])}: edges -> garment on {len(labels)} held-out test pairs "
          f"(the fmnist classifier puts {real:.3f} of the real garments in their class)")
    if cyclegan:
        shifted = paired_scores(torch.roll(edges, 1, dims=-1), edges, fid=False)["ssim"]
        print(f"garment -> edges against edges(x): SSIM (the true edges shifted by one pixel score {shifted:.3f}), "
              "and the F1 of the line pixels within 1 pixel of the true ones (precision / recall)")
    print("| minutes | step | accuracy | L1 | SSIM |" + (" SSIM g->e | edge F1 g->e (P / R) |" if cyclegan else ""))
    print("|---|---|---|---|---|" + ("---|---|" if cyclegan else ""))
    for r in rows:
        print(f"| {r['minutes']:.2f} | {r['step']} | {r['accuracy']:.3f} | {r['l1']:.2f} | {r['ssim']:.3f} |"
              + (f" {r['ssim_g2e']:.3f} | {r['edge_f1_g2e']:.3f} ({r['edge_precision_g2e']:.3f} / "
                 f"{r['edge_recall_g2e']:.3f}) |" if cyclegan else ""))

    live = [{"step": r["step"], "health": [(h.get("kind"), h.get("severity")) for h in r["health"]]}
            for r in read_metrics(out / "run" / "metrics.jsonl") if isinstance(r.get("health"), list)]
    every = cfg.health_every * cfg.log_every
    print(f"\nthe doctor during training (its rules every {every} steps; a health row when its findings change):"
          + ("" if live else " no health row written"))
    for r in live:
        print(f"  step {r['step']}: " + (", ".join(f"{k} ({s})" for k, s in r["health"]) or "cleared"))
    findings = [f.to_dict() for f in ganforge.doctor(out / "run")]
    serious = [f for f in findings if f["severity"] in ("warning", "error")]
    print("the doctor after training:" + ("" if serious else " healthy"))
    for f in serious:
        print(f"  {f['kind']} ({f['severity']}) from step {f['first_step']}: {f['message']}")
    (out / "curve.json").write_text(json.dumps({
        "preset": args.preset, "overrides": args.set, "every": args.every, "n": len(labels), "steps": cfg.steps,
        "threads": threads, "torch": torch.__version__, "training_minutes": round(total, 2), "real_accuracy": real,
        "rows": rows, "health_rows": live, "doctor": findings}, indent=2, default=str))
    print(f"\nwritten: {out / 'curve.json'}; pictures: {out / 'run' / 'samples.png'}")


if __name__ == "__main__":
    main()
