"""Checks of a fixed batch of samples (seed 0): a constant image, noise, and mode collapse.

A constant G draws the same image for every z: each pixel's standard deviation over the samples, averaged over
the pixels, is near 0. That covers one flat image and one detailed image alike (a G trained against a D that does
not learn maps every z to the one image that D scores highest, which with the MLP GAN is a saturated pattern of
black and white pixels: a spread of 0.20 and 0.27 of 255 with seeds 1 and 0 in benchmarks/doctor_cases.py, against
70 for 256 of Fashion-MNIST's training images; DCGANs against a frozen or 100x slower D kept spreads of 4-22 over
1200-2400 steps, their batch norm keeping a batch's samples apart).

Diversity is the mean pairwise distance of the batch, in the fmnist classifier's feature space for 1-channel
28x28 images and in pixel space otherwise, compared with the same measure on real training images when the
run's data can be read. Without real images the batch is compared with itself: the share of its pixel
variance that lies between images rather than within them (0 when every image is the same).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..checkpoint import list_checkpoints
from ..config import config_from_dict
from ..errors import GanforgeError
from ..families import family_of, load
from ..metrics.fmnist import FashionFeatureExtractor
from .findings import Finding
from .rules import learning_rates

N_SAMPLES = 256
CONSTANT_STD = 2.0  # a pixel's standard deviation over the samples (0..255, mean over pixels): below it, one image
NOISE_STD = 255 / math.sqrt(12)  # the standard deviation of uniform noise on 0..255 (73.6)
NOISE_CORRELATION = 0.1  # neighbouring pixels of noise are uncorrelated; of images, strongly correlated
COLLAPSE_RATIO = 0.4  # samples' diversity below 40% of the real images' diversity
ENTROPY_RATIO = 0.5  # class-histogram entropy below half of the real images'
SELF_SHARE = 0.05  # without real images: less than 5% of the variance between images
YOUNG_STEPS = 1000  # before this step a sample finding must persist across two checkpoints
MEASURE = {"constant_output": "pixel_std_across_samples", "noise_output": "neighbour_correlation",
           "mode_collapse": "diversity"}  # the number that must not have risen by a fifth for a finding to persist


def pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs of rows of ``x`` [N, D] (N >= 2)."""
    d = torch.cdist(x.double(), x.double())
    n = x.shape[0]
    return float(d.sum() / (n * (n - 1)))


def spread_across_samples(images: torch.Tensor) -> float:
    """How much a pixel changes from one sample to another: the standard deviation over the batch of each pixel of
    uint8 [N, C, H, W] images, averaged over the pixels (0 when every sample is the same image)."""
    return float(images.double().std(0, unbiased=False).mean())


def class_entropy(logits: torch.Tensor) -> float:
    """Entropy in bits of the histogram of predicted classes (argmax of ``logits`` [N, K])."""
    counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1]).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log2()).sum()) + 0.0  # + 0.0: one class gives 0, not -0


def neighbour_correlation(images: torch.Tensor) -> float:
    """Correlation of horizontally neighbouring pixels of uint8 [N, C, H, W] images (about 0 for noise)."""
    x = images.double()
    a, b = x[..., :-1].flatten(), x[..., 1:].flatten()
    a, b = a - a.mean(), b - b.mean()
    denom = float(a.norm() * b.norm())
    return float((a * b).sum()) / denom if denom else 1.0


def between_share(images: torch.Tensor) -> float:
    """The share of the batch's pixel variance that lies between images (per-pixel variance over the batch,
    summed, over the total variance of all pixel values)."""
    x = images.double().flatten(1)
    total = float(x.var(unbiased=False)) * x.shape[1]
    return float(x.var(0, unbiased=False).sum()) / total if total else 0.0


def _describe(images: torch.Tensor, extractor: FashionFeatureExtractor | None) -> dict:
    if extractor is not None:
        out = extractor(images)
        return {"diversity": pairwise_distance(out["features"]), "entropy": class_entropy(out["logits"])}
    return {"diversity": pairwise_distance(images.double().flatten(1) / 255)}


def _real_images(pipe, config: dict, n: int) -> torch.Tensor | None:
    """``n`` training images (a seeded pick), as the run's family loads its data; None when they cannot be read."""
    try:
        cfg = config_from_dict(config.get("config") or {})
        real = family_of(pipe).load_data(cfg, cfg.data.split, False).images
    except (GanforgeError, OSError, ValueError, RuntimeError):
        return None
    pick = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(0))[:n]
    return real[pick]


