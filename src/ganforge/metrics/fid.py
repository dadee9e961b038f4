"""Frechet Inception Distance (Heusel et al. 2017) as three pure steps.

features [N, D] -> ``gaussian_stats`` -> (mu [D], sigma [D, D]) -> ``frechet_distance`` -> float

The distance between two Gaussians N(mu1, sigma1) and N(mu2, sigma2) is

    ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

Only Tr((sigma1 sigma2)^(1/2)) is hard. Two exact ways are offered:

- ``method="eigh"`` (default): factor sigma1 = A A^T; then sigma1 sigma2 = A (A^T sigma2) has the same
  eigenvalues as the symmetric PSD matrix S = A^T sigma2 A, so the trace is sum(sqrt(eigvalsh(S))).
  A is the Cholesky factor when sigma1 is positive definite (cheap; sigma2 is tried next, as
  eig(sigma1 sigma2) = eig(sigma2 sigma1)), else the symmetric square root from eigh (both covariances
  singular, N <= D: slower, eigenvectors needed). No complex numbers; tiny negative eigenvalues from
  rounding are clipped to 0. Usually eigenvalues only, so several times faster than sqrtm at D = 2048.
- ``method="sqrtm"``: scipy.linalg.sqrtm of sigma1 @ sigma2, as pytorch-fid does, with eps * I added to
  both covariances when the square root is not finite or not accurate, and tiny imaginary parts dropped.

Reference statistics are stored as .npz with keys ``mu`` and ``sigma`` (the names pytorch-fid uses), plus
an optional JSON string ``protocol`` saying how the features were made (extractor, resize, N, split).
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import GanforgeError
from ..io import write_atomic

SQRTM_EPS = 1e-6  # added to both covariance diagonals when sqrtm fails (pytorch-fid's default)
SQRTM_TOLERANCE = 1e-6  # relative Frobenius residual ||X X - A|| / ||A|| accepted from sqrtm


def as_features(x: np.ndarray | torch.Tensor, what: str = "features") -> np.ndarray:
    """A feature matrix as float64 numpy [N, D]; torch tensors are moved to the CPU and converted.

    Raises GanforgeError when ``x`` is not 2-D or holds NaN / infinite values.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2:
        raise GanforgeError(f"{what} must be a 2-D array [N, D] (samples x feature dimensions), "
                            f"got shape {tuple(array.shape)}")
    bad = int(array.size - np.isfinite(array).sum())
    if bad:
        raise GanforgeError(f"{what} contain {bad} NaN or infinite values out of {array.size}; "
                            "check the images and the feature extractor that produced them")
    return array


