"""What the fashion <-> edges translation benchmarks share: the held-out pairs and the class accuracy of garments.

The test split of fashion2edges pairs each Fashion-MNIST test garment x (padded to 32x32) with its Canny edge map
edges(x), the same pairs pix2pix's edges2fashion holds in its test split, so both directions have an answer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.data.unaligned import load_unaligned


def held_out_pairs(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` test pairs: garments x and edge maps edges(x) (uint8 [n, 1, 32, 32]) and the classes of x
    (int64 [n]); fewer when the split holds fewer."""
    test = load_unaligned("fashion2edges", None, "test", load_size=32, crop_size=32, flip=False)
    n = min(n, test.A.shape[0])
    return test.A[:n], test.B[:n], test.pair_labels[:n]


def accuracy(classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` (uint8 [N, C, 32, 32]) whose central 28x28 the fmnist classifier puts in ``labels``."""
    hits = 0
    for i in range(0, images.shape[0], 500):
        logits = classifier(images[i:i + 500, :, 2:30, 2:30])["logits"]
        hits += int((logits.argmax(1) == labels[i:i + 500]).sum())
    return hits / images.shape[0]


def edge_scores(made: torch.Tensor, edges: torch.Tensor, tolerance: int = 1) -> dict[str, float]:
    """How well drawn edge maps ``made`` match the true ``edges`` (both uint8 [N, 1, H, W], dark lines on white),
    as boundary benchmarks score edge detectors (Martin et al. 2004, with a dilation in place of their one-to-one
    matching): a pixel darker than 128 is a line pixel; precision is the share of drawn line pixels within
    ``tolerance`` pixels (a (2t+1)^2 square) of a true one, recall the share of true line pixels within
    ``tolerance`` of a drawn one, F1 their harmonic mean. SSIM asks for the exact pixel: a 1-pixel shift of the
    true edges themselves scores only about 0.2 there, so the two read together."""
    drawn, true = made < 128, edges < 128

    def near(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x.float(), 2 * tolerance + 1, 1, tolerance) > 0 if tolerance else x

    precision = float((drawn & near(true)).sum()) / max(int(drawn.sum()), 1)
    recall = float((true & near(drawn)).sum()) / max(int(true.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"edge_precision": precision, "edge_recall": recall, "edge_f1": f1}