def check_samples(run_dir: str | Path, config: dict, step: int | None = None, n: int = N_SAMPLES) -> list[Finding]:
    """Sample ``n`` images (seed 0) from the run's latest checkpoint (of step ``step``, the last logged one) and
    check them; [] for models that do not sample from noise.

    A young run (under :data:`YOUNG_STEPS` steps) has not learned the variety of its data yet, so a finding there
    must persist: the checkpoint before the latest must show the same finding, with its measure not improved by
    a fifth or more since. Otherwise the finding becomes an "info" note (``too_early``) that says so."""
    pipe = load(run_dir, "latest")
    if not family_of(pipe).can("sample"):
        return []
    found = _check(pipe, config, step, n)
    if not found or step is None or step >= YOUNG_STEPS:
        return found
    [f] = found
    steps = list_checkpoints(Path(run_dir) / "checkpoints")
    earlier = [c for c in steps if int(c.name[5:]) < step]
    before = _check(load(earlier[-1]), config, int(earlier[-1].name[5:]), n) if earlier else []
    key = MEASURE[f.code]
    if before and before[0].code == f.code and f.evidence.get(key, 0) < 1.2 * before[0].evidence.get(key, 0):
        f.evidence["persisted"] = {"step": before[0].first_step, key: before[0].evidence.get(key)}
        return [f]
    seen = (f"the checkpoint of step {before[0].first_step} showed {before[0].code}, but {key} has risen since"
            if before and before[0].code == f.code else
            "no earlier checkpoint shows it" if not before and earlier else "there is no earlier checkpoint")
    f.evidence["young_run"] = {"steps_under": YOUNG_STEPS, "earlier": seen}
    return [Finding("info", "too_early",
                    f"At step {step} G's samples look like {f.code}, but a run this young has not learned its data "
                    f"yet and {seen}: check again later (the doctor reports it when it persists across two "
                    f"checkpoints, or from step {YOUNG_STEPS} on).", f.evidence, "")]


def _constant_fix(config: dict) -> str:
    """A D slower than G lets G map every z to the one image D scores highest (Goodfellow 2016, NIPS tutorial,
    section 5.1.1): then the fix is a D as fast as G."""
    lr_g, lr_d = learning_rates(config)
    later = (f"lr_d={lr_g:g} (D as fast as G; against a D that lags, G draws the one image D scores highest)"
             if lr_d < lr_g else "train again with loss=nonsaturating and a lower lr_d=")
    return f"early in training: more steps=; later: {later}"


def _check(pipe, config: dict, step: int | None, n: int) -> list[Finding]:
    images = torch.from_numpy(pipe.sample(n, seed=0)).permute(0, 3, 1, 2).contiguous()  # uint8 [N, C, H, W]
    at = {"steps": [step, step]} if step is not None else {}
    std = float(images.double().std())
    spread = spread_across_samples(images)
    if spread < CONSTANT_STD:
        return [Finding("error", "constant_output",
                        "G draws the same image whatever its noise input, so it is not using z: early in training it "
                        "has not started to, later it has collapsed to one output.",
                        {**at, "samples": n, "seed": 0, "pixel_std_across_samples": round(spread, 3),
                         "pixel_std": round(std, 3)}, _constant_fix(config))]
    corr = neighbour_correlation(images)
    if std > 0.5 * NOISE_STD and corr < NOISE_CORRELATION:
        return [Finding("error", "noise_output",
                        "G's images are pixel noise with no shapes in them: it has not learned anything yet, "
                        "or training broke.",
                        {**at, "samples": n, "seed": 0, "pixel_std": round(std, 3),
                         "neighbour_correlation": round(corr, 4), "noise_std": round(NOISE_STD, 3)},
                        "train longer (steps=), or lower lr_g= and lr_d= if the losses spiked")]
    c, h, w = images.shape[1:]
    extractor = FashionFeatureExtractor() if (c, h, w) == (1, 28, 28) else None
    fake = _describe(images, extractor)
    real_images = _real_images(pipe, config, n)
    evidence = {**at, "samples": n, "seed": 0, "space": "fmnist features" if extractor else "pixels",
                "diversity": round(fake["diversity"], 4)}
    if real_images is not None and real_images.shape[1:] == images.shape[1:]:
        real = _describe(real_images, extractor)
        ratio = fake["diversity"] / real["diversity"] if real["diversity"] else 1.0
        evidence.update(real_diversity=round(real["diversity"], 4), diversity_ratio=round(ratio, 4))
        collapsed = ratio < COLLAPSE_RATIO
        if "entropy" in fake:
            evidence.update(class_entropy_bits=round(fake["entropy"], 3),
                            real_class_entropy_bits=round(real["entropy"], 3))
            collapsed = collapsed or fake["entropy"] < ENTROPY_RATIO * real["entropy"]
        against = "the real training images"
    else:
        share = between_share(images)
        evidence.update(between_image_variance_share=round(share, 4))
        collapsed = share < SELF_SHARE
        against = "its own pixel variation"
    if not collapsed:
        return []
    return [Finding("warning", "mode_collapse",
                    f"G's samples are far less varied than {against}: it makes a few kinds of image over and over "
                    f"(mode collapse), or, early in training, has not learned the variety of the data yet.", evidence,
                    "early in training: more steps=; later: loss=nonsaturating with r1_weight=1, augment=ada on "
                    "small data, a lower lr_g=, or task.mode_seeking=0.3 (nearby z may not give one image)")]