def gaussian_stats(features: np.ndarray | torch.Tensor, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (divides by N - 1) of features [N, D], in float64.

    Needs N >= 2. Warns when N <= D: the covariance then has rank at most N - 1 < D and FID from it
    is biased and unreliable (the standard protocol uses N = 50000 for D = 2048).
    """
    x = as_features(features)
    n, d = x.shape
    if n < 2:
        raise GanforgeError(f"FID needs at least 2 samples per set to estimate a covariance, got N={n}")
    if n <= d and warn:
        warn_small_n(n, d)
    mu = x.mean(axis=0)
    sigma = np.cov(x, rowvar=False)
    return mu, np.atleast_2d(sigma)


def _check_stats(mu: np.ndarray, sigma: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GanforgeError(f"{which} statistics must be mu [D] and sigma [D, D], got mu {tuple(mu.shape)} "
                            f"and sigma {tuple(sigma.shape)}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise GanforgeError(f"{which} statistics contain NaN or infinite values; recompute them from finite features")
    return mu, sigma


def _cholesky(a: torch.Tensor) -> torch.Tensor | None:
    """Lower-triangular L [D, D] with L L^T = a, or None when a is not (numerically) positive definite."""
    factor, info = torch.linalg.cholesky_ex(a)
    return factor if int(info) == 0 else None


def _trace_sqrt_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((sigma1 sigma2)^(1/2)) = sum sqrt(eigvalsh(F^T b F)) where F F^T = a and {a, b} = {sigma1, sigma2}.

    eig(sigma1 sigma2) = eig(sigma2 sigma1), so F is the Cholesky factor of whichever covariance is positive
    definite, or the eigh square root of sigma1 when neither is. float64 LAPACK through torch (MKL).
    """
    s1, s2 = torch.tensor(sigma1), torch.tensor(sigma2)  # copies: inputs may be read-only arrays
    factor, other = _cholesky(s1), s2
    if factor is None:
        factor, other = _cholesky(s2), s1
    if factor is None:
        w, v = torch.linalg.eigh(s1)
        factor, other = (v * w.clamp(min=0).sqrt()) @ v.T, s2
    s = factor.T @ other @ factor
    w = torch.linalg.eigvalsh((s + s.T) / 2)
    return float(w.clamp(min=0).sqrt().sum())


def _sqrtm_checked(a: np.ndarray) -> np.ndarray | None:
    """scipy's sqrtm of a [D, D], or None when the result is not finite or its residual is large."""
    from scipy import linalg  # optional dependency, only for method="sqrtm"

    with warnings.catch_warnings():  # "matrix is singular": judged by the residual below instead
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(a)
    if not np.isfinite(root).all():
        return None
    scale = max(float(np.linalg.norm(a)), np.finfo(np.float64).tiny)
    if float(np.linalg.norm(root @ root - a)) / scale > SQRTM_TOLERANCE:
        return None
    return root


def _trace_sqrt_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    root = _sqrtm_checked(sigma1 @ sigma2)
    if root is None:
        offset = eps * np.eye(sigma1.shape[0])
        root = _sqrtm_checked((sigma1 + offset) @ (sigma2 + offset))
        if root is None:
            raise GanforgeError(f"the matrix square root in FID did not converge even with eps={eps} added to the "
                                "covariance diagonals; the statistics may be degenerate (check for constant features)")
    if np.iscomplexobj(root):
        trace = float(np.trace(root.real))
        imag = float(np.abs(root.imag).max())
        if imag > 1e-3 * abs(trace):
            raise GanforgeError(f"the matrix square root in FID has an imaginary part of {imag:.3g} against a trace "
                                f"of {trace:.3g}; the covariances are not valid (not symmetric PSD?)")
        root = root.real
    return float(np.trace(root))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     method: str = "eigh", eps: float = SQRTM_EPS) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) for mu [D], sigma [D, D].

    ``method`` is "eigh" (default; exact, eigenvalues of a symmetric matrix) or "sqrtm" (scipy.linalg.sqrtm
    like pytorch-fid; ``eps`` is added to the diagonals only when the plain square root fails). For identical
    statistics rounding can leave a tiny negative result (about -1e-12, down to -1e-6 with singular
    covariances, where square roots of rounding-sized eigenvalues add up); it is returned as computed.
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "first")
    mu2, sigma2 = _check_stats(mu2, sigma2, "second")
    if mu1.shape != mu2.shape:
        raise GanforgeError(f"FID compares statistics of the same feature dimension, got D={mu1.shape[0]} "
                            f"and D={mu2.shape[0]}; were they made by different extractors?")
    if method == "eigh":
        trace_sqrt = _trace_sqrt_eigh(sigma1, sigma2)
    elif method == "sqrtm":
        trace_sqrt = _trace_sqrt_sqrtm(sigma1, sigma2, eps)
    else:
        raise GanforgeError(f"unknown FID method {method!r}; use 'eigh' or 'sqrtm'")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def fid_from_features(features1: np.ndarray | torch.Tensor, features2: np.ndarray | torch.Tensor,
                      method: str = "eigh", warn: bool = True) -> float:
    """FID between two feature sets [N1, D] and [N2, D]: gaussian_stats on each, then frechet_distance;
    ``warn``: one warning when the smaller set has no more samples than dimensions (callers that flag
    that in their own result pass False)."""
    mu1, sigma1 = gaussian_stats(features1, warn=False)
    mu2, sigma2 = gaussian_stats(features2, warn=False)
    n, d = min(len(features1), len(features2)), mu1.shape[0]
    if n <= d and warn:  # one warning for the pair
        warn_small_n(n, d)
    return frechet_distance(mu1, sigma1, mu2, sigma2, method=method)


def warn_small_n(n: int, d: int) -> None:
    warnings.warn(f"FID with N={n} samples and D={d} feature dimensions is unreliable (the covariance has rank "
                  f"at most N-1={n - 1} < D); use more samples than dimensions", stacklevel=3)


def save_stats(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, **protocol: object) -> Path:
    """Write mu [D] and sigma [D, D] to the .npz file ``path`` (exactly that name), with ``protocol``.

    ``protocol`` (extractor, resize, N, reference split, ...) must be JSON-serialisable; it is stored as a
    JSON string under the key "protocol". The file is written to a temporary name and renamed, so an
    interrupted save never leaves a half-written file. Returns the path.
    """
    mu, sigma = _check_stats(mu, sigma, "saved")
    try:
        protocol_json = json.dumps(protocol, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise GanforgeError(f"the FID statistics protocol must be JSON-serialisable (strings, numbers, lists, "
                            f"dicts): {err}") from None

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name without it
            np.savez(f, mu=mu, sigma=sigma, protocol=np.array(protocol_json))

    return write_atomic(path, write)


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read (mu [D], sigma [D, D], protocol dict) from an .npz file made by save_stats or pytorch-fid.

    Files without a "protocol" key (pytorch-fid's) give an empty dict. Nothing is unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"FID statistics file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("mu", "sigma") if key not in data.files]
            if missing:
                raise GanforgeError(f"FID statistics file {str(path)!r} lacks the key(s) {missing}; "
                                    f"it has {sorted(data.files)}, expected 'mu' and 'sigma'")
            mu, sigma = data["mu"], data["sigma"]
            protocol_json = str(data["protocol"]) if "protocol" in data.files else "{}"
    except GanforgeError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise GanforgeError(f"FID statistics file {str(path)!r} is not a readable .npz file ({err})") from None
    try:
        protocol = json.loads(protocol_json)
    except json.JSONDecodeError:
        raise GanforgeError(f"FID statistics file {str(path)!r} has a 'protocol' entry that is not valid JSON"
                            ) from None
    if not isinstance(protocol, dict):
        raise GanforgeError(f"FID statistics file {str(path)!r} has a 'protocol' entry that is not a JSON object")
    mu, sigma = _check_stats(mu, sigma, f"loaded ({path.name})")
    return mu, sigma, protocol
