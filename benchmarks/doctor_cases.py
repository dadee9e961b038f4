"""Known answers for the GAN doctor: runs made healthy or broken on purpose, each with the finding it should get,
trained with two seeds. Prints one line per run: what the doctor said during training (the health rows: each
kind with the first step it was reported) and after training (``ganforge.doctor``: rows and samples), and whether
it named what was broken, first, and nothing else as an error (or, for a healthy run, nothing at all). Other
warnings on a broken run are listed as "also" (a G that stopped learning also draws alike samples); on a healthy
run anything is a false alarm.

    .venv/bin/python benchmarks/doctor_cases.py [--seeds 0,1] [--cases healthy,minimax_d_wins,...]

Every run logs every 20 steps and the doctor checks every 5 log rows (100 steps). The cases (a list below; a new
one is a line):
  healthy            the fmnist-demo recipe (width 32, bf16, Adam 8e-4, EMA), 800 steps: nothing
  minimax_d_wins     the saturating minimax loss against a D that learns 200x faster and 5 times per G step: d_wins
  divergence         learning rates of 5 for both players: divergence (first, its symptoms folded into it)
  small_data         200 Fashion-MNIST images (a held-out folder of 200 beside them), augment=none, 1600 steps:
                     d_overfit
  frozen_g           a G that does not learn (lr_g=1e-12): d_wins (its samples' mode collapse is a symptom)
  constant_g         the lectures' MLP GAN (no batch norm) against a D that does not learn (lr_d=1e-12), 1500 steps:
                     G maps every z to the one image the fixed D scores highest, a saturated pattern of black and
                     white pixels (each pixel's spread over the samples 0.2-0.3 of 255): constant_output
  fmnist_collapse    the same MLP GAN with D learning at half G's rate (lr_d=1e-4), 1500 steps: G draws three or
                     four kinds of blurry garment over and over (predicted classes 1.0-1.4 bits against the data's
                     3.3): mode_collapse
  toy_ring_healthy   the toy defaults on the ring of 8 Gaussians (5000 steps): nothing
  toy_ring_collapse  G learning 10x faster than D on the ring, 1500 steps: mode_collapse
  pix2pix_healthy    pix2pix on edges2fashion (32x32, a U-Net of width 16), 400 steps: nothing
  pix2pix_l1_only    the same with the GAN term weighted 0.001 instead of 1: gan_term_ignored
  cyclegan_blank     CycleGAN fashion <-> edges with an identity weight of 20 (the preset: 0.5): G_A turns every
                     garment into nearly the same blank page: constant_output
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

import ganforge
from ganforge.config import resolve_config
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.families.toy import toy_config
from ganforge.viz import read_metrics

COMMON = {"progress": False, "sample_every": 0, "ckpt_every": 200, "log_every": 20, "health_every": 5}
DCGAN = {"model": "dcgan", "data": "fashion-mnist", "batch_size": 64, "model_options": {"ngf": 16, "ndf": 16}}
MLP = {"model": "gan", "data": "fashion-mnist", "batch_size": 64}  # the lectures' fully connected GAN: no batch norm
PIX2PIX = {"model": "pix2pix", "data": "edges2fashion", "image_size": 32, "batch_size": 16, "beta1": 0.5,
           "model_options": {"netG": "unet_32", "netD": "n_layers", "n_layers_D": 2, "ngf": 16, "ndf": 32}}
CYCLEGAN = {"model": "cyclegan", "data": "fashion2edges", "image_size": 32, "batch_size": 8, "beta1": 0.5,
            "model_options": {"netG": "resnet_1blocks", "ngf": 8, "ndf": 16, "netD": "n_layers", "n_layers_D": 2}}
SMALL = 200


@dataclass
class Case:
    name: str
    expect: set[str]  # the findings it must get (empty: a healthy run, which must get none)
    steps: int
    flags: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    toy: str | None = None  # a toy distribution: the run is configured as `ganforge toy` configures it


CASES = [
    Case("healthy", set(), 800, preset="fmnist-demo"),
    Case("minimax_d_wins", {"d_wins"}, 800, {**DCGAN, "loss": "minimax", "d_steps": 5, "lr_d": 2e-3, "lr_g": 1e-5,
                                             "model_options": {"ngf": 16, "ndf": 32}}),
    Case("divergence", {"divergence"}, 400, {**DCGAN, "lr_d": 5.0, "lr_g": 5.0}),
    Case("small_data", {"d_overfit"}, 1600, {**DCGAN, "data": "SMALL", "image_size": 28, "channels": 1,
                                             "augment": "none"}),
    Case("frozen_g", {"d_wins"}, 400, {**DCGAN, "lr_g": 1e-12}),
    Case("constant_g", {"constant_output"}, 1500, {**MLP, "lr_d": 1e-12}),
    Case("fmnist_collapse", {"mode_collapse"}, 1500, {**MLP, "lr_d": 1e-4}),
    Case("toy_ring_healthy", set(), 5000, toy="ring2d"),
    Case("toy_ring_collapse", {"mode_collapse"}, 1500, {"lr_g": 2e-3, "lr_d": 2e-4}, toy="ring2d"),
    Case("pix2pix_healthy", set(), 400, PIX2PIX),
    Case("pix2pix_l1_only", {"gan_term_ignored"}, 400, {**PIX2PIX, "gan_weight": 0.001}),
    Case("cyclegan_blank", {"constant_output"}, 300, {**CYCLEGAN, "task_options": {"lambda_identity": 20.0}}),
]


def write_small_data(root: Path, n: int = SMALL) -> Path:
    """``n`` seeded Fashion-MNIST training images in root/train/<class>/ and ``n`` test images in root/test/<class>/
    (the held-out folder the doctor finds beside an image folder named train); returns root/train."""
    for split in ("train", "test"):
        data = load_dataset("fashion-mnist", None, split)
        for i in torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n].tolist():
            folder = root / split / str(int(data.labels[i]))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.images[i, 0].numpy()).save(folder / f"{i}.png")
    return root / "train"


def config_of(case: Case, seed: int, small: Path):
    flags = {k: (str(small) if v == "SMALL" else v) for k, v in case.flags.items()}
    if case.toy:
        return toy_config(case.toy, {**COMMON, "sample_every": 100_000, "steps": case.steps, "seed": seed, **flags},
                          frames=2)
    return resolve_config(case.preset, flags={**flags, **COMMON, "steps": case.steps, "seed": seed})


def live_onsets(run: Path) -> dict[str, int]:
    """Each kind the health rows reported during training, with the first step it was reported."""
    first: dict[str, int] = {}
    for r in read_metrics(run / "metrics.jsonl"):
        for h in r.get("health") or []:
            first.setdefault(h.get("kind", "?"), int(r["step"]))
    return first


def run_case(case: Case, seed: int, root: Path, small: Path) -> dict:
    out = root / f"{case.name}-{seed}"
    t = time.perf_counter()
    try:
        ganforge.train(config_of(case, seed, small), out)
        failed = None
    except GanforgeError as e:  # a run that diverges may stop with one sentence; its rows are what the doctor reads
        failed = str(e)
    seconds = time.perf_counter() - t
    findings = ganforge.doctor(out)
    serious = [f for f in findings if f.severity in ("warning", "error")]
    live = live_onsets(out)
    after = {f.code: f.first_step for f in serious}
    if case.expect:
        named = case.expect <= set(after) | set(live)
        first = bool(serious) and serious[0].code in case.expect or not serious and set(live) <= case.expect
        extra = {f.code for f in serious if f.severity == "error"} - case.expect
        ok = named and first and not extra
    else:
        ok = not serious and not live
    return {"case": case.name, "seed": seed, "seconds": seconds, "stopped": failed is not None,
            "expected": sorted(case.expect), "after": after, "live": live, "ok": ok,
            "others": sorted((set(after) | set(live)) - case.expect)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--cases", default=",".join(c.name for c in CASES))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [next(c for c in CASES if c.name == name) for name in args.cases.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        small = write_small_data(Path(tmp) / "small") if any("SMALL" in c.flags.values() for c in chosen) else None
        for case in chosen:
            for seed in seeds:
                r = run_case(case, seed, Path(tmp), small)
                results.append(r)
                print(f"{r['case']:18s} seed {r['seed']}: {r['seconds']:6.1f} s{' (stopped)' if r['stopped'] else ''}"
                      f"  expected {r['expected'] or 'nothing'}  during training {r['live'] or 'nothing'}"
                      f"  after {r['after'] or 'nothing'}  {'also' if r['expected'] else 'false alarms'} "
                      f"{r['others'] or 'none'}"
                      f"  {'OK' if r['ok'] else 'WRONG'}", flush=True)
    right = sum(r["ok"] for r in results)
    print(f"{right} of {len(results)} runs diagnosed as expected")


if __name__ == "__main__":
    main()
