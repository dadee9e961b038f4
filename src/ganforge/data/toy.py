"""Toy distributions for watching a GAN learn: 1-D densities (Goodfellow et al. 2014, figure 1) and
2-D point clouds (GAN Lab).

Every toy distribution is registered in ``DATASETS`` like the image datasets, but its ``images`` are
float32 points [N, dim] (dim 1 or 2) instead of uint8 images; BatchStream and the trainer only index
them and move them to the device. ``points`` reads the user's own samples from a file given as
``data_root`` (CSV, TXT or NPY; one column for 1-D, two for 2-D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from ..errors import GanforgeError
from ..registry import Registry
from . import DATASETS, ImageData

N_POINTS = 20_000  # points in a generated toy training set (and the least a user's file is repeated up to)
_SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class ToyDistribution:
    name: str
    dim: int
    sample: Callable[[np.random.Generator, int], np.ndarray]  # (rng, n) -> float [n, dim]
    density: Callable[[np.ndarray], np.ndarray] | None  # 1-D: exact p(x) for x float [M]
    description: str


@dataclass
class ToyTarget:
    """A toy training set with what its pictures need.

    points: float32 [N, dim]; density: p(x) for x float [M] (1-D only: exact for the built-in
    distributions, a kernel density estimate for a user's samples); limits: the fixed plot range
    (lo, hi) of each dimension (a square box in 2-D).
    """

    name: str
    points: np.ndarray
    density: Callable[[np.ndarray], np.ndarray] | None
    limits: tuple[tuple[float, float], ...]

    @property
    def dim(self) -> int:
        return self.points.shape[1]


TOY: Registry[ToyDistribution] = Registry("toy distribution")


def _register(name: str, dim: int, description: str, density: Callable | None = None):
    def add(sample: Callable[[np.random.Generator, int], np.ndarray]):
        TOY.register(name, ToyDistribution(name, dim, sample, density, description))
        return sample

    return add


# ----------------------------------------------------------------------------- 1-D
_MIX_W, _MIX_MU, _MIX_SD = np.array([0.5, 0.5]), np.array([-1.5, 1.5]), np.array([0.35, 0.35])


@_register("gaussian1d", 1, "N(1, 0.5^2)", lambda x: stats.norm.pdf(x, 1.0, 0.5))
def _gaussian1d(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(1.0, 0.5, (n, 1))


def _mixture_pdf(x: np.ndarray) -> np.ndarray:
    return sum(w * stats.norm.pdf(x, m, s) for w, m, s in zip(_MIX_W, _MIX_MU, _MIX_SD, strict=True))


@_register("mixture1d", 1, "1/2 N(-1.5, 0.35^2) + 1/2 N(1.5, 0.35^2)", _mixture_pdf)
def _mixture1d(rng: np.random.Generator, n: int) -> np.ndarray:
    k = rng.choice(len(_MIX_W), size=n, p=_MIX_W)
    return rng.normal(_MIX_MU[k], _MIX_SD[k])[:, None]


@_register("uniform1d", 1, "U(-1.5, 1.5)", lambda x: stats.uniform.pdf(x, -1.5, 3.0))
def _uniform1d(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-1.5, 1.5, (n, 1))


# ----------------------------------------------------------------------------- 2-D
RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.05
GRID_SIDE, GRID_STD = 5, 0.05


@_register("ring2d", 2, f"{RING_MODES} gaussians (std {RING_STD}) on a circle of radius {RING_RADIUS}")
def _ring2d(rng: np.random.Generator, n: int) -> np.ndarray:
    angle = 2 * math.pi * rng.integers(0, RING_MODES, n) / RING_MODES
    centres = RING_RADIUS * np.stack([np.cos(angle), np.sin(angle)], 1)
    return centres + rng.normal(0.0, RING_STD, (n, 2))


@_register("grid2d", 2, f"{GRID_SIDE}x{GRID_SIDE} gaussians (std {GRID_STD}) at integer points -2..2")
def _grid2d(rng: np.random.Generator, n: int) -> np.ndarray:
    half = (GRID_SIDE - 1) / 2
    centres = rng.integers(0, GRID_SIDE, (n, 2)) - half
    return centres + rng.normal(0.0, GRID_STD, (n, 2))


@_register("moons2d", 2, "two interleaving half circles (noise 0.05)")
def _moons2d(rng: np.random.Generator, n: int) -> np.ndarray:
    t = rng.uniform(0.0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1.0 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    return 1.2 * (np.stack([x - 0.5, y - 0.25], 1) + rng.normal(0.0, 0.05, (n, 2)))


@_register("spiral2d", 2, "a spiral of 1.5 turns, radius up to 2 (noise 0.04)")
def _spiral2d(rng: np.random.Generator, n: int) -> np.ndarray:
    theta = 0.5 * math.pi + 3 * math.pi * np.sqrt(rng.random(n))  # uniform along the arc, roughly
    r = 2.0 * theta / (3.5 * math.pi)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + rng.normal(0.0, 0.04, (n, 2))


@_register("line2d", 2, "a segment from (-1.8, -0.9) to (1.8, 0.9) (noise 0.03)")
def _line2d(rng: np.random.Generator, n: int) -> np.ndarray:
    t = rng.uniform(-1.0, 1.0, n)
    return np.stack([1.8 * t, 0.9 * t], 1) + rng.normal(0.0, 0.03, (n, 2))


# ----------------------------------------------------------------------------- a user's file
def read_points(path: str | Path) -> np.ndarray:
    """Points from a file: .npy (array [N] or [N, 1] for 1-D, [N, 2] for 2-D) or text (.csv, .txt, ...:
    one point per line, values separated by commas, semicolons or spaces; '#' comments and a header
    line are skipped). Returns float64 [N, dim] as given; raises GanforgeError for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanforgeError(f"No points file {str(path)!r}; give a .csv, .txt or .npy file of 1-D or 2-D points.")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise GanforgeError(f"{str(path)!r} is not a readable .npy array ({e}).") from None
        if arr.dtype.kind not in "iuf":
            raise GanforgeError(f"{str(path)!r} holds {arr.dtype} values; the points must be numbers.")
        arr = arr.astype(np.float64)
    else:
        arr = _read_text_points(path)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2):
        raise GanforgeError(f"{str(path)!r} holds an array of shape {tuple(arr.shape)}; give N values (1-D) "
                            "or N rows of 2 values (2-D points).")
    if not np.isfinite(arr).all():
        raise GanforgeError(f"{str(path)!r} contains NaN or infinite values; every point must be finite.")
    if arr.shape[0] < 2 or float(arr.std(0).max()) == 0.0:
        raise GanforgeError(f"{str(path)!r} needs at least 2 different points, got {arr.shape[0]} "
                            f"({'all equal' if arr.shape[0] >= 2 else 'too few'}).")
    return arr


