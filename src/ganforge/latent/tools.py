"""The latent tools: each makes one picture from seeds and returns a :class:`LatentFigure` with its record.

- :func:`interpolate` / :func:`interpolate_classes`: paths between seeds' latents, or class blends;
- :func:`arithmetic`: means of groups of latents combined by an expression (Radford et al. figure 7);
- :func:`sweep_dimension` / :func:`sweep_pca`: one coordinate, or GANSpace directions, over a range;
- :func:`truncation`: the BigGAN truncation trick with a :func:`diversity` number per row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import GanforgeError
from ..threads import applies_threads
from ..viz.latent import arithmetic_picture, gif_frames, grid_picture
from .figure import LatentFigure, make_record, save_figure
from .groups import GroupSpec, group_latents, parse_group
from .pca import pca_directions
from .render import (
    check_images,
    fmnist_extractor,
    model_class,
    model_class_names,
    num_classes,
    render,
    render_classes,
    seed_classes,
    source,
)
from .vectors import (
    MODES,
    check_names,
    combine,
    interpolation_path,
    parse_expression,
    seed_list,
    sweep_latents,
    sweep_values,
    z_from_seeds,
)

# ----------------------------------------------------------------------------------------------------------------
# Interpolation


def _animate(fig: LatentFigure, images: torch.Tensor, captions: list[str], keyframes: set[int], pingpong: bool,
             frame_ms: int) -> None:
    if frame_ms < 1:
        raise GanforgeError(f"The time per animation frame must be at least 1 ms, got {frame_ms}.")
    frames = gif_frames(images, captions)
    order = list(range(len(frames)))
    if pingpong:
        order += order[-2:0:-1]
    fig.gif_frames = [frames[i] for i in order]
    fig.gif_durations = [frame_ms * 4 if i in keyframes else frame_ms for i in order]


@applies_threads
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
    check_images(model)
    rows = [list(seeds)] if seeds and not isinstance(list(seeds)[0], (list, tuple)) else [list(r) for r in seeds]
    if not rows:
        raise GanforgeError("Give at least two seeds to interpolate between.")
    rows = [seed_list(r) for r in rows]
    if any(len(r) < 2 for r in rows):
        raise GanforgeError(f"Each interpolation path needs at least 2 seeds, got {min(rows, key=len)}.")
    if len({len(r) for r in rows}) > 1:
        raise GanforgeError("Every interpolation row needs the same number of seeds, got "
                            f"{', '.join(str(len(r)) for r in rows)}.")
    if mode not in MODES:
        raise GanforgeError(f"Unknown interpolation mode {mode!r}; use slerp or linear.")
    nz, n_cls = model.nz, num_classes(model)
    cls = model_class(model, class_)
    z_rows, label_rows, row_classes = [], [], []
    for r in rows:
        z_rows.append(interpolation_path(z_from_seeds(r, nz), steps, mode))
        kc = seed_classes(model, r, cls)
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
    images = render_classes(model, z.reshape(R * T, nz), y, ema=ema)
    images = images.reshape(R, T, *images.shape[1:])
    names = model_class_names(model)

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
    record = make_record(model, "interpolate", ema, params, seeds=rows,
                         classes=row_classes if n_cls else None,
                         class_names=[[names[c] for c in r] for r in row_classes] if n_cls else None,
                         frames_per_row=T, layout="rows = paths, columns = steps")
    fig = LatentFigure("interpolate", {"grid": images}, {"grid": z}, picture, record)
    if y is not None:
        fig.latents["labels"] = y.reshape(R, T, *y.shape[1:])
    if gif:
        captions = [f"step {t}/{T - 1}" for t in range(T)]
        _animate(fig, images, captions, set(range(0, T, steps)), pingpong, frame_ms)
    return save_figure(fig, out)


@applies_threads
def interpolate_classes(model, classes: Sequence[int | str], seeds: Sequence[int] | int = 0, steps: int = 8,
                        gif: bool = False, pingpong: bool = False, frame_ms: int = 100, ema: bool | None = None,
                        out: str | Path | None = None) -> LatentFigure:
    """Hold a latent fixed and blend the class label through ``classes`` (names or indices, at least 2).

    A conditional model only: labels are ``y_soft`` = (1 - t) onehot(A) + t onehot(B) per segment, in
    ``steps`` steps; one row per seed in ``seeds``.
    """
    check_images(model)
    n_cls = num_classes(model)
    if n_cls == 0:
        raise GanforgeError(f"{source(model)!r} is an unconditional {model.name} model; "
                            "interpolating between classes needs a conditional model (such as cgan).")
    seeds = seed_list(seeds)
    names = model_class_names(model)
    idx = [model.class_index(c) for c in classes]
    if len(idx) < 2:
        raise GanforgeError(f"Class interpolation needs at least 2 classes, got {len(idx)}.")
    soft = interpolation_path(F.one_hot(torch.tensor(idx), n_cls).double(), steps, "linear").float()
    T, R, nz = soft.shape[0], len(seeds), model.nz
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
    record = make_record(model, "interpolate_classes", ema, params, seeds=seeds, classes=idx,
                         class_names=[names[c] for c in idx], layout="rows = seeds, columns = label blend steps")
    fig = LatentFigure("interpolate_classes", {"grid": images}, {"grid": z, "labels": labels}, picture, record)
    if gif:
        captions = []
        for t in range(T):
            seg = min(t // steps, len(idx) - 2)
            captions.append(f"{names[idx[seg]]} -> {names[idx[seg + 1]]}  {t - seg * steps}/{steps}")
        _animate(fig, images, captions, set(range(0, T, steps)), pingpong, frame_ms)
    return save_figure(fig, out)


# ----------------------------------------------------------------------------------------------------------------
# Arithmetic


@applies_threads
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
    check_images(model)
    terms = parse_expression(expression)
    check_names(expression, terms, list(groups))
    names_used = [n for _, n in terms]
    if "result" in groups:
        raise GanforgeError("'result' names the outcome of the arithmetic; call the group something else.")
    unused = [n for n in groups if n not in names_used]
    if unused:
        raise GanforgeError(f"Group {unused[0]!r} is defined but the expression {expression!r} does not use it.")
    if variants < 0:
        raise GanforgeError(f"The number of noisy variants must be 0 or more, got {variants}.")
    if noise < 0:
        raise GanforgeError(f"The noise scale must be 0 or more, got {noise}.")
    n_cls, cls, nz = num_classes(model), model_class(model, class_), model.nz
    extractor = fmnist_extractor(model) if any(parse_group(s).kind == "class" for s in groups.values()) else None
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
        majority = None if g.y is None else int(torch.bincount(g.y).argmax())
        mean_y = None if g.y is None else torch.tensor([cls if cls is not None else majority])
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
    picture = arithmetic_picture(terms, images, expression, variants, noise)
    params = {"expression": expression, "groups": {k: str(parse_group(v)) for k, v in groups.items()},
              "variants": variants, "noise": noise, "noise_seed": noise_seed, "class_": cls}
    record = make_record(model, "arithmetic", ema, params,
                         seeds={k: g.info.get("seeds") for k, g in resolved.items() if g.spec.kind == "seeds"},
                         groups={k: {"spec": str(g.spec), **g.info} for k, g in resolved.items()},
                         classes=classes or None, terms=[[w, n] for w, n in terms],
                         layout="column block per term: samples above, image of the mean latent below; result "
                                "block: noisy variants above, G(result) below")
    return save_figure(LatentFigure("arithmetic", images, latents, picture, record), out)


# ----------------------------------------------------------------------------------------------------------------
# Sweeps


@applies_threads
def sweep_dimension(model, dim: int, seeds: Sequence[int] | int = (0,), radius: float = 3.0, steps: int = 9,
                    shift: bool = False, class_: int | str | None = None, ema: bool | None = None,
                    out: str | Path | None = None) -> LatentFigure:
    """Vary latent coordinate ``dim`` over ``steps`` values in [-radius, radius] (rows = seeds).

    By default z_dim is set to each value (the other coordinates stay exactly as the seed gave them);
    ``shift=True`` adds the value instead (see :func:`sweep_latents`).
    """
    check_images(model)
    nz = model.nz
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < nz:
        raise GanforgeError(f"Latent dimension {dim} is out of range; this model's latents have {nz} dimensions "
                            f"(0..{nz - 1}).")
    seeds, values = seed_list(seeds), sweep_values(radius, steps)
    axis = torch.zeros(nz)
    axis[dim] = 1
    z = sweep_latents(z_from_seeds(seeds, nz), axis, values, shift)
    return _sweep_figure(model, "sweep_dimension", z, seeds, values, [f"seed {s}" for s in seeds], class_, ema, out,
                         f"latent dimension {dim}: z[{dim}] {'+' if shift else '='} value",
                         {"dim": dim, "seeds": seeds, "radius": radius, "steps": steps, "shift": shift}, {})


@applies_threads
def sweep_pca(model, components: int = 6, seeds: Sequence[int] | int = (0,), radius: float = 3.0, steps: int = 9,
              shift: bool = False, space: str = "activation", n_samples: int = 2000, pca_seed: int = 0,
              layer: str | None = None, class_: int | str | None = None, ema: bool | None = None,
              out: str | Path | None = None) -> LatentFigure:
    """Walk the top ``components`` GANSpace directions (:func:`pca_directions`): one row per component and
    base seed (grouped by component), columns = values in [-radius, radius] along the unit direction."""
    check_images(model)
    seeds, values = seed_list(seeds), sweep_values(radius, steps)
    pca = pca_directions(model, components, n_samples, pca_seed, space, layer, class_, ema)
    base = z_from_seeds(seeds, model.nz)
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
    cls = model_class(model, class_)
    rc = seed_classes(model, row_seeds, cls)
    y = None if rc is None else rc.repeat_interleave(K)
    images = render(model, z.reshape(R * K, nz), y, ema=ema)
    images = images.reshape(R, K, *images.shape[1:])
    if rc is not None:
        names = model_class_names(model)
        row_labels = [f"{label} ({names[c]})" for label, c in zip(row_labels, rc.tolist(), strict=True)]
    picture = grid_picture(images, row_labels, [f"{v:+.3g}" for v in values.tolist()], title=title)
    params = {**params, "class_": cls}
    record = make_record(model, tool, ema, params, seeds=params["seeds"],
                         classes=None if rc is None else rc.tolist(), values=[round(float(v), 6) for v in values],
                         layout="rows = " + ("components x seeds" if tool == "sweep_pca" else "seeds")
                         + ", columns = values", **info)
    return save_figure(LatentFigure(tool, {"grid": images}, {"grid": z}, picture, record), out)


# ----------------------------------------------------------------------------------------------------------------
# Truncation


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


@applies_threads
def truncation(model, thresholds: Sequence[float | str | None] = (None, 2.0, 1.0, 0.5, 0.25), n: int = 10,
               seed: int = 0, class_: int | str | None = None, ema: bool | None = None,
               out: str | Path | None = None) -> LatentFigure:
    """The truncation trick (BigGAN): rows = thresholds (None = untruncated), columns = seeds seed .. seed+n-1.

    Row t shows ``z_from_seeds(seeds, nz, truncation=t)``: components with |z_i| > t redrawn until inside.
    Right of each row: its diversity (:func:`diversity`: mean pairwise distance of classifier features,
    and of pixels) and, for one-channel images, the classifier's mean confidence, so the trade-off
    between variety and typicality is visible; all in the record's ``rows``.
    """
    check_images(model)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise GanforgeError(f"Truncation needs at least 2 images per row (to measure diversity), got {n}.")
    ts = [_threshold(t) for t in thresholds]
    if not ts:
        raise GanforgeError("Give at least one truncation threshold.")
    seeds = list(range(seed_list(seed, "seed")[0], seed + n))
    nz, cls = model.nz, model_class(model, class_)
    z = torch.stack([z_from_seeds(seeds, nz, t) for t in ts])
    rc = seed_classes(model, seeds, cls)
    y = None if rc is None else rc.repeat(len(ts))
    images = render(model, z.reshape(-1, nz), y, ema=ema)
    images = images.reshape(len(ts), n, *images.shape[1:])
    extractor = fmnist_extractor(model)
    rows = []
    for t, imgs in zip(ts, images, strict=True):
        d = diversity(imgs, extractor)
        rows.append({"threshold": t, "max_abs_z": round(float(z[len(rows)].abs().max()), 6),
                     "diversity_features": round(d["features"], 6), "diversity_pixels": round(d["pixels"], 6),
                     "confidence": None if d["confidence"] is None else round(d["confidence"], 6)})
    right = [f"div {r['diversity_features']:.2f} feat, {r['diversity_pixels']:.3f} px"
             + ("" if r["confidence"] is None else f", conf {r['confidence']:.2f}") for r in rows]
    names = model_class_names(model) if rc is not None else None
    columns = [f"seed {s}" if names is None else f"{s}: {names[int(c)][:10]}" for s, c in
               zip(seeds, rc.tolist() if rc is not None else seeds, strict=True)]
    picture = grid_picture(images, ["none" if t is None else f"t = {t:g}" for t in ts], columns, right,
                           title="truncation trick: row t redraws every |z_i| > t (none: plain z), columns = seeds"
                                 + (f"; class {names[cls]}" if cls is not None and names else
                                    "; seed: class" if names else "") + "; right: diversity, confidence")
    params = {"thresholds": ts, "n": n, "seed": seed, "class_": cls}
    record = make_record(model, "truncation", ema, params, seeds=seeds, classes=None if rc is None else rc.tolist(),
                         columns=columns, rows=rows, layout="rows = thresholds, columns = seeds",
                         diversity="diversity_features: mean pairwise L2 distance of fmnist classifier features; "
                                   "diversity_pixels: mean pairwise RMS pixel difference (pixels in [0, 1]); "
                                   "confidence: mean top-class probability of the fmnist classifier (1-channel only)")
    return save_figure(LatentFigure("truncation", {"grid": images}, {"grid": z}, picture, record), out)
