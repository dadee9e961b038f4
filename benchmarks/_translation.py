"""What the fashion <-> edges translation benchmarks share: the held-out pairs and the class accuracy of garments.

The test split of fashion2edges pairs each Fashion-MNIST test garment x (padded to 32x32) with its Canny edge map
edges(x), the same pairs pix2pix's edges2fashion holds in its test split, so both directions have an answer.
"""

from __future__ import annotations

import torch

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
