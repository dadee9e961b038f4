"""Clusters of unlabelled images: k-means on their pixels, the labels of a self-conditioned GAN.

A conditional GAN on the k-means clusters of its training images learns what a class-conditional one does
(each cluster is a simpler distribution, and D judges each image against its own cluster) without anyone's
labels: the self-conditioned GAN of Liu et al. (CVPR 2020), with the clusters found once, in pixel space,
before training instead of re-clustered from D's features while it trains.

The images are compared at a reduced size (average-pooled by a whole factor to at most ``FEATURE_SIZE`` pixels a
side: 14x14 for Fashion-MNIST), and the centroids are fitted on at most ``FIT_IMAGES`` of them (a seeded subset),
then every image takes its nearest centroid: a few seconds on a CPU for 60,000 images and 30 clusters.

The clustering is deterministic: a seeded subset and k-means++ seeding from a seeded generator, then Lloyd's
iterations in float64 until no image changes cluster (or ``MAX_ITERATIONS``). Equal images, ``k`` and seed give
equal clusters, so a resumed run, every process of a multi-process run and the held-out split see the same ones.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F

from ..errors import GanforgeError

MAX_ITERATIONS = 50
FEATURE_SIZE = 16
FIT_IMAGES = 20000
CHUNK = 8192  # images per distance block (8192 x k float64 at a time)
_FOUND: dict[tuple, torch.Tensor] = {}  # (content hash, k, seed) -> centroids; one entry, the last clustering


def _features(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float64 [N, C*h*w] in [0, 1]: average-pooled by the smallest whole factor that
    brings the side to at most ``FEATURE_SIZE``."""
    factor = -(-max(images.shape[-2:]) // FEATURE_SIZE)
    out = []
    for chunk in images.split(CHUNK):
        x = chunk.double().div_(255.0)
        if factor > 1:
            x = F.avg_pool2d(x, factor, ceil_mode=True)
        out.append(x.reshape(x.shape[0], -1))
    return torch.cat(out)


def squared_distances(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """float64 [N, k]: |x_i - c_j|^2 of rows x [N, D] and centroids [k, D], as |x|^2 - 2 x.c + |c|^2 (never below 0)."""
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)).clamp_min_(0.0)


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index int64 [N] of the nearest centroid, squared distance float64 [N]) of each row of ``x`` [N, D]."""
    index, dist = [], []
    for chunk in x.split(CHUNK):
        value, i = squared_distances(chunk, centroids).min(1)
        index.append(i)
        dist.append(value)
    return torch.cat(index), torch.cat(dist)


def kmeans(x: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids float64 [k, D], labels int64 [N]) of the rows of ``x`` float64 [N, D]: greedy k-means++ seeding
    (Arthur & Vassilvitskii 2007; 2 + ln k candidates a centroid, as scikit-learn does) with
    ``torch.Generator().manual_seed(seed)``, then Lloyd's iterations. A cluster left empty takes the point farthest
    from its centroid."""
    n = x.shape[0]
    if not 1 <= k <= n:
        raise GanforgeError(f"Cannot make {k} clusters of {n} images; choose clusters from 1 to {n}.")
    g = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(0, n, (1,), generator=g)]
    dist = nearest(x, centroids)[1]
    trials = 2 + int(math.log(k))
    for _ in range(1, k):  # greedy k-means++: of a few candidates drawn by D^2, the one that lowers the sum most
        total = float(dist.sum())
        if total > 0:
            candidates = torch.multinomial(dist / total, trials, replacement=True, generator=g)
        else:
            candidates = torch.randint(0, n, (trials,), generator=g)
        c = x[candidates]
        options = torch.minimum(dist[:, None], squared_distances(x, c))  # [N, trials]
        best = int(options.sum(0).argmin())
        centroids = torch.cat([centroids, c[best:best + 1]])
        dist = options[:, best].contiguous()
    labels = None
    for _ in range(MAX_ITERATIONS):
        new, dist = nearest(x, centroids)
        if labels is not None and torch.equal(new, labels):
            return centroids, labels
        labels = new
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        for j in (counts == 0).nonzero().flatten().tolist():  # an empty cluster: restart it at the worst-fit point
            far = int(dist.argmax())
            sums[j], counts[j], dist[far] = x[far], 1, 0.0
        centroids = sums / counts[:, None].double()
    return centroids, nearest(x, centroids)[0]


def cluster_images(images: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """The centroids float64 [k, C*h*w] of k-means on uint8 [N, C, H, W] images (the last result is kept,
    so the held-out split of the same run does not cluster the training images again)."""
    key = (hashlib.sha1(images.contiguous().numpy().tobytes()).hexdigest(), tuple(images.shape), k, seed)
    if key not in _FOUND:
        x = _features(images)
        if len(x) > FIT_IMAGES:
            x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:FIT_IMAGES]]
        _FOUND.clear()
        _FOUND[key] = kmeans(x, k, seed)[0]
    return _FOUND[key]


def assign_clusters(images: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """int64 [N]: the cluster (nearest centroid) of each uint8 [N, C, H, W] image."""
    x = _features(images)
    if x.shape[1] != centroids.shape[1]:
        raise GanforgeError("These images do not have the size and channels of the clustered training images.")
    return nearest(x, centroids)[0]


def cluster_names(k: int) -> list[str]:
    """The class names of ``k`` clusters: "cluster 0" ... (their index, so a name and an index agree)."""
    return [f"cluster {i}" for i in range(k)]
