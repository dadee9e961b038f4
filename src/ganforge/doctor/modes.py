"""Modes covered on the 2-D toy mixtures, counted as the unrolled-GAN and VEEGAN papers count them.

The ring of 8 Gaussians (Metz et al. 2017) and the 5x5 grid of 25 (Srivastava et al. 2017): a generated point is
"high quality" when it lies within 3 standard deviations of a mode's centre, and a mode is covered when enough
high-quality points land at it. "Enough" is ours: a fifth of the points a mode would get if G spread them evenly
over the modes (62 of 2,500 points on the ring, 20 on the grid).
"""

from __future__ import annotations

import math

import numpy as np

from ..data.toy import GRID_SIDE, GRID_STD, RING_MODES, RING_RADIUS, RING_STD

QUALITY_STDS = 3.0
COVER_SHARE = 0.2  # a mode is covered with at least this share of an even split of the points


def mode_set(name: str) -> tuple[np.ndarray, float] | None:
    """(centres [K, 2], standard deviation) of a built-in toy mixture, or None for data without counted modes."""
    if name == "ring2d":
        angle = 2 * math.pi * np.arange(RING_MODES) / RING_MODES
        return RING_RADIUS * np.stack([np.cos(angle), np.sin(angle)], 1), RING_STD
    if name == "grid2d":
        half = (GRID_SIDE - 1) / 2
        axis = np.arange(GRID_SIDE) - half
        return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2).astype(float), GRID_STD
    return None


def count_modes(points: np.ndarray, centres: np.ndarray, std: float) -> dict:
    """Modes covered by ``points`` [N, 2]: {"covered", "total", "high_quality" (the share of points within 3 std
    of a centre), "points", "min_count" (points a mode needs to count as covered), "counts" (high-quality points
    at each mode)}."""
    points = np.asarray(points, dtype=float).reshape(len(points), -1)
    distance = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)  # [N, K]
    nearest = distance.argmin(1)
    good = distance[np.arange(len(points)), nearest] < QUALITY_STDS * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    need = max(1, math.ceil(COVER_SHARE * len(points) / len(centres)))
    return {"covered": int((counts >= need).sum()), "total": len(centres),
            "high_quality": round(float(good.mean()), 4), "points": len(points), "min_count": need,
            "counts": counts.tolist()}