def _read_text_points(path: Path) -> np.ndarray:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise GanforgeError(f"{str(path)!r} is not a text file of points; use .csv, .txt or .npy.") from None
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").replace(";", " ").split()
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows:  # a header line
                continue
            raise GanforgeError(f"{str(path)!r} line {number}: cannot read {line!r} as numbers.") from None
        if rows and len(values) != len(rows[0]):
            raise GanforgeError(f"{str(path)!r} line {number} has {len(values)} values, the lines before "
                                f"it {len(rows[0])}; every point needs the same number of values.")
        rows.append(values)
    if not rows:
        raise GanforgeError(f"{str(path)!r} holds no points; write one point per line (x or x,y).")
    return np.asarray(rows, dtype=np.float64)


def standardise(points: np.ndarray) -> np.ndarray:
    """Centre the points and scale them so the largest per-axis standard deviation is 1 (one scale for
    both axes, so shapes are kept)."""
    return (points - points.mean(0)) / points.std(0).max()


# ----------------------------------------------------------------------------- loading
def plot_limits(points: np.ndarray) -> tuple[tuple[float, float], ...]:
    """A fixed plot range around the points (0.5..99.5 percentiles, padded 35%); a square box in 2-D."""
    lo, hi = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * 1.35 + 0.25
    if points.shape[1] == 2:
        half = np.full(2, half.max())
    return tuple((float(c - h), float(c + h)) for c, h in zip(centre, half, strict=True))


def load_toy(name: str, root: str | None = None, split: str = "train") -> ToyTarget:
    """The toy training set ``name`` (a registered distribution, or ``points`` read from the file ``root``)."""
    if name == "points":
        if not root:
            raise GanforgeError("The points dataset reads your own samples: give the file as data_root "
                                "(ganforge toy --data FILE.csv).")
        raw = standardise(read_points(root))
        reps = math.ceil(N_POINTS / raw.shape[0])  # whole copies: the same empirical distribution
        points = np.tile(raw, (reps, 1)).astype(np.float32)
        density = stats.gaussian_kde(raw[:, 0]) if raw.shape[1] == 1 else None
        return ToyTarget(Path(root).name, points, density, plot_limits(raw))
    dist = TOY.get(name)
    if split not in _SPLIT_SEEDS:
        raise GanforgeError(f"Unknown split {split!r} for {name}; use train or test.")
    points = dist.sample(np.random.default_rng(_SPLIT_SEEDS[split]), N_POINTS).astype(np.float32)
    return ToyTarget(name, points, dist.density, plot_limits(points))


def _loader(name: str):
    def load(root: str | None, split: str) -> ImageData:
        target = load_toy(name, root, split)
        return ImageData(torch.from_numpy(target.points), name=target.name)

    return load


for _name in TOY.names():
    DATASETS.register(_name, _loader(_name))
DATASETS.register("points", _loader("points"))
