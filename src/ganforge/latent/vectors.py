"""Latent vectors: from seeds, along paths between them, along directions, and combined by expressions.

Everything here is plain tensor math on CPU latents; nothing needs a model.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import GanforgeError

Z_RULE = "z = torch.randn(nz, generator=torch.Generator().manual_seed(seed))"
MODES = ("slerp", "linear")


# ----------------------------------------------------------------------------------------------------------------
# Seeds


def is_projection(item) -> bool:
    """Whether a seed-list item names a projected latent (a ``project.npz`` of ``ganforge latent project``)."""
    return isinstance(item, (str, Path)) and str(item).lower().endswith(".npz")


def load_projection(path: str | Path, nz: int) -> tuple[torch.Tensor, int | None]:
    """(z float32 [nz], its class or None) from a ``project.npz`` written by :func:`project`."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as f:
            z = torch.from_numpy(np.asarray(f["z"], dtype=np.float32))
            label = int(f["label"]) if "label" in f.files else None
    except (OSError, ValueError, KeyError) as e:
        raise GanforgeError(f"{str(path)!r} is not a projection file written by ganforge latent project "
                            f"({type(e).__name__}).") from None
    if z.shape != (nz,):
        raise GanforgeError(f"{str(path)!r} holds a latent of shape {tuple(z.shape)}; this model's is [{nz}].")
    return z, label


def seed_list(seeds: Sequence[int | str] | int | str, what: str = "seeds") -> list[int | str]:
    """``seeds`` (one or several) as a list of non-negative ints, or paths of projection files (.npz) that
    stand for the latent they hold; anything else is a one-sentence error."""
    if isinstance(seeds, (int, str, Path)):
        seeds = [seeds]
    out = []
    for s in seeds:
        if is_projection(s):
            out.append(str(s))
            continue
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise GanforgeError(f"Each of the {what} must be a non-negative integer, got {s!r} (or a projection "
                                "file, project.npz).")
        out.append(int(s))
    if not out:
        raise GanforgeError(f"Give at least one of the {what}.")
    return out


def z_from_seeds(seeds: Sequence[int], nz: int, truncation: float | None = None) -> torch.Tensor:
    """Latents float32 [len(seeds), nz]: row i is ``torch.randn(nz, generator=Generator().manual_seed(seeds[i]))``.

    With ``truncation`` t (the BigGAN truncation trick), every component with |z_i| > t is redrawn from
    N(0, 1), continuing the same seeded generator, until all lie in [-t, t]; components already inside
    are kept, so the truncated latent of a seed stays close to its untruncated one.
    """
    if truncation is not None and not truncation > 0:
        raise GanforgeError(f"A truncation threshold must be a positive number, got {truncation}.")
    rows = []
    for seed in seeds:
        if is_projection(seed):  # a projected real image's latent, as it was found (not truncated)
            rows.append(load_projection(seed, nz)[0])
            continue
        g = torch.Generator().manual_seed(int(seed))
        z = torch.randn(nz, generator=g)
        if truncation is not None and math.isfinite(truncation):
            outside = z.abs() > truncation
            while bool(outside.any()):
                z[outside] = torch.randn(int(outside.sum()), generator=g)
                outside = z.abs() > truncation
        rows.append(z)
    return torch.stack(rows) if rows else torch.zeros(0, nz)


# ----------------------------------------------------------------------------------------------------------------
# Paths and sweeps


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
    """Linear interpolation: a, b [D], t [T] (or a number) -> [T, D] = (1 - t) a + t b (exact at t = 0 and 1)."""
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
    out = (1 - t) * a.double() + t * b.double()
    return out.to(a.dtype)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
    """Spherical interpolation: a, b [D], t [T] (or a number) -> [T, D].

    The direction moves along the great circle from a/|a| to b/|b| at constant angular speed; the norm
    is interpolated linearly, |z_t| = (1 - t)|a| + t|b|, so the norm stays |a| all the way when
    |a| = |b| (and, for latents of Gaussian priors, the path stays on the shell where samples live
    instead of cutting through the low-norm middle as a straight line does). The angle is computed as
    2 atan2(|u - v|, |u + v|), accurate for nearly parallel vectors; below 1e-6 rad the direction falls
    back to the normalised straight line. Opposite vectors have no unique great circle: that is an
    error. Zero vectors fall back to linear interpolation. Computed in float64, returned in a's dtype.
    """
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
    a64, b64 = a.double().reshape(-1), b.double().reshape(-1)
    na, nb = a64.norm(), b64.norm()
    if na < 1e-12 or nb < 1e-12:
        return lerp(a, b, t)
    u, v = a64 / na, b64 / nb
    omega = 2 * torch.atan2((u - v).norm(), (u + v).norm())
    if math.pi - float(omega) < 1e-6:
        raise GanforgeError("Spherical interpolation between opposite vectors is undefined (no unique great "
                            "circle); use linear interpolation for them.")
    if float(omega) < 1e-6:
        direction = (1 - t) * u + t * v
        direction = direction / direction.norm(dim=1, keepdim=True)
    else:
        s = torch.sin(omega)
        direction = (torch.sin((1 - t) * omega) / s) * u + (torch.sin(t * omega) / s) * v
    norm = (1 - t) * na + t * nb
    return (direction * norm).to(a.dtype).reshape(t.shape[0], *a.shape)


