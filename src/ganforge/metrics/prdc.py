"""Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020).

real [N, D], fake [M, D] -> k-th nearest-neighbour radius of every sample within its own set (the
sample itself excluded) -> count which samples fall in which balls -> fractions.

- precision: fraction of fake samples inside the union of real balls B(x_i, r_k(x_i)).
- recall: fraction of real samples inside the union of fake balls B(y_j, r_k(y_j)).
- density: (1 / (k M)) sum_j #{i : y_j in B(x_i, r_k(x_i))}; about 1 when fake and real are independent
  samples of one distribution, above 1 when fakes crowd where the reals are dense.
- coverage: fraction of real samples whose ball contains at least one fake sample.

Ball boundaries follow each paper's released code: precision / recall use closed balls (distance <=
radius, Kynkaanniemi et al.'s definition), density / coverage open balls (distance < radius, as in Naeem
et al.'s prdc package). With continuous features the two differ with probability 0; with exactly equal
sets they give precision = recall = coverage = 1 and density = 1 (each fake point, a copy of x_i, lies in
its own ball and in the balls of the other reals x_l that have x_i among their k-1 nearest, k M in all,
when no two distances tie).

Distances are computed in float64 in row chunks (``chunk_size`` rows at a time), so 10k x 10k sets need
about chunk_size * 10k * 8 bytes at once rather than 800 MB. Everything is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import GanforgeError
from .fid import as_features

CHUNK_SIZE = 1024


def _squared_distances(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """||a_i - b_j||^2 for a [n, D], b [m, D] with their squared norms given -> [n, m], clipped at 0."""
    d = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def _squared_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def knn_radii_squared(x: np.ndarray, ks: Sequence[int], chunk_size: int = CHUNK_SIZE) -> dict[int, np.ndarray]:
    """Squared distance [N] from every row of x [N, D] to its k-th nearest other row, for each k in ks."""
    n = x.shape[0]
    sq = _squared_norms(x)
    radii = {k: np.empty(n) for k in ks}
    kth = sorted({k - 1 for k in ks})
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        d = _squared_distances(x[start:stop], x, sq[start:stop], sq)
        rows = np.arange(stop - start)
        d[rows, start + rows] = np.inf  # the point itself is not its own neighbour
        part = np.partition(d, kth, axis=1)
        for k in ks:
            radii[k][start:stop] = part[:, k - 1]
    return radii


def _compare(real: np.ndarray, fake: np.ndarray, real_r_pr: np.ndarray | None, fake_r_pr: np.ndarray | None,
             real_r_dc: np.ndarray | None, k_dc: int, chunk_size: int) -> dict[str, float]:
    """One chunked pass over real x fake distances; a metric is computed when its radii are given."""
    n, m = real.shape[0], fake.shape[0]
    real_sq, fake_sq = _squared_norms(real), _squared_norms(fake)
    in_real_manifold = np.zeros(m, dtype=bool)  # precision: fake j inside some real ball
    in_fake_manifold = np.zeros(n, dtype=bool)  # recall: real i inside some fake ball
    balls_containing = np.zeros(m, dtype=np.int64)  # density: real balls (k_dc) containing fake j
    covered = np.zeros(n, dtype=bool)  # coverage: real i's ball (k_dc) contains some fake
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        d = _squared_distances(real[start:stop], fake, real_sq[start:stop], fake_sq)
        if real_r_pr is not None:
            in_real_manifold |= (d <= real_r_pr[start:stop, None]).any(axis=0)
        if fake_r_pr is not None:
            in_fake_manifold[start:stop] = (d <= fake_r_pr[None, :]).any(axis=1)
        if real_r_dc is not None:
            inside = d < real_r_dc[start:stop, None]
            balls_containing += inside.sum(axis=0)
            covered[start:stop] = inside.any(axis=1)
    return {"precision": float(in_real_manifold.mean()), "recall": float(in_fake_manifold.mean()),
            "density": float(balls_containing.sum() / (k_dc * m)), "coverage": float(covered.mean())}


def _check(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, what: str, k: int,
           fake_needs_k: bool) -> tuple[np.ndarray, np.ndarray]:
    real = as_features(real, "real features")
    fake = as_features(fake, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise GanforgeError(f"{what} compares features of the same dimension, got D={real.shape[1]} (real) "
                            f"and D={fake.shape[1]} (fake)")
    if k < 1:
        raise GanforgeError(f"{what} needs k >= 1 nearest neighbours, got k={k}")
    if real.shape[0] <= k or (fake_needs_k and fake.shape[0] <= k):
        sets = "each set" if fake_needs_k else "the real set"
        raise GanforgeError(f"{what} with k={k} needs more than k samples in {sets} to find k-th nearest "
                            f"neighbours, got N={real.shape[0]} real and M={fake.shape[0]} fake")
    if fake.shape[0] == 0:
        raise GanforgeError(f"{what} needs at least 1 fake sample, got M=0")
    return real, fake


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 3,
                     chunk_size: int = CHUNK_SIZE) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of fake [M, D] against real [N, D]."""
    real, fake = _check(real, fake, "precision/recall", k, fake_needs_k=True)
    real_r = knn_radii_squared(real, (k,), chunk_size)[k]
    fake_r = knn_radii_squared(fake, (k,), chunk_size)[k]
    result = _compare(real, fake, real_r, fake_r, None, 1, chunk_size)
    return result["precision"], result["recall"]


def density_coverage(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5,
                     chunk_size: int = CHUNK_SIZE) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of fake [M, D] against real [N, D]; only real balls are used."""
    real, fake = _check(real, fake, "density/coverage", k, fake_needs_k=False)
    real_r = knn_radii_squared(real, (k,), chunk_size)[k]
    result = _compare(real, fake, None, None, real_r, k, chunk_size)
    return result["density"], result["coverage"]


def prdc(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k_pr: int = 3, k_dc: int = 5,
         chunk_size: int = CHUNK_SIZE) -> dict[str, float]:
    """{"precision", "recall", "density", "coverage"} of fake [M, D] against real [N, D] in one pass."""
    real, fake = _check(real, fake, "precision/recall", k_pr, fake_needs_k=True)
    real, fake = _check(real, fake, "density/coverage", k_dc, fake_needs_k=False)
    real_r = knn_radii_squared(real, (k_pr, k_dc), chunk_size)
    fake_r = knn_radii_squared(fake, (k_pr,), chunk_size)[k_pr]
    return _compare(real, fake, real_r[k_pr], fake_r, real_r[k_dc], k_dc, chunk_size)
