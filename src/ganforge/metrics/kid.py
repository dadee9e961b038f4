"""Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a polynomial kernel.

features [N1, D], [N2, D] -> random subsets of m rows -> kernel matrices [m, m] -> MMD^2 per subset
-> (mean, std) over subsets.

With k(x, y) = (gamma x.y + coef0)^degree (default gamma = 1/D, coef0 = 1, degree = 3) the unbiased
estimator for one subset X, Y of m samples each is

    sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1)) - 2 mean_{i, j} k(x_i, y_j).

Unlike FID it has no bias from the sample size, but a single subset can be negative. The defaults
(100 subsets of 1000) follow torch-fidelity; std is np.std over subsets (ddof 0), as there.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError
from .fid import as_features


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """(gamma x.y + coef0)^degree for x [N, D], y [M, D] -> [N, M]; gamma defaults to 1 / D."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between x [m, D] and y [m, D] (same m) with the polynomial kernel."""
    m = x.shape[0]
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def mmd2_biased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                coef0: float = 1.0) -> float:
    """The biased (V-statistic) MMD^2 between x [n, D] and y [m, D] with the same kernel: every pair counted,
    diagonals included, so it is >= 0 and exactly 0 for identical sets. For samples that are paired (the same
    places of two images), where the unbiased estimate is pulled below 0 by the pairs' likeness."""
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    return float(max(k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean(), 0.0))


def kernel_inception_distance(features1: np.ndarray | torch.Tensor, features2: np.ndarray | torch.Tensor,
                              subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                              gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std) between features [N1, D] and [N2, D] over ``subsets`` random subsets.

    Each subset draws m = min(subset_size, N1, N2) rows of each set without replacement, with
    np.random.default_rng(seed), so the result is deterministic for a given seed. When m equals N1 and
    N2 every subset is the whole set and std is 0.
    """
    x = as_features(features1, "first feature set")
    y = as_features(features2, "second feature set")
    if x.shape[1] != y.shape[1]:
        raise GanforgeError(f"KID compares features of the same dimension, got D={x.shape[1]} and D={y.shape[1]}")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise GanforgeError(f"KID needs subsets of at least 2 samples, got subset size m={m} from "
                            f"subset_size={subset_size}, N1={x.shape[0]}, N2={y.shape[0]}")
    if subsets < 1:
        raise GanforgeError(f"KID needs at least 1 subset, got subsets={subsets}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        values[s] = mmd2_unbiased(xs, ys, degree, gamma, coef0)
    return float(values.mean()), float(values.std())
