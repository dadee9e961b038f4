"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))).

class logits or probabilities [N, K] -> log p(y|x) (log-softmax in float64) -> per split: marginal
p(y) of the split and exp(mean_i KL(p(y|x_i) || p(y))) -> (mean, std) over splits.

The N samples are cut into ``splits`` consecutive parts with np.array_split (sizes differ by at most
one; the standard protocol uses N = 50000 and 10 splits). std is np.std over splits (ddof 0), as
torch-fidelity reports it. The score lies in [1, K].
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError
from .fid import as_features


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _log_probs(probs: np.ndarray) -> np.ndarray:
    if (probs < 0).any():
        raise GanforgeError(f"IS probabilities must be non-negative, got a minimum of {probs.min():.3g}; "
                            "pass from_logits=True for raw classifier outputs")
    sums = probs.sum(axis=1)
    worst = float(np.abs(sums - 1.0).max())
    if worst > 1e-3:
        raise GanforgeError(f"IS probabilities must sum to 1 per sample, found a row sum off by {worst:.3g}; "
                            "pass from_logits=True for raw classifier outputs")
    with np.errstate(divide="ignore"):
        return np.log(probs / sums[:, None])


def split_score(log_p: np.ndarray) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))) for log-probabilities [n, K] of one split; p(y) is their mean."""
    n = log_p.shape[0]
    top = log_p.max(axis=0)
    finite_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # classes nobody predicts: log 0 = -inf
        log_marginal = finite_top + np.log(np.exp(log_p - finite_top).sum(axis=0)) - np.log(n)
        p = np.exp(log_p)
        terms = np.where(p > 0, p * (log_p - log_marginal), 0.0)  # 0 log 0 = 0
    return float(np.exp(terms.sum(axis=1).mean()))


def inception_score(logits_or_probs: np.ndarray | torch.Tensor, splits: int = 10,
                    from_logits: bool = True) -> tuple[float, float]:
    """IS (mean, std over splits) of class logits [N, K] (or probabilities [N, K] with from_logits=False)."""
    x = as_features(logits_or_probs, "IS class predictions")
    n, k = x.shape
    if splits < 1 or n < splits:
        raise GanforgeError(f"IS needs at least one sample per split, got N={n} samples for splits={splits}")
    if k < 2:
        raise GanforgeError(f"IS needs predictions over at least 2 classes, got K={k}")
    log_p = _log_softmax(x) if from_logits else _log_probs(x)
    scores = np.array([split_score(part) for part in np.array_split(log_p, splits)])
    return float(scores.mean()), float(scores.std())
