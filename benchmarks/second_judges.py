"""Trained runs scored by more than one judge: the fmnist classifier's features and two feature spaces that share
nothing with it.

    .venv/bin/python benchmarks/second_judges.py runs/a runs/b            # each run's EMA generator, 10,000 samples

Issue 24 rules out changes that raise the fmnist extractor's numbers without the pictures getting better: other
judges score the same samples. Two that need no downloaded weights stand in for them here:

    pixels   the images themselves, average-pooled to 14x14 (196 numbers in [-1, 1]): what a pixel-space judge sees
    random   ganforge's offline random feature network (``style.features.RandomMultiScale``, the one style transfer
             and the super-resolution measures use: 32 random filters at each of 3, 5, 7, 11 pixels, ReLU, seed
             1234, never trained), each map average-pooled to 2x2 (512 numbers): edges and texture where they lie,
             without any notion of a class

For each judge and run: FID, precision / recall (k=3) and density / coverage (k=5) of ``--n`` samples (seed
``--sample-seed``) against ``--n`` Fashion-MNIST training images (subset seed ``--real-seed``, the same for every
run). The FIDs of different judges are on different scales: compare runs within a judge, not judges.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

import ganforge
from ganforge.metrics.evaluation import (
    batches_from_array,
    compute_metrics,
    dataset_features,
    extract,
    get_extractor,
)
from ganforge.metrics.features import FeatureExtractor
from ganforge.style.features import RANDOM_FILTERS, RANDOM_SIZES, RandomMultiScale

METRICS = ("fid", "pr", "dc")


def _unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1, H, W] -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


class PixelJudge(FeatureExtractor):
    """The images average-pooled by 2 (28x28 -> 14x14), flattened."""

    name = "pixels"

    def protocol(self) -> dict:
        return {"extractor": "pixels", "pool": 2}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": F.avg_pool2d(_unit(images), 2).flatten(1)}


class RandomJudge(FeatureExtractor):
    """The random multi-scale filters of :class:`RandomMultiScale` on the gray image (as 3 equal channels),
    each map average-pooled to 2x2."""

    name = "random"

    def __init__(self, seed: int = 1234) -> None:
        super().__init__()
        self.net = RandomMultiScale(RANDOM_SIZES, RANDOM_FILTERS, seed)

    def protocol(self) -> dict:
        return {"extractor": "random", "seed": self.net.seed, "sizes": self.net.sizes, "filters": self.net.filters}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:  # extract(): no grad, on the net's device
        x = images.float().div(255).expand(-1, 3, -1, -1)
        maps = self.net(x, self.net.layer_names)
        return {"features": torch.cat([F.adaptive_avg_pool2d(m, 2).flatten(1) for m in maps.values()], 1)}


def judges() -> dict[str, FeatureExtractor]:
    return {"fmnist": get_extractor("fmnist"), "pixels": PixelJudge().eval(), "random": RandomJudge().eval()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (their EMA generator when they have one)")
    p.add_argument("--n", type=int, default=10000, help="samples per run and real images")
    p.add_argument("--sample-seed", type=int, default=5)
    p.add_argument("--real-seed", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    samples = {}
    for run in args.runs:
        images = ganforge.load(run).sample(args.n, seed=args.sample_seed)  # uint8 [N, H, W, C]
        samples[run] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    print(f"{args.n} samples (seed {args.sample_seed}) against {args.n} Fashion-MNIST training images "
          f"(subset seed {args.real_seed}); load average {os.getloadavg()[0]:.2f}")
    print(f"{'judge':8s} {'run':40s} {'FID':>8s} {'prec':>6s} {'recall':>6s} {'dens':>6s} {'cover':>6s}")
    for name, judge in judges().items():
        real, _ = dataset_features("fashion-mnist", "train", args.n, judge, seed=args.real_seed, cache=False)
        for run, x in samples.items():
            m = compute_metrics(extract(batches_from_array(x, 500), judge), real, METRICS)
            print(f"{name:8s} {run[-40:]:40s} {m['fid']:8.3f} {m['precision']:6.3f} {m['recall']:6.3f} "
                  f"{m['density']:6.3f} {m['coverage']:6.3f}", flush=True)


if __name__ == "__main__":
    main()