def interpolation_path(keys: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """Keyframes [K, D] (K >= 2) -> the path [(K - 1) * steps + 1, D] through them.

    Each segment is divided into ``steps`` equal steps of t; the keyframes themselves appear exactly at
    positions 0, steps, 2 * steps, ...
    """
    if mode not in MODES:
        raise GanforgeError(f"Unknown interpolation mode {mode!r}; use slerp or linear.")
    if steps < 1:
        raise GanforgeError(f"The number of steps per segment must be at least 1, got {steps}.")
    if keys.shape[0] < 2:
        raise GanforgeError(f"An interpolation needs at least 2 keyframes, got {keys.shape[0]}.")
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = slerp if mode == "slerp" else lerp
    parts = []
    for i in range(keys.shape[0] - 1):
        seg = f(keys[i], keys[i + 1], t)
        seg[0], seg[-1] = keys[i], keys[i + 1]
        parts.append(seg if i == 0 else seg[1:])
    return torch.cat(parts)


def sweep_latents(z: torch.Tensor, direction: torch.Tensor, values: torch.Tensor | Sequence[float],
                  shift: bool = False) -> torch.Tensor:
    """Walk latents z [B, D] along ``direction`` [D] (normalised to unit length) -> [B, K, D].

    ``shift=False``: the component of z along the direction is *set* to each value,
    z - (z.u) u + v u; for a coordinate axis u = e_d that sets z_d = v and leaves every other
    coordinate exactly as it was. ``shift=True``: the value is *added*, z + v u (value 0 = the base).
    Since z ~ N(0, I), the component along any unit direction is N(0, 1): values are in prior std units.
    """
    values = torch.as_tensor(values, dtype=z.dtype).reshape(1, -1, 1)
    u = direction.to(z.dtype).reshape(-1)
    u = u / u.norm()
    zz = z.unsqueeze(1)
    if shift:
        return zz + values * u
    along = (z @ u).reshape(-1, 1, 1)
    return zz - along * u + values * u


def sweep_values(radius: float, steps: int) -> torch.Tensor:
    """``steps`` values evenly spaced over [-radius, radius] (float32 [steps])."""
    if not radius > 0:
        raise GanforgeError(f"The sweep range must be a positive number, got {radius}.")
    if steps < 2:
        raise GanforgeError(f"A sweep needs at least 2 steps, got {steps}.")
    return torch.linspace(-radius, radius, steps)


# ----------------------------------------------------------------------------------------------------------------
# Expressions over groups of latents

_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*")


def parse_expression(expression: str) -> list[tuple[float, str]]:
    """``"a - b + c"`` -> [(1.0, "a"), (-1.0, "b"), (1.0, "c")]; terms may carry weights: ``"a - 0.5*b"``."""
    terms: list[tuple[float, str]] = []
    pos = 0
    text = expression or ""
    while pos < len(text) or not terms:
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos or (terms and m.group(1) is None):
            raise GanforgeError(f"Cannot read the expression {expression!r}; write group names joined by + and - "
                                "(e.g. 'a - b + c', optionally with weights such as 0.5*a).")
        sign = -1.0 if m.group(1) == "-" else 1.0
        weight = float(m.group(2)) if m.group(2) else 1.0
        terms.append((sign * weight, m.group(3)))
        pos = m.end()
    return terms


def check_names(expression: str, terms: list[tuple[float, str]], defined: Sequence[str]) -> None:
    """Every name the expression's terms use must be one of ``defined``; else one sentence naming it."""
    for _, name in terms:
        if name not in defined:
            raise GanforgeError(f"The expression {expression!r} names group {name!r}, which is not defined; "
                                f"defined groups: {', '.join(defined) or 'none'}.")


def combine(groups: Mapping[str, torch.Tensor], expression: str) -> torch.Tensor:
    """The expression over group means: groups map names to latents [M, D] (or one latent [D]) -> [D].

    ``combine({"a": A, "b": B, "c": C}, "a - b + c")`` = A.mean(0) - B.mean(0) + C.mean(0) (float64
    sums, returned in the first group's dtype).
    """
    terms = parse_expression(expression)
    check_names(expression, terms, list(groups))
    first = groups[terms[0][1]]
    total = torch.zeros(first.shape[-1], dtype=torch.float64)
    for weight, name in terms:
        g = groups[name].double()
        total = total + weight * (g.mean(0) if g.ndim == 2 else g)
    return total.to(first.dtype)
