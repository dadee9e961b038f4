"""Latent-space tools: interpolation, vector arithmetic, dimension and PCA sweeps, truncation.

    import ganforge
    from ganforge import latent
    model = ganforge.load("runs/demo")
    latent.interpolate(model, [1, 2, 3], steps=8, gif=True, out="pictures")
    latent.arithmetic(model, "a - b + c", {"a": "seeds:1,5,9", "b": "grid:7,12", "c": "class:Sandal"},
                      out="pictures")
    latent.sweep_dimension(model, 5, seeds=[0, 1], out="pictures")
    latent.sweep_pca(model, 6, seeds=[0], out="pictures")
    latent.truncation(model, [None, 2, 1, 0.5, 0.25], n=10, out="pictures")

**Seeds.** One seed gives one latent vector, ``z = torch.randn(nz, generator=torch.Generator().manual_seed(seed))``
(:func:`z_from_seeds`); every tool builds its latents from seeds this way, so a picture is redrawn exactly
from the seeds it records.

**Records.** With ``out`` (a folder) each tool writes ``TOOL.png`` (``TOOL.gif`` too for animated
interpolations) and ``TOOL.json``: the tool, the checkpoint folder, its step, whether EMA weights were
used, the seeds, classes, parameters and derived numbers. :func:`regenerate` redraws the picture from
that JSON alone (byte-identical on the same device and PyTorch build). Every tool returns a
:class:`LatentFigure` (uint8 images, the latents they came from, the PIL picture, the record).

**Conditional models** (``model.task.num_classes > 0``) need a class for every image. ``class_`` (a
class name, case-insensitive, or an index) fixes it for every image; without it the class of the
image of seed ``s`` is ``s % num_classes`` (recorded). Class interpolation feeds the generator soft
labels, ``inputs["y_soft"]`` = float [N, num_classes] blends of one-hot vectors; hard classes are
``inputs["y"]`` = int64 [N]. Class options on an unconditional model are an error.

Tools:

- :func:`interpolate`: paths through two or more seeds' latents (rows = paths), linear or spherical;
  :func:`interpolate_classes`: a fixed latent while the class label blends from class to class.
- :func:`arithmetic`: Radford et al. (2015) figure 7 - means of groups of latents combined by an
  expression such as ``a - b + c``; the result image plus noisy variants.
- :func:`sweep_dimension`: one latent coordinate over ``[-radius, radius]``; :func:`sweep_pca`: the same
  along GANSpace directions (:func:`pca_directions`).
- :func:`truncation`: the BigGAN truncation trick at several thresholds with a diversity number (and,
  for one-channel images, the Fashion-MNIST classifier's confidence) per row.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from .data import resolve_class  # noqa: F401  (re-exported: ganforge.latent.resolve_class)
from .errors import GanforgeError
from .viz import grid_image, to_uint8

Z_RULE = "z = torch.randn(nz, generator=torch.Generator().manual_seed(seed))"
MODES = ("slerp", "linear")
SPACES = ("activation", "feature")


# ----------------------------------------------------------------------------------------------------------------
# Latents from seeds, paths between them


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
        g = torch.Generator().manual_seed(int(seed))
        z = torch.randn(nz, generator=g)
        if truncation is not None and math.isfinite(truncation):
            outside = z.abs() > truncation
            while bool(outside.any()):
                z[outside] = torch.randn(int(outside.sum()), generator=g)
                outside = z.abs() > truncation
        rows.append(z)
    return torch.stack(rows) if rows else torch.zeros(0, nz)


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


# ----------------------------------------------------------------------------------------------------------------
# Vector arithmetic

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


def combine(groups: Mapping[str, torch.Tensor], expression: str) -> torch.Tensor:
    """The expression over group means: groups map names to latents [M, D] (or one latent [D]) -> [D].

    ``combine({"a": A, "b": B, "c": C}, "a - b + c")`` = A.mean(0) - B.mean(0) + C.mean(0) (float64
    sums, returned in the first group's dtype).
    """
    terms = parse_expression(expression)
    for _, name in terms:
        if name not in groups:
            have = ", ".join(groups) or "none"
            raise GanforgeError(f"The expression {expression!r} names group {name!r}, which is not defined; "
                                f"defined groups: {have}.")
    first = groups[terms[0][1]]
    total = torch.zeros(first.shape[-1], dtype=torch.float64)
    for weight, name in terms:
        g = groups[name].double()
        total = total + weight * (g.mean(0) if g.ndim == 2 else g)
    return total.to(first.dtype)


@dataclass(frozen=True)
class GroupSpec:
    """One operand group of :func:`arithmetic`, written as text:

    - ``seeds:1,5,9``: the latents of these seeds (:func:`z_from_seeds`);
    - ``grid:7,12@seed=0,n=64``: images 7 and 12 of the grid ``ganforge sample --seed 0 --n 64`` makes
      (rows of ``model.task.fixed_inputs(64, 0)["z"]``; seed and n default to 0 and 64 as there);
    - ``class:Sandal@seed=0,n=512,min=0.8,take=8``: among the n candidates ``fixed_inputs(n, seed)``,
      those the Fashion-MNIST classifier assigns to the class with probability >= min, the ``take``
      most confident (the class by name, case-insensitive, or index 0-9 of the classifier's classes).
    """

    kind: str
    items: tuple[int, ...] = ()  # seeds, grid indices, or (class index,)
    seed: int = 0
    n: int = 64
    min_confidence: float = 0.8
    take: int = 8

    def __str__(self) -> str:
        if self.kind == "seeds":
            return "seeds:" + ",".join(map(str, self.items))
        if self.kind == "grid":
            return f"grid:{','.join(map(str, self.items))}@seed={self.seed},n={self.n}"
        from .data.idx import FASHION_CLASSES

        return (f"class:{FASHION_CLASSES[self.items[0]]}@seed={self.seed},n={self.n},"
                f"min={self.min_confidence:g},take={self.take}")


_GROUP_OPTIONS = {"seeds": (), "grid": ("seed", "n"), "class": ("seed", "n", "min", "take")}
_GROUP_HELP = "seeds:1,5,9 | grid:7,12@seed=0,n=64 | class:NAME@seed=0,n=512,min=0.8,take=8"


def _int(text: str, what: str, minimum: int | None = 0) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise GanforgeError(f"{what} must be an integer, got {text.strip()!r}.") from None
    if minimum is not None and value < minimum:
        raise GanforgeError(f"{what} must be at least {minimum}, got {value}.")
    return value


def parse_group(text: str | GroupSpec) -> GroupSpec:
    """Read a group written as in :class:`GroupSpec` (``kind:values[@key=value,...]``)."""
    if isinstance(text, GroupSpec):
        return text
    kind, sep, rest = str(text).partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in _GROUP_OPTIONS or not rest.strip():
        raise GanforgeError(f"Cannot read the group {text!r}; write {_GROUP_HELP}.")
    values, _, options = rest.partition("@")
    opts: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in options.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in _GROUP_OPTIONS[kind]:
            allowed = ", ".join(f"{k}=" for k in _GROUP_OPTIONS[kind]) or "no options"
            raise GanforgeError(f"Unknown option {item!r} in the group {text!r}; a {kind} group takes {allowed}.")
        opts[key] = value
    seed = _int(opts.get("seed", "0"), f"seed= in the group {text!r}")
    if kind == "class":
        from .data.idx import FASHION_CLASSES

        n = _int(opts.get("n", "512"), f"n= in the group {text!r}", 1)
        take = _int(opts.get("take", "8"), f"take= in the group {text!r}", 1)
        try:
            min_conf = float(opts.get("min", "0.8"))
        except ValueError:
            raise GanforgeError(f"min= in the group {text!r} must be a number in [0, 1].") from None
        if not 0 <= min_conf <= 1:
            raise GanforgeError(f"min= in the group {text!r} must be in [0, 1], got {min_conf}.")
        c = resolve_class(values.strip(), FASHION_CLASSES, "Fashion-MNIST classifier class")
        return GroupSpec("class", (c,), seed, n, min_conf, take)
    items = tuple(_int(v, f"Each value of the group {text!r}") for v in values.split(","))
    if kind == "grid":
        n = _int(opts.get("n", "64"), f"n= in the group {text!r}", 1)
        for i in items:
            if i >= n:
                raise GanforgeError(f"Grid index {i} in the group {text!r} is outside a grid of n={n} images "
                                    f"(indices 0..{n - 1}).")
        return GroupSpec("grid", items, seed, n)
    return GroupSpec("seeds", items)


def select_by_class(probs: torch.Tensor, cls: int, min_confidence: float, take: int) -> torch.Tensor:
    """Indices of the rows of probs [N, K] whose argmax is ``cls`` with probability >= min_confidence,
    the ``take`` most confident first (ties by index)."""
    conf = probs[:, cls]
    ok = (probs.argmax(1) == cls) & (conf >= min_confidence)
    idx = torch.nonzero(ok).reshape(-1)
    order = torch.argsort(-conf[idx].double(), stable=True)
    return idx[order][:take]


# ----------------------------------------------------------------------------------------------------------------
# Models: classes and rendering


def num_classes(model) -> int:
    """Number of classes a model is conditioned on (0 = unconditional)."""
    return model.num_classes


def model_class_names(model) -> list[str]:
    """The class names of a conditional model (its data's names, else "0", "1", ...)."""
    names = list(model.class_names)
    return names if len(names) == model.num_classes else [str(i) for i in range(model.num_classes)]


def _model_class(model, class_: int | str | None) -> int | None:
    if class_ is None:
        return None
    if num_classes(model) == 0:
        raise GanforgeError(f"{_source(model)!r} is an unconditional {getattr(model, 'name', '')} model, so it "
                            "takes no class; class options need a conditional model (such as cgan).")
    return resolve_class(class_, model_class_names(model))


def _seed_classes(model, seeds: Sequence[int], cls: int | None) -> torch.Tensor | None:
    """int64 [len(seeds)]: ``cls`` for every seed, else seed % num_classes; None for unconditional models."""
    n = num_classes(model)
    if n == 0:
        return None
    if cls is not None:
        return torch.full((len(seeds),), cls, dtype=torch.int64)
    return torch.tensor([int(s) % n for s in seeds], dtype=torch.int64)


def _source(model) -> str:
    return str(getattr(model, "path", "") or "")


def _check_images(model) -> None:
    if not getattr(model.task, "makes_images", True):
        raise GanforgeError(f"{_source(model)!r} generates points, not images, so the latent-space pictures do "
                            "not apply to it.")
    if not isinstance(getattr(model.task, "nz", None), int):
        raise GanforgeError(f"{_source(model)!r} is a {getattr(model, 'name', '')} model without a latent (z) input; "
                            "the latent tools apply to GANs that generate from noise.")


@torch.no_grad()
def render(model, z: torch.Tensor, y: torch.Tensor | None = None, y_soft: torch.Tensor | None = None,
           ema: bool | None = None, batch_size: int = 256) -> torch.Tensor:
    """Images of latents z float [N, nz] as uint8 [N, C, H, W].

    For a conditional model give the classes as ``y`` int64 [N] or ``y_soft`` float [N, num_classes]
    (label blends); an unconditional model takes neither. ``ema``: None = the checkpoint's default.
    """
    _check_images(model)
    if z.ndim != 2 or z.shape[1] != model.task.nz:
        raise GanforgeError(f"Latents must have shape [N, {model.task.nz}], got {tuple(z.shape)}.")
    n_cls = num_classes(model)
    if n_cls == 0 and (y is not None or y_soft is not None):
        raise GanforgeError(f"{_source(model)!r} is an unconditional model; it takes no class labels.")
    if n_cls and y is None and y_soft is None:
        raise GanforgeError(f"{_source(model)!r} is a conditional model; give a class for every image.")
    inputs = {"z": z.float()}
    if y_soft is not None:
        inputs["y_soft"] = y_soft.float()
    elif y is not None:
        inputs["y"] = y.to(torch.int64)
    net = model.generator(ema)
    parts = []
    for s in range(0, z.shape[0], batch_size):
        chunk = {k: v[s:s + batch_size].to(model.device) for k, v in inputs.items()}
        parts.append(to_uint8(model.task.generate(net, chunk)))
    return torch.cat(parts)


def _classes_input(y: torch.Tensor | None, n_cls: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(y, y_soft) for render from int64 [N] classes or float [N, n_cls] blends (None when unconditional)."""
    if y is None:
        return None, None
    if y.dtype == torch.int64:
        return y, None
    return None, y


def _fmnist(model):
    from .metrics.fmnist import FashionFeatureExtractor

    return FashionFeatureExtractor().to(model.device)


# ----------------------------------------------------------------------------------------------------------------
# Pictures


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> float:
    return draw.textlength(text, font=font)


def grid_picture(images: torch.Tensor, row_labels: Sequence[str] | None = None,
                 col_labels: Sequence[str] | None = None, right_labels: Sequence[str] | None = None,
                 title: str | None = None, cell: int = 64) -> Image.Image:
    """uint8 [R, K, C, H, W] -> a PIL grid (rows x columns), each image upscaled (nearest) to about ``cell``
    pixels, with optional labels left of the rows, above the columns, right of the rows and a title."""
    R, K, C, H, W = images.shape
    grid = grid_image(images.reshape(R * K, C, H, W), nrow=K, min_width=max(480, K * max(cell, W + 2) + 2))
    scale = grid.width / (K * (W + 2) + 2)
    font = _font(12)
    draw = ImageDraw.Draw(grid)
    left = int(max((_text_width(draw, s, font) for s in row_labels), default=0)) + 10 if row_labels else 0
    right = int(max((_text_width(draw, s, font) for s in right_labels), default=0)) + 10 if right_labels else 0
    top = (18 if col_labels else 0) + (20 if title else 0)
    canvas = Image.new("RGB", (grid.width + left + right, grid.height + top + 2), "white")
    canvas.paste(grid.convert("RGB"), (left, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((6, 3), title, fill="black", font=_font(14))
    for i, label in enumerate(row_labels or []):
        y = top + scale * (2 + i * (H + 2) + H / 2)
        draw.text((4, y), label, fill="black", font=font, anchor="lm")
    for i, label in enumerate(right_labels or []):
        y = top + scale * (2 + i * (H + 2) + H / 2)
        draw.text((left + grid.width + 4, y), label, fill="black", font=font, anchor="lm")
    for j, label in enumerate(col_labels or []):
        if label:
            half = _text_width(draw, label, font) / 2
            x = min(max(left + scale * (2 + j * (W + 2) + W / 2), half + 2), canvas.width - half - 2)
            draw.text((x, top - 3), label, fill="black", font=font, anchor="ms")
    return canvas


def _tile(image: torch.Tensor, scale: int) -> Image.Image:
    arr = image.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).convert("RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _frames_gif(frames: list[Image.Image], path: Path, durations: list[int]) -> Path:
    """Write PIL frames (same size) as a looping GIF with per-frame durations (ms)."""
    quantized = [f.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT) for f in frames]
    tmp = path.with_name(path.name + ".tmp.gif")
    quantized[0].save(tmp, save_all=True, append_images=quantized[1:], duration=durations, loop=0)
    os.replace(tmp, path)
    return path


def _gif_frames(images: torch.Tensor, captions: list[str], cell: int = 160) -> list[Image.Image]:
    """uint8 [R, T, C, H, W] -> T frames, each the R images of one step side by side under a caption."""
    R, T, C, H, W = images.shape
    frames = []
    font = _font(12)
    for t in range(T):
        g = grid_image(images[:, t], nrow=R, min_width=max(240, R * cell)).convert("RGB")
        frame = Image.new("RGB", (g.width, g.height + 18), "white")
        frame.paste(g, (0, 18))
        ImageDraw.Draw(frame).text((4, 3), captions[t], fill="black", font=font)
        frames.append(frame)
    return frames


# ----------------------------------------------------------------------------------------------------------------
# Figures and their records


@dataclass
class LatentFigure:
    """What a tool made: uint8 images and the float latents behind them (same keys), the picture, the record.

    For the grid tools ``images["grid"]`` is uint8 [rows, columns, C, H, W] and ``latents["grid"]``
    float [rows, columns, nz]; :func:`arithmetic` keys them by group name, ``"<name>.mean"`` and
    ``"result"``. ``files`` maps "png", "gif", "json" to the paths written (empty without ``out``).
    """

    tool: str
    images: dict[str, torch.Tensor]
    latents: dict[str, torch.Tensor]
    picture: Image.Image
    record: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    gif_frames: list[Image.Image] = field(default_factory=list, repr=False)
    gif_durations: list[int] = field(default_factory=list, repr=False)


def _uses_ema(model, ema: bool | None) -> bool:
    uses = getattr(model, "uses_ema", None)
    return bool(uses(ema)) if uses is not None else bool(ema)


def _record(model, tool: str, ema: bool | None, params: dict[str, Any], **info: Any) -> dict[str, Any]:
    from . import __version__

    path = _source(model)
    return {
        "tool": tool,
        "ganforge_version": __version__,
        "checkpoint": str(Path(path).resolve()) if path else None,
        "model": getattr(model, "name", None),
        "step": getattr(model, "step", None),
        "ema": _uses_ema(model, ema),
        "nz": int(model.task.nz),
        "num_classes": num_classes(model),
        "z_rule": Z_RULE,
        **info,
        "params": params,
    }


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _save(fig: LatentFigure, out: str | Path | None) -> LatentFigure:
    if out is None:
        return fig
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out must be a folder, but {str(out)!r} is a file.")
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{fig.tool}.png"
    tmp = png.with_name(png.name + ".tmp.png")
    fig.picture.save(tmp)
    os.replace(tmp, png)
    fig.files["png"] = png
    if fig.gif_frames:
        fig.files["gif"] = _frames_gif(fig.gif_frames, out / f"{fig.tool}.gif", fig.gif_durations)
    fig.record["files"] = {k: p.name for k, p in fig.files.items()} | {"json": f"{fig.tool}.json"}
    fig.files["json"] = out / f"{fig.tool}.json"
    _write_json(fig.files["json"], fig.record)
    return fig


def _seed_list(seeds: Sequence[int] | int, what: str = "seeds") -> list[int]:
    if isinstance(seeds, int):
        seeds = [seeds]
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise GanforgeError(f"Each of the {what} must be a non-negative integer, got {s!r}.")
        out.append(int(s))
    if not out:
        raise GanforgeError(f"Give at least one of the {what}.")
    return out


# ----------------------------------------------------------------------------------------------------------------
# Interpolation


def _animate(fig: LatentFigure, images: torch.Tensor, captions: list[str], keyframes: set[int], pingpong: bool,
             frame_ms: int) -> None:
    if frame_ms < 1:
        raise GanforgeError(f"The time per animation frame must be at least 1 ms, got {frame_ms}.")
    frames = _gif_frames(images, captions)
    order = list(range(len(frames)))
    if pingpong:
        order += order[-2:0:-1]
    fig.gif_frames = [frames[i] for i in order]
    fig.gif_durations = [frame_ms * 4 if i in keyframes else frame_ms for i in order]


def interpolate(model, seeds: Sequence[int] | Sequence[Sequence[int]], steps: int = 8, mode: str = "slerp",
                class_: int | str | None = None, gif: bool = False, pingpong: bool = False, frame_ms: int = 100,
                ema: bool | None = None, out: str | Path | None = None) -> LatentFigure:
    """Interpolate through the latents of seeds: ``[1, 2, 3]`` is one path (one row); a list of lists
    gives one row per path (all with the same number of seeds).

    Each segment has ``steps`` steps (a path through K seeds has (K - 1) * steps + 1 images); ``mode``
    is "slerp" (see :func:`slerp`) or "linear". For a conditional model every image has ``class_``;
    without it the keyframe of seed s has class s % num_classes and, where neighbouring keyframes
    differ, the label blends linearly along with z (``y_soft``). ``gif``: also an animation (one frame
    per step, keyframes held longer; ``pingpong`` plays it forwards then backwards).
    """
    _check_images(model)
    rows = [list(seeds)] if seeds and not isinstance(list(seeds)[0], (list, tuple)) else [list(r) for r in seeds]
    if not rows:
        raise GanforgeError("Give at least two seeds to interpolate between.")
    rows = [_seed_list(r) for r in rows]
    if any(len(r) < 2 for r in rows):
        raise GanforgeError(f"Each interpolation path needs at least 2 seeds, got {min(rows, key=len)}.")
    if len({len(r) for r in rows}) > 1:
        raise GanforgeError("Every interpolation row needs the same number of seeds, got "
                            f"{', '.join(str(len(r)) for r in rows)}.")
    if mode not in MODES:
        raise GanforgeError(f"Unknown interpolation mode {mode!r}; use slerp or linear.")
    nz, n_cls = model.task.nz, num_classes(model)
    cls = _model_class(model, class_)
    z_rows, label_rows, row_classes = [], [], []
    for r in rows:
        z_rows.append(interpolation_path(z_from_seeds(r, nz), steps, mode))
        kc = _seed_classes(model, r, cls)
        if kc is not None:
            row_classes.append(kc.tolist())
            label_rows.append(interpolation_path(F.one_hot(kc, n_cls).double(), steps, "linear"))
    z = torch.stack(z_rows)
    R, T = z.shape[:2]
    y = None
    if n_cls:
        soft = torch.stack(label_rows).float()
        hard = soft.argmax(-1)
        exact = torch.equal(F.one_hot(hard, n_cls).float(), soft)
        y = hard.reshape(-1) if exact else soft.reshape(R * T, n_cls)
    images = render(model, z.reshape(R * T, nz), *_classes_input(y, n_cls), ema=ema)
    images = images.reshape(R, T, *images.shape[1:])
    names = model_class_names(model)
    keyframes = set(range(0, T, steps))

    def key_label(k: int) -> str:
        if R > 1:
            return f"key {k + 1}"
        return f"seed {rows[0][k]}" + (f" ({names[row_classes[0][k]]})" if n_cls else "")

    col_labels = [""] * T
    for k in range(len(rows[0])):
        col_labels[k * steps] = key_label(k)
    row_labels = None if R == 1 else ["seeds " + ",".join(map(str, r)) for r in rows]
    picture = grid_picture(images, row_labels, col_labels, title=f"{mode} interpolation, {steps} steps per segment")
    params = {"seeds": rows, "steps": steps, "mode": mode, "class_": cls, "gif": gif, "pingpong": pingpong,
              "frame_ms": frame_ms}
    record = _record(model, "interpolate", ema, params, seeds=rows,
                     classes=row_classes if n_cls else None,
                     class_names=[[names[c] for c in r] for r in row_classes] if n_cls else None,
                     frames_per_row=T, layout="rows = paths, columns = steps")
    fig = LatentFigure("interpolate", {"grid": images}, {"grid": z}, picture, record)
    if y is not None:
        fig.latents["labels"] = y.reshape(R, T, *y.shape[1:])
    if gif:
        captions = [f"step {t}/{T - 1}" for t in range(T)]
        _animate(fig, images, captions, keyframes, pingpong, frame_ms)
    return _save(fig, out)


def interpolate_classes(model, classes: Sequence[int | str], seeds: Sequence[int] | int = 0, steps: int = 8,
                        gif: bool = False, pingpong: bool = False, frame_ms: int = 100, ema: bool | None = None,
                        out: str | Path | None = None) -> LatentFigure:
    """Hold a latent fixed and blend the class label through ``classes`` (names or indices, at least 2).

    A conditional model only: labels are ``y_soft`` = (1 - t) onehot(A) + t onehot(B) per segment, in
    ``steps`` steps; one row per seed in ``seeds``.
    """
    _check_images(model)
    n_cls = num_classes(model)
    if n_cls == 0:
        raise GanforgeError(f"{_source(model)!r} is an unconditional {getattr(model, 'name', '')} model; "
                            "interpolating between classes needs a conditional model (such as cgan).")
    seeds = _seed_list(seeds)
    names = model_class_names(model)
    idx = [resolve_class(c, names) for c in classes]
    if len(idx) < 2:
        raise GanforgeError(f"Class interpolation needs at least 2 classes, got {len(idx)}.")
    soft = interpolation_path(F.one_hot(torch.tensor(idx), n_cls).double(), steps, "linear").float()
    T, R, nz = soft.shape[0], len(seeds), model.task.nz
    z = z_from_seeds(seeds, nz).unsqueeze(1).expand(R, T, nz).contiguous()
    labels = soft.unsqueeze(0).expand(R, T, n_cls).contiguous()
    images = render(model, z.reshape(R * T, nz), y_soft=labels.reshape(R * T, n_cls), ema=ema)
    images = images.reshape(R, T, *images.shape[1:])
    col_labels = [""] * T
    for k, c in enumerate(idx):
        col_labels[k * steps] = names[c]
    picture = grid_picture(images, [f"seed {s}" for s in seeds], col_labels,
                           title=f"class interpolation (soft labels), {steps} steps per segment")
    params = {"classes": idx, "seeds": seeds, "steps": steps, "gif": gif, "pingpong": pingpong,
              "frame_ms": frame_ms}
    record = _record(model, "interpolate_classes", ema, params, seeds=seeds, classes=idx,
                     class_names=[names[c] for c in idx], layout="rows = seeds, columns = label blend steps")
    fig = LatentFigure("interpolate_classes", {"grid": images}, {"grid": z, "labels": labels}, picture, record)
    if gif:
        captions = []
        for t in range(T):
            seg, k = min(t // steps, len(idx) - 2), t - min(t // steps, len(idx) - 2) * steps
            captions.append(f"{names[idx[seg]]} -> {names[idx[seg + 1]]}  {k}/{steps}")
        _animate(fig, images, captions, set(range(0, T, steps)), pingpong, frame_ms)
    return _save(fig, out)


# ----------------------------------------------------------------------------------------------------------------
# Arithmetic


@dataclass
class GroupLatents:
    """The latents of one operand group: z float [M, nz], classes int64 [M] (conditional models) and what
    was chosen (seeds, grid indices, classifier confidences) for the record."""

    spec: GroupSpec
    z: torch.Tensor
    y: torch.Tensor | None
    info: dict[str, Any]


def group_latents(model, spec: str | GroupSpec, class_: int | str | None = None, ema: bool | None = None,
                  extractor=None, cache: dict | None = None) -> GroupLatents:
    """Resolve an operand group (see :class:`GroupSpec`) to its latents.

    ``cache``: a dict shared between calls, so class groups over the same candidates classify them once.
    """
    spec = parse_group(spec)
    nz, cls = model.task.nz, _model_class(model, class_)
    if spec.kind == "seeds":
        seeds = _seed_list(list(spec.items))
        return GroupLatents(spec, z_from_seeds(seeds, nz), _seed_classes(model, seeds, cls), {"seeds": seeds})
    inputs = model.task.fixed_inputs(spec.n, spec.seed)
    y_all = None
    if num_classes(model):
        y_all = torch.full((spec.n,), cls, dtype=torch.int64) if cls is not None else inputs.get("y")
        if y_all is None:
            y_all = torch.arange(spec.n, dtype=torch.int64) % num_classes(model)
        y_all = y_all.to(torch.int64).cpu()
    z_all = inputs["z"].float().cpu()
    if spec.kind == "grid":
        idx = torch.tensor(spec.items, dtype=torch.int64)
        return GroupLatents(spec, z_all[idx], None if y_all is None else y_all[idx],
                            {"grid_seed": spec.seed, "grid_n": spec.n, "indices": list(spec.items)})
    cache = {} if cache is None else cache
    key = (spec.seed, spec.n, cls)
    if key not in cache:
        extractor = extractor or _fmnist(model)
        cache[key] = torch.softmax(extractor(render(model, z_all, y_all, ema=ema))["logits"].cpu().double(), 1)
    probs = cache[key]
    chosen = select_by_class(probs, spec.items[0], spec.min_confidence, spec.take)
    if len(chosen) == 0:
        from .data.idx import FASHION_CLASSES

        best = float(probs[:, spec.items[0]].max())
        raise GanforgeError(f"None of the {spec.n} candidates (seed {spec.seed}) is classified "
                            f"{FASHION_CLASSES[spec.items[0]]} with confidence >= {spec.min_confidence:g} (the "
                            f"highest is {best:.3f}); lower min= or raise n= in the group {str(spec)!r}.")
    return GroupLatents(spec, z_all[chosen], None if y_all is None else y_all[chosen],
                        {"grid_seed": spec.seed, "grid_n": spec.n, "indices": chosen.tolist(),
                         "confidences": [round(float(probs[i, spec.items[0]]), 6) for i in chosen]})


def _majority(y: torch.Tensor) -> int:
    return int(torch.bincount(y).argmax())


def arithmetic(model, expression: str, groups: Mapping[str, str | GroupSpec], variants: int = 4,
               noise: float = 0.25, noise_seed: int = 0, class_: int | str | None = None, ema: bool | None = None,
               out: str | Path | None = None) -> LatentFigure:
    """Vector arithmetic on latents (Radford et al. 2015, figure 7).

    Each group (name -> :class:`GroupSpec` text) is a set of latents; r = the expression over the group
    means (:func:`combine`). The picture has one column block per term: the group's samples and, below
    them, the image of its mean latent; then the result block: G(r) below and ``variants`` images of
    r + noise * e (e ~ N(0, I) from ``noise_seed``; the paper added uniform noise of scale 0.25 to
    its uniform latents) above. Means of Gaussian latents have smaller norms than samples (by
    sqrt(M)); the images show what G makes of them, as in the paper. Conditional models: ``class_``
    for every image, else each sample keeps its own class, a mean takes its group's most common class
    and the result that of the first positive term.
    """
    _check_images(model)
    terms = parse_expression(expression)
    names_used = [n for _, n in terms]
    for name in names_used:
        if name not in groups:
            raise GanforgeError(f"The expression {expression!r} names group {name!r}, which is not defined; "
                                f"defined groups: {', '.join(groups) or 'none'}.")
    if "result" in groups:
        raise GanforgeError("'result' names the outcome of the arithmetic; call the group something else.")
    unused = [n for n in groups if n not in names_used]
    if unused:
        raise GanforgeError(f"Group {unused[0]!r} is defined but the expression {expression!r} does not use it.")
    if variants < 0:
        raise GanforgeError(f"The number of noisy variants must be 0 or more, got {variants}.")
    if noise < 0:
        raise GanforgeError(f"The noise scale must be 0 or more, got {noise}.")
    n_cls, cls, nz = num_classes(model), _model_class(model, class_), model.task.nz
    extractor = _fmnist(model) if any(parse_group(s).kind == "class" for s in groups.values()) else None
    cache: dict = {}
    resolved = {name: group_latents(model, groups[name], class_, ema, extractor, cache)
                for name in dict.fromkeys(names_used)}
    r = combine({k: g.z for k, g in resolved.items()}, expression)
    noise_z = torch.randn(variants, nz, generator=torch.Generator().manual_seed(noise_seed)) * noise
    result_z = torch.cat([r.unsqueeze(0), r.unsqueeze(0) + noise_z])
    images: dict[str, torch.Tensor] = {}
    latents: dict[str, torch.Tensor] = {}
    classes: dict[str, Any] = {}
    for name, g in resolved.items():
        mean_z = g.z.mean(0, keepdim=True)
        mean_y = None if g.y is None else torch.tensor([cls if cls is not None else _majority(g.y)])
        images[name] = render(model, g.z, g.y, ema=ema)
        images[f"{name}.mean"] = render(model, mean_z, mean_y, ema=ema)
        latents[name], latents[f"{name}.mean"] = g.z, mean_z
        if n_cls:
            classes[name] = g.y.tolist()
            classes[f"{name}.mean"] = int(mean_y[0])
    result_y = None
    if n_cls:
        first = next(n for w, n in terms if w > 0) if any(w > 0 for w, _ in terms) else terms[0][1]
        c = cls if cls is not None else int(classes[f"{first}.mean"])
        result_y = torch.full((result_z.shape[0],), c, dtype=torch.int64)
        classes["result"] = c
    images["result"] = render(model, result_z, result_y, ema=ema)
    latents["result"] = result_z
    picture = _arithmetic_picture(terms, images, expression, variants, noise)
    params = {"expression": expression, "groups": {k: str(parse_group(v)) for k, v in groups.items()},
              "variants": variants, "noise": noise, "noise_seed": noise_seed, "class_": cls}
    record = _record(model, "arithmetic", ema, params,
                     seeds={k: g.info.get("seeds") for k, g in resolved.items() if g.spec.kind == "seeds"},
                     groups={k: {"spec": str(g.spec), **g.info} for k, g in resolved.items()},
                     classes=classes or None, terms=[[w, n] for w, n in terms],
                     layout="column block per term: samples above, image of the mean latent below; result block: "
                            "noisy variants above, G(result) below")
    return _save(LatentFigure("arithmetic", images, latents, picture, record), out)


def _arithmetic_picture(terms: list[tuple[float, str]], images: dict[str, torch.Tensor], expression: str,
                        variants: int, noise: float) -> Image.Image:
    """One column block per group (samples, then the image of the mean latent on the bottom row), operator
    signs between the blocks on the bottom row, and the result block (noisy variants, then the result)."""
    W = images["result"].shape[-1]
    scale = max(1, math.ceil(72 / W))
    cell, pad, gap, max_rows = W * scale, 4, 44, 6
    weights: dict[str, float] = {}
    for w, n in terms:
        weights[n] = weights.get(n, 0.0) + w
    blocks = [(n, images[n], images[f"{n}.mean"][0]) for n in weights]
    blocks.append(("result", images["result"][1:], images["result"][0]))
    rows_above = max(min(max_rows, len(top)) for _, top, _ in blocks)
    top_y = 24 + 18
    bottom_y = top_y + rows_above * (cell + pad) + (12 if rows_above else 0)
    widths = [max(1, math.ceil(len(top) / max_rows)) * (cell + pad) - pad for _, top, _ in blocks]
    ops = []
    for b, (name, _, _) in enumerate(blocks):
        w = weights.get(name, 1.0)
        ops.append("=" if name == "result" else
                   ("-" if w < 0 else ("+" if b > 0 else "")) + ("" if abs(w) == 1 else f"{abs(w):g}x"))
    font, big = _font(12), _font(22)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    gaps = [max(gap, int(_text_width(measure, op, big)) + 16) for op in ops]
    canvas = Image.new("RGB", (sum(gaps) + sum(widths) + 8, bottom_y + cell + 22), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 4), f"{expression}   (above the result: result + {noise:g} * N(0, I), {variants} variants)",
              fill="black", font=_font(14))
    x = 0
    for b, (name, top, bottom) in enumerate(blocks):
        x += gaps[b]
        if ops[b]:
            draw.text((x - gaps[b] / 2, bottom_y + cell / 2), ops[b], fill="black", font=big, anchor="mm")
        cx = x + widths[b] / 2
        head = name if name == "result" else f"{name} ({len(top)})"
        draw.text((cx, top_y - 4), head, fill="black", font=font, anchor="ms")
        for i in range(len(top)):
            col, row = divmod(i, max_rows)
            canvas.paste(_tile(top[i], scale), (x + col * (cell + pad), top_y + row * (cell + pad)))
        canvas.paste(_tile(bottom, scale), (int(cx - cell / 2), bottom_y))
        draw.text((cx, bottom_y + cell + 4), "result" if name == "result" else f"mean {name}", fill="black",
                  font=font, anchor="mt")
        x += widths[b]
    return canvas


# ----------------------------------------------------------------------------------------------------------------
# Sweeps and GANSpace directions

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.PReLU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus,
                nn.ReLU6, nn.Hardtanh, nn.Tanh, nn.Sigmoid)


def default_layer(net: nn.Module) -> str:
    """The module whose output is "the first block's output": the first activation module in the
    generator's module order (e.g. DCGAN's ReLU after the first ConvTranspose + BatchNorm), else the
    first module with parameters."""
    for name, m in net.named_modules():
        if name and isinstance(m, _ACTIVATIONS):
            return name
    for name, m in net.named_modules():
        if name and not list(m.children()) and any(True for _ in m.parameters(recurse=False)):
            return name
    raise GanforgeError("The generator has no submodule to take activations from; use space='feature'.")


@dataclass
class PCADirections:
    """GANSpace directions: unit latent directions float32 [k, nz], explained variance ratio [k] of the
    principal components they follow, and how they were computed."""

    directions: torch.Tensor
    explained_variance: list[float]
    space: str
    layer: str | None
    n_samples: int
    seed: int


class _Captured(Exception):
    pass


def _principal_directions(z: torch.Tensor, x: torch.Tensor, k: int) -> tuple[torch.Tensor, list[float]]:
    """PCA of x [N, D], then the latent direction of each of the top k components by least squares.

    The components come from the eigenvectors of the smaller of the two Gram matrices (Xc Xc^T [N, N]
    or Xc^T Xc [D, D]) in float64: the same components as an SVD of Xc, and far quicker on CPU.
    """
    xc = x.double() - x.double().mean(0)
    n, d = xc.shape
    if n <= d:
        evals, evecs = torch.linalg.eigh(xc @ xc.T)
        evals, u = evals.flip(0)[:k].clamp_min(0), evecs.flip(1)[:, :k]
        if bool((evals <= 1e-12 * max(float(evals[0]), 1e-300)).any()):
            raise GanforgeError(f"The activations vary in fewer than {k} directions; ask for fewer components.")
        coords = u * evals.sqrt()  # [N, k] PC coordinates
        loadings = (xc.T @ u) / evals.sqrt()  # [D, k] unit principal axes
    else:
        evals, evecs = torch.linalg.eigh(xc.T @ xc)
        evals, loadings = evals.flip(0)[:k].clamp_min(0), evecs.flip(1)[:, :k]
        coords = xc @ loadings
    flip = torch.sign(loadings.gather(0, loadings.abs().argmax(0, keepdim=True))).reshape(-1)
    flip[flip == 0] = 1
    coords = coords * flip  # signs fixed: the largest loading of each component is positive
    zc = z.double() - z.double().mean(0)
    w = torch.linalg.lstsq(coords, zc).solution  # [k, nz]: z ~ coords @ w  (GANSpace: U = argmin |U x - z|)
    norms = w.norm(dim=1, keepdim=True)
    if bool((norms < 1e-12).any()):
        raise GanforgeError("A principal component does not depend on the latent (zero regression); "
                            "use fewer components or another layer.")
    var = evals / (xc ** 2).sum()
    return (w / norms).float(), [round(float(v), 6) for v in var]


@torch.no_grad()
def pca_directions(model, k: int = 6, n_samples: int = 2000, seed: int = 0, space: str = "activation",
                   layer: str | None = None, class_: int | str | None = None, ema: bool | None = None,
                   batch_size: int = 256) -> PCADirections:
    """Latent directions of the largest variations of G (GANSpace, Harkonen et al. 2020).

    PCA of random latents themselves is meaningless (z ~ N(0, I) is isotropic), so, as GANSpace does
    for BigGAN: draw ``n_samples`` latents (``torch.randn(n_samples, nz, generator=manual_seed(seed))``),
    collect an intermediate representation y_j of each, compute the top ``k`` principal components of
    the y_j and their coordinates x_j, and transfer them to latent space by linear regression,
    U = argmin_U sum_j |U x_j - z_j|^2 (z and x centred): column i of U is the latent direction whose
    motion moves PC i (returned normalised to unit length; sign chosen so that the largest loading of
    the component is positive).

    ``space="activation"``: y = the flattened output of ``layer`` of G (default :func:`default_layer`:
    the first block's output). ``space="feature"``: y = the Fashion-MNIST classifier's 128 features of
    the generated images (directions of the largest variation of what the images look like).
    Conditional models: every sample has ``class_`` or a random class drawn from the same generator.
    """
    _check_images(model)
    if space not in SPACES:
        raise GanforgeError(f"Unknown PCA space {space!r}; use activation or feature.")
    nz = model.task.nz
    if n_samples < 2:
        raise GanforgeError(f"PCA needs at least 2 samples, got {n_samples}.")
    if not 1 <= k <= min(nz, n_samples - 1):
        raise GanforgeError(f"The number of PCA components must be between 1 and {min(nz, n_samples - 1)} "
                            f"(the latent size {nz} and samples - 1), got {k}.")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, nz, generator=g)
    n_cls, cls = num_classes(model), _model_class(model, class_)
    y = None
    if n_cls:
        y = (torch.full((n_samples,), cls, dtype=torch.int64) if cls is not None
             else torch.randint(n_cls, (n_samples,), generator=g))
    if space == "feature":
        extractor = _fmnist(model)
        feats = [extractor(render(model, z[s:s + batch_size], None if y is None else y[s:s + batch_size], ema=ema,
                                  batch_size=batch_size))["features"].cpu() for s in range(0, n_samples, batch_size)]
        x = torch.cat(feats)
        layer = None
    else:
        net = model.generator(ema)
        layer = layer or default_layer(net)
        try:
            module = net.get_submodule(layer)
        except AttributeError:
            some = ", ".join(n for n, _ in list(net.named_modules())[1:9])
            raise GanforgeError(f"The generator has no layer {layer!r}; its layers include: {some}.") from None
        store: list[torch.Tensor] = []

        def hook(_m, _i, output):
            store.append(output.detach().flatten(1).double().cpu())
            raise _Captured

        handle = module.register_forward_hook(hook)
        try:
            for s in range(0, n_samples, batch_size):
                chunk = {"z": z[s:s + batch_size].to(model.device)}
                if y is not None:
                    chunk["y"] = y[s:s + batch_size].to(model.device)
                try:
                    model.task.generate(net, chunk)
                except _Captured:
                    pass
        finally:
            handle.remove()
        x = torch.cat(store)
    if x.shape[1] < k:
        raise GanforgeError(f"The {space} space has only {x.shape[1]} dimensions, fewer than {k} components.")
    directions, var = _principal_directions(z, x, k)
    return PCADirections(directions, var, space, layer, n_samples, seed)


def _values(radius: float, steps: int) -> torch.Tensor:
    if not radius > 0:
        raise GanforgeError(f"The sweep range must be a positive number, got {radius}.")
    if steps < 2:
        raise GanforgeError(f"A sweep needs at least 2 steps, got {steps}.")
    return torch.linspace(-radius, radius, steps)


def sweep_dimension(model, dim: int, seeds: Sequence[int] | int = (0,), radius: float = 3.0, steps: int = 9,
                    shift: bool = False, class_: int | str | None = None, ema: bool | None = None,
                    out: str | Path | None = None) -> LatentFigure:
    """Vary latent coordinate ``dim`` over ``steps`` values in [-radius, radius] (rows = seeds).

    By default z_dim is set to each value (the other coordinates stay exactly as the seed gave them);
    ``shift=True`` adds the value instead (see :func:`sweep_latents`).
    """
    _check_images(model)
    nz = model.task.nz
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < nz:
        raise GanforgeError(f"Latent dimension {dim} is out of range; this model's latents have {nz} dimensions "
                            f"(0..{nz - 1}).")
    seeds, values = _seed_list(seeds), _values(radius, steps)
    axis = torch.zeros(nz)
    axis[dim] = 1
    z = sweep_latents(z_from_seeds(seeds, nz), axis, values, shift)
    return _sweep_figure(model, "sweep_dimension", z, seeds, values, [f"seed {s}" for s in seeds], class_, ema, out,
                         f"latent dimension {dim}: z[{dim}] {'+' if shift else '='} value",
                         {"dim": dim, "seeds": seeds, "radius": radius, "steps": steps, "shift": shift}, {})


def sweep_pca(model, components: int = 6, seeds: Sequence[int] | int = (0,), radius: float = 3.0, steps: int = 9,
              shift: bool = False, space: str = "activation", n_samples: int = 2000, pca_seed: int = 0,
              layer: str | None = None, class_: int | str | None = None, ema: bool | None = None,
              out: str | Path | None = None) -> LatentFigure:
    """Walk the top ``components`` GANSpace directions (:func:`pca_directions`): one row per component and
    base seed (grouped by component), columns = values in [-radius, radius] along the unit direction."""
    _check_images(model)
    seeds, values = _seed_list(seeds), _values(radius, steps)
    pca = pca_directions(model, components, n_samples, pca_seed, space, layer, class_, ema)
    base = z_from_seeds(seeds, model.task.nz)
    z = torch.cat([sweep_latents(base, d, values, shift) for d in pca.directions])
    labels = [f"PC{i + 1} ({100 * v:.0f}%) seed {s}" for i, v in enumerate(pca.explained_variance) for s in seeds]
    where = f"layer {pca.layer}" if space == "activation" else "fmnist features"
    params = {"components": components, "seeds": seeds, "radius": radius, "steps": steps, "shift": shift,
              "space": space, "n_samples": n_samples, "pca_seed": pca_seed, "layer": pca.layer}
    info = {"pca": {"space": space, "layer": pca.layer, "n_samples": n_samples, "seed": pca_seed,
                    "explained_variance": pca.explained_variance,
                    "directions": [[float(v) for v in d] for d in pca.directions]}}
    return _sweep_figure(model, "sweep_pca", z, seeds * components, values, labels, class_, ema, out,
                         f"GANSpace directions (PCA of {where}, {n_samples} samples): "
                         f"{'z + value * u' if shift else 'component along u = value'}", params, info)


def _sweep_figure(model, tool: str, z: torch.Tensor, row_seeds: list[int], values: torch.Tensor,
                  row_labels: list[str], class_, ema, out, title: str, params: dict, info: dict) -> LatentFigure:
    R, K, nz = z.shape
    cls = _model_class(model, class_)
    rc = _seed_classes(model, row_seeds, cls)
    y = None if rc is None else rc.repeat_interleave(K)
    images = render(model, z.reshape(R * K, nz), y, ema=ema)
    images = images.reshape(R, K, *images.shape[1:])
    if rc is not None:
        names = model_class_names(model)
        row_labels = [f"{label} ({names[c]})" for label, c in zip(row_labels, rc.tolist(), strict=True)]
    picture = grid_picture(images, row_labels, [f"{v:+.3g}" for v in values.tolist()], title=title)
    params = {**params, "class_": cls}
    record = _record(model, tool, ema, params, seeds=params["seeds"],
                     classes=None if rc is None else rc.tolist(), values=[round(float(v), 6) for v in values],
                     layout="rows = " + ("components x seeds" if tool == "sweep_pca" else "seeds")
                     + ", columns = values", **info)
    return _save(LatentFigure(tool, {"grid": images}, {"grid": z}, picture, record), out)


# ----------------------------------------------------------------------------------------------------------------
# Truncation


def _class_note(model, cls: int | None) -> str:
    if not num_classes(model):
        return ""
    if cls is not None:
        return f"; class {model_class_names(model)[cls]}"
    return f"; class of seed s: s % {num_classes(model)}"


def _mean_pairwise(x: torch.Tensor) -> float:
    d = torch.cdist(x.double(), x.double())
    n = x.shape[0]
    return float(d.sum() / (n * (n - 1)))


def diversity(images: torch.Tensor, extractor=None) -> dict[str, float | None]:
    """Diversity of uint8 images [N, C, H, W] (N >= 2).

    ``pixels``: mean pairwise Euclidean distance of the images in [0, 1], divided by sqrt(C H W) (the
    root-mean-square pixel difference, averaged over pairs). ``features``: mean pairwise Euclidean
    distance of the Fashion-MNIST classifier's 128 features (LPIPS is not available offline).
    ``confidence``: the classifier's mean top-class probability, reported for one-channel images only
    (it knows grayscale clothing; on other images it measures nothing meaningful), else None.
    """
    n = images.shape[0]
    flat = images.reshape(n, -1).double() / 255
    out: dict[str, float | None] = {"pixels": _mean_pairwise(flat) / math.sqrt(flat.shape[1])}
    if extractor is not None:
        res = extractor(images)
        out["features"] = _mean_pairwise(res["features"].cpu())
        out["confidence"] = (float(torch.softmax(res["logits"].double(), 1).max(1).values.mean())
                             if images.shape[1] == 1 else None)
    return out


def _threshold(t: float | str | None) -> float | None:
    if t is None or (isinstance(t, str) and t.strip().lower() in ("none", "inf", "off")):
        return None
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise GanforgeError(f"A truncation threshold must be a positive number or none, got {t!r}.") from None
    if math.isinf(value) and value > 0:
        return None
    if not value > 0:
        raise GanforgeError(f"A truncation threshold must be a positive number or none, got {t!r}.")
    return value


def truncation(model, thresholds: Sequence[float | str | None] = (None, 2.0, 1.0, 0.5, 0.25), n: int = 10,
               seed: int = 0, class_: int | str | None = None, ema: bool | None = None,
               out: str | Path | None = None) -> LatentFigure:
    """The truncation trick (BigGAN): rows = thresholds (None = untruncated), columns = seeds seed .. seed+n-1.

    Row t shows ``z_from_seeds(seeds, nz, truncation=t)``: components with |z_i| > t redrawn until inside.
    Right of each row: its diversity (:func:`diversity`: mean pairwise distance of classifier features,
    and of pixels) and, for one-channel images, the classifier's mean confidence, so the trade-off
    between variety and typicality is visible; all in the record's ``rows``.
    """
    _check_images(model)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise GanforgeError(f"Truncation needs at least 2 images per row (to measure diversity), got {n}.")
    ts = [_threshold(t) for t in thresholds]
    if not ts:
        raise GanforgeError("Give at least one truncation threshold.")
    seeds = list(range(_seed_list(seed, "seed")[0], seed + n))
    nz, cls = model.task.nz, _model_class(model, class_)
    z = torch.stack([z_from_seeds(seeds, nz, t) for t in ts])
    rc = _seed_classes(model, seeds, cls)
    y = None if rc is None else rc.repeat(len(ts))
    images = render(model, z.reshape(-1, nz), y, ema=ema)
    images = images.reshape(len(ts), n, *images.shape[1:])
    extractor = _fmnist(model)
    rows = []
    for t, imgs in zip(ts, images, strict=True):
        d = diversity(imgs, extractor)
        rows.append({"threshold": t, "max_abs_z": round(float(z[len(rows)].abs().max()), 6),
                     "diversity_features": round(d["features"], 6), "diversity_pixels": round(d["pixels"], 6),
                     "confidence": None if d["confidence"] is None else round(d["confidence"], 6)})
    right = [f"div {r['diversity_features']:.2f} feat, {r['diversity_pixels']:.3f} px"
             + ("" if r["confidence"] is None else f", conf {r['confidence']:.2f}") for r in rows]
    picture = grid_picture(images, ["none" if t is None else f"t = {t:g}" for t in ts], [f"seed {s}" for s in seeds],
                           right, title="truncation trick: |z_i| > t redrawn" + _class_note(model, cls))
    params = {"thresholds": ts, "n": n, "seed": seed, "class_": cls}
    record = _record(model, "truncation", ema, params, seeds=seeds, classes=None if rc is None else rc.tolist(),
                     rows=rows, layout="rows = thresholds, columns = seeds",
                     diversity="diversity_features: mean pairwise L2 distance of fmnist classifier features; "
                               "diversity_pixels: mean pairwise RMS pixel difference (pixels in [0, 1]); "
                               "confidence: mean top-class probability of the fmnist classifier (1-channel only)")
    return _save(LatentFigure("truncation", {"grid": images}, {"grid": z}, picture, record), out)


# ----------------------------------------------------------------------------------------------------------------
# Regeneration

TOOLS: dict[str, Callable[..., LatentFigure]] = {
    "interpolate": interpolate,
    "interpolate_classes": interpolate_classes,
    "arithmetic": arithmetic,
    "sweep_dimension": sweep_dimension,
    "sweep_pca": sweep_pca,
    "truncation": truncation,
}


def read_record(path: str | Path) -> dict[str, Any]:
    """A tool's JSON record, checked to name a known tool and hold its parameters."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GanforgeError(f"Cannot read the latent record {str(path)!r} ({e}).") from None
    if not isinstance(record, dict) or record.get("tool") not in TOOLS or not isinstance(record.get("params"), dict):
        raise GanforgeError(f"{str(path)!r} is not a record written by a ganforge latent tool.")
    return record


def regenerate(record: str | Path | Mapping[str, Any], out: str | Path | None = None, model=None,
               device: str = "cpu", source: str | Path | None = None) -> LatentFigure:
    """Redraw a figure from its JSON record (a path or the dict): same checkpoint, EMA choice and parameters.

    ``source``: a run folder or checkpoint to load instead of ``record["checkpoint"]`` (e.g. after the run
    was moved; a run folder's checkpoint at the recorded step is used). ``model``: an already loaded model.
    """
    if not isinstance(record, Mapping):
        record = read_record(record)
    if model is None:
        from .api import load

        step = record.get("step")
        if source is not None:
            model = load(source, str(step) if step is not None else "latest", device=device)
        elif record.get("checkpoint"):
            model = load(record["checkpoint"], device=device)
        else:
            raise GanforgeError("The record names no checkpoint; give the run folder or checkpoint to load.")
    if record.get("step") is not None and getattr(model, "step", None) != record["step"]:
        raise GanforgeError(f"The record was made at step {record['step']} but the checkpoint is at step "
                            f"{getattr(model, 'step', None)}.")
    return TOOLS[record["tool"]](model, **record["params"], ema=record.get("ema"), out=out)


__all__ = [
    "GroupLatents", "GroupSpec", "LatentFigure", "PCADirections", "TOOLS", "arithmetic", "combine", "default_layer",
    "diversity", "group_latents", "interpolate", "interpolate_classes", "interpolation_path", "lerp",
    "model_class_names", "num_classes", "parse_expression", "parse_group", "pca_directions", "read_record",
    "regenerate", "render", "resolve_class", "select_by_class", "slerp", "sweep_dimension", "sweep_latents",
    "sweep_pca", "truncation", "z_from_seeds",
]
