"""What the Generate, Latent and Translate pages draw, each through the public API a user's code calls
(``ganforge.load``, :mod:`ganforge.latent`, the pipelines' ``translate``), plus the command line that
draws the same picture. Images leave as PNG bytes (or NPZ for downloads)."""

from __future__ import annotations

import io
import shlex
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import latent
from ..checkpoint import resolve_checkpoint
from ..data import convert_images
from ..errors import GanforgeError
from ..families import family_of, load
from ..latent.render import check_images, model_class, seed_classes
from ..pipelines import Pipeline
from ..viz import grid_image
from ..viz.columns import column_images, fit_cells
from .runs import StudioError

MAX_IMAGES = 256  # images per generate request
MAX_SEED = 2**31 - 1
PCA_COMPONENTS = 5
PCA_SAMPLES = 2000  # as `ganforge latent sweep --pca` (its --samples default), so the copied command agrees
FRAME_SIDE = 256  # a latent frame is drawn at least this wide (nearest-neighbour upscaling)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def image_png(images: torch.Tensor, nrow: int | None = None, min_width: int = 0) -> bytes:
    """uint8 [N, C, H, W] as one PNG grid (2-pixel white padding as ``ganforge sample`` writes)."""
    return png_bytes(grid_image(images, nrow, min_width=min_width))


def single_png(image: torch.Tensor, side: int = FRAME_SIDE) -> bytes:
    """One uint8 [C, H, W] image, upscaled (nearest) to at least ``side`` pixels wide, as PNG."""
    arr = image.permute(1, 2, 0).numpy()
    im = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))
    scale = max(1, -(-side // im.width))
    return png_bytes(im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im)


def parse_seeds(text: str) -> list[int]:
    """``"0-15"``, ``"1,5,9"`` or a mix (``"0-3,10"``) -> seeds; at most MAX_IMAGES of them."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        a, dash, b = part.partition("-")
        if not a.isdigit() or (dash and not b.isdigit()):
            raise StudioError(f"Cannot read the seeds {text!r}; write seeds as 1,5,9 or a range such as 0-15.")
        lo, hi = int(a), int(b) if dash else int(a)
        if hi < lo or hi > MAX_SEED:
            raise StudioError(f"The seed range {part!r} is empty or beyond {MAX_SEED}.")
        if len(seeds) + hi - lo + 1 > MAX_IMAGES:
            raise StudioError(f"{text!r} gives more than {MAX_IMAGES} seeds; ask for at most {MAX_IMAGES}.")
        seeds.extend(range(lo, hi + 1))
    return seeds


def parse_ema(value: str | None) -> bool | None:
    if value in (None, "", "default"):
        return None
    if value in ("1", "true", "ema"):
        return True
    if value in ("0", "false", "raw"):
        return False
    raise StudioError(f"ema must be default, ema or raw, got {value!r}.")


def _ckpt_flag(ckpt: str) -> str:
    return "" if ckpt == "latest" else f" --ckpt {ckpt}"


def _ema_flag(ema: bool | None) -> str:
    return "" if ema is None else (" --ema" if ema else " --no-ema")


@dataclass
class Picture:
    """A picture for the browser: PNG (or NPZ) bytes and what it shows."""

    data: bytes
    info: dict[str, Any]
    media_type: str = "image/png"


class Models:
    """Loaded inference objects, the few most recently used, keyed by checkpoint folder and its files' times.
    Work on them runs one request at a time (``lock``): the CPU cores are few and the networks are shared."""

    def __init__(self, keep: int = 4, device: str = "cpu") -> None:
        self.keep, self.device = keep, device
        self._cache: OrderedDict[tuple, Pipeline] = OrderedDict()
        self._pca: dict[tuple, latent.PCADirections] = {}
        self.lock = threading.Lock()

    def get(self, run_dir: Path, ckpt: str = "latest") -> Pipeline:
        ckpt = str(ckpt or "latest")
        if ckpt not in ("latest", "best") and not ckpt.isdigit():
            raise StudioError(f"Unknown checkpoint {ckpt!r}; use latest, best or a step number.")
        folder = resolve_checkpoint(run_dir, ckpt)
        stamp = (folder / "weights.safetensors").stat().st_mtime_ns if (folder / "weights.safetensors").exists() else 0
        key = (str(folder), stamp)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        pipe = load(folder, device=self.device)  # safetensors + weights_only, as ganforge.load always does
        self._cache[key] = pipe
        while len(self._cache) > self.keep:
            old, _ = self._cache.popitem(last=False)
            self._pca = {k: v for k, v in self._pca.items() if k[0] != old}
        return pipe

    def pca(self, pipe: Pipeline, ema: bool | None) -> latent.PCADirections:
        key = (str(pipe.path), pipe.step, ema)
        if key not in self._pca:
            self._pca[key] = latent.pca_directions(pipe, PCA_COMPONENTS, PCA_SAMPLES, 0, "activation", None, None, ema)
        return self._pca[key]


def _noise_model(pipe: Pipeline, run_id: str, verb: str = "sample") -> None:
    """The Generate page needs a family that samples images, the Latent page one that offers the latent tools."""
    try:
        if verb == "latent" or not family_of(pipe).can("sample"):
            check_images(pipe)
    except GanforgeError as e:
        raise StudioError(f"Run {run_id!r}: {e}") from None


def describe(pipe: Pipeline) -> dict[str, Any]:
    """What the pages need to know about a model: what its family offers, and what the model says of itself
    (latent size, classes, EMA and image shape; or channels, size and directions)."""
    return {**pipe.describe(), "offers": sorted(family_of(pipe).offers)}


# ----------------------------------------------------------------------------- Generate
def generate(pipe: Pipeline, run_id: str, seeds: str | None, seed: int | None, n: int | None,
             class_: str | None, truncation: float | None, ema: bool | None, ckpt: str, fmt: str) -> Picture:
    """A grid of generated images. ``seeds`` (one latent per seed, as the latent tools make them, with
    optional truncation) or ``seed`` + ``n`` (exactly ``ganforge sample --seed S --n N``)."""
    _noise_model(pipe, run_id)
    label = None if class_ in (None, "") else pipe.class_index(class_)
    nrow = None
    if seeds:
        if truncation is not None and not truncation > 0:
            raise StudioError(f"The truncation must be a positive number, got {truncation}.")
        seed_list = parse_seeds(seeds)
        z = latent.z_from_seeds(seed_list, pipe.nz, truncation)
        y = seed_classes(pipe, seed_list, label)
        images = latent.render(pipe, z, y, ema=ema)
        cmd = None  # no single `ganforge sample` draws chosen seeds; the truncate tool draws one row per threshold
        if truncation is not None and len(seed_list) >= 2 and seed_list == list(range(seed_list[0],
                                                                                       seed_list[-1] + 1)):
            cmd = (f"ganforge latent truncate {shlex.quote(run_id)}{_ckpt_flag(ckpt)} --thresholds {truncation:g} "
                   f"--n {len(seed_list)} --seed {seed_list[0]}" + ("" if label is None else f" --class {label}")
                   + f"{_ema_flag(ema)} --out pictures")
        info = {"n": len(seed_list), "seeds": seed_list, "truncation": truncation}
        labels = None if y is None else y
    else:
        if truncation is not None:
            raise StudioError("Truncation applies to images drawn by seeds (one latent per seed); give seeds.")
        n = 16 if n is None else int(n)
        if not 1 <= n <= MAX_IMAGES:
            raise StudioError(f"The number of images must be between 1 and {MAX_IMAGES}, got {n}.")
        seed = 0 if seed is None else int(seed)
        if not 0 <= seed <= MAX_SEED:
            raise StudioError(f"The seed must be between 0 and {MAX_SEED}, got {seed}.")
        arr = pipe.sample(n, seed=seed, ema=ema, label=label)
        images = torch.from_numpy(arr).permute(0, 3, 1, 2)
        labels = pipe.inputs(n, seed, label)["y"] if pipe.num_classes else None
        if labels is not None and label is None:
            nrow = pipe.grid_columns(n)
        cmd = (f"ganforge sample {shlex.quote(run_id)}{_ckpt_flag(ckpt)} --n {n} --seed {seed}"
               + ("" if label is None else f" --label {label}") + f"{_ema_flag(ema)} --out samples.{fmt}")
        info = {"n": n, "seed": seed}
    info.update(step=pipe.step, ema=pipe.uses_ema(ema), command=cmd, shape=list(images.shape[1:]))
    if fmt == "npz":
        buf = io.BytesIO()
        extra = {} if labels is None else {"labels": labels.numpy(), "class_names": np.array(pipe.class_names)}
        np.savez_compressed(buf, images=images.permute(0, 2, 3, 1).numpy(), step=np.int64(pipe.step or 0), **extra)
        return Picture(buf.getvalue(), info, "application/octet-stream")
    if fmt != "png":
        raise StudioError(f"Unknown format {fmt!r}; use png or npz.")
    cols = nrow or max(1, int(np.ceil(np.sqrt(images.shape[0]))))
    info["columns"] = cols
    return Picture(image_png(images, cols), info)


# ----------------------------------------------------------------------------- Latent explorer
def parse_moves(text: str | None, what: str, limit: int) -> dict[int, float]:
    """``"3:1.5,7:-2"`` -> {3: 1.5, 7: -2.0}: indices below ``limit`` with their values."""
    out: dict[int, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        i, colon, v = part.partition(":")
        try:
            index, value = int(i), float(v)
        except ValueError:
            raise StudioError(f"Cannot read {what} {text!r}; write INDEX:VALUE pairs such as 3:1.5,7:-2.") from None
        if not colon or not 0 <= index < limit or not abs(value) <= 100:
            raise StudioError(f"{what} {part!r} is out of range: indices 0..{limit - 1}, values within +-100.")
        out[index] = value
    return out


def latent_frame(models: Models, pipe: Pipeline, run_id: str, ckpt: str, seeds: str, position: int, steps: int,
                 mode: str, class_: str | None, dims: str | None, pcs: str | None, blend: str | None,
                 blend_t: float, ema: bool | None, last: str) -> Picture:
    """One image: column ``position`` of ``ganforge latent interpolate --seeds SEEDS --steps STEPS --mode
    MODE``, then latent dimensions set (``dims``), PCA components set (``pcs``) and, for conditional
    models, the label blended from class A to B by ``blend_t`` (``blend`` = "A,B"). ``last`` names the
    control moved last; the returned command draws a picture with this frame in it."""
    _noise_model(pipe, run_id, "latent")
    keys = parse_seeds(seeds)
    if len(keys) < 2:
        raise StudioError("Give at least two seeds to walk between.")
    if not 1 <= steps <= 64:
        raise StudioError(f"Steps per segment must be between 1 and 64, got {steps}.")
    if mode not in ("slerp", "linear"):
        raise StudioError(f"Unknown interpolation mode {mode!r}; use slerp or linear.")
    total = (len(keys) - 1) * steps
    if not 0 <= position <= total:
        raise StudioError(f"The position must be between 0 and {total}, got {position}.")
    cls = None if class_ in (None, "") else model_class(pipe, class_)
    path = latent.interpolation_path(latent.z_from_seeds(keys, pipe.nz), steps, mode)
    z = path[position:position + 1].clone()
    for d, v in parse_moves(dims, "dims", pipe.nz).items():
        axis = torch.zeros(pipe.nz)
        axis[d] = 1
        z = latent.sweep_latents(z, axis, [v])[:, 0]
    pcs_set = parse_moves(pcs, "pcs", PCA_COMPONENTS)
    if pcs_set:
        directions = models.pca(pipe, ema).directions
        for i, v in pcs_set.items():
            z = latent.sweep_latents(z, directions[i], [v])[:, 0]
    y = y_soft = None
    n_cls = pipe.num_classes
    if blend:
        names = [c.strip() for c in blend.split(",")]
        if len(names) != 2:
            raise StudioError(f"blend takes two classes A,B, got {blend!r}.")
        if not 0 <= blend_t <= 1:
            raise StudioError(f"The blend must be between 0 and 1, got {blend_t}.")
        a, b = (model_class(pipe, c) for c in names)
        y_soft = (1 - blend_t) * F.one_hot(torch.tensor([a]), n_cls).float() \
            + blend_t * F.one_hot(torch.tensor([b]), n_cls).float()
    elif n_cls:
        kc = seed_classes(pipe, keys, cls)
        soft = latent.interpolation_path(F.one_hot(kc, n_cls).double(), steps, "linear")[position:position + 1]
        hard = soft.argmax(-1)
        if torch.equal(F.one_hot(hard, n_cls).double(), soft):
            y = hard
        else:
            y_soft = soft.float()
    image = latent.render(pipe, z, y, y_soft, ema=ema)[0]
    q = shlex.quote(run_id)
    common = f"{_ckpt_flag(ckpt)}{_ema_flag(ema)}"
    cls_flag = "" if cls is None else f" --class {cls}"
    if last == "dim" and dims:
        d, v = list(parse_moves(dims, "dims", pipe.nz).items())[-1]
        cmd = (f"ganforge latent sweep {q} --dim {d} --seeds {keys[0]} --range {max(abs(v), 1e-3):g} --steps 2"
               f"{cls_flag}{common} --out pictures")
        where = "a column of sweep_dimension.png (the image at the value chosen; seed = the first seed, "\
                "interpolation position 0)"
    elif last == "pc" and pcs_set:
        i, v = list(pcs_set.items())[-1]
        cmd = (f"ganforge latent sweep {q} --pca {i + 1} --seeds {keys[0]} --range {max(abs(v), 1e-3):g} --steps 2 "
               f"--samples {PCA_SAMPLES}{cls_flag}{common} --out pictures")
        where = f"row PC{i + 1} of sweep_pca.png (seed = the first seed, interpolation position 0)"
    elif last == "blend" and blend:
        cmd = (f"ganforge latent interpolate {q} --classes {blend.replace(' ', '')} --seed {keys[0]} --steps 10"
               f"{common} --out pictures")
        where = "interpolate_classes.png, the blend at steps of 0.1 (seed = the first seed, interpolation position 0)"
    else:
        cmd = (f"ganforge latent interpolate {q} --seeds {','.join(map(str, keys))} --steps {steps} --mode {mode}"
               f"{cls_flag}{common} --out pictures")
        where = f"column {position} of interpolate.png"
    info = {"position": position, "total": total, "step": pipe.step, "command": cmd, "where": where,
            "shape": list(image.shape)}
    return Picture(single_png(image), info)


# ----------------------------------------------------------------------------- Translate
def _translator(pipe: Pipeline):
    """The family of ``pipe``, which must translate images; else the studio's one sentence."""
    family = family_of(pipe)
    if not family.can("translate"):
        raise StudioError(f"{pipe.source!r} is a {pipe.name} model: it does not translate images; use the "
                          "Generate page.")
    return family


def translate(pipe: Pipeline, image: torch.Tensor, target: torch.Tensor | None = None,
              direction: str | None = None, size: int | None = None) -> Picture:
    """input | output (| target) of one uint8 [C, H, W] image, side by side."""
    family = _translator(pipe)
    options: dict[str, Any] = {}
    if family.can("cycle"):
        if direction not in (None, "", "AtoB", "BtoA"):
            raise StudioError(f"Unknown direction {direction!r}; choose AtoB or BtoA.")
        direction = options["direction"] = direction or pipe.direction  # for this call only: the model is shared
    elif direction not in (None, "", "AtoB"):
        raise StudioError(f"A {pipe.name} model translates in the one direction it was trained for.")
    x = image.unsqueeze(0)
    if size is None and getattr(pipe.model_cfg, "image_size", None) and max(x.shape[-2:]) > 1024:
        size = int(pipe.model_cfg.image_size)  # very large uploads: translated at the training size
    out = pipe.translate(x, size=size, **options)
    a = convert_images(x, None, out.shape[1]) if x.shape[1] != out.shape[1] else x
    tgt = None if target is None else target.unsqueeze(0)
    if tgt is not None and tgt.shape[-2:] != out.shape[-2:]:
        tgt = None
    grid, cols = column_images([a, out] + ([tgt] if tgt is not None else []))
    info = {"input": list(image.shape), "output": list(out.shape[1:]), "panels": cols, "step": pipe.step,
            "direction": direction or "AtoB"}
    return Picture(png_bytes(grid_image(grid, cols, min_width=0)), info)


def held_out(pipe: Pipeline, index: int, direction: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Image ``index`` of the run's held-out split (test, else val) at its training size, and its target."""
    family = _translator(pipe)
    trained = pipe.data_config()
    size = int(getattr(pipe.model_cfg, "image_size", 256) or 256)
    if not 0 <= index < 10_000:
        raise StudioError(f"The held-out index must be between 0 and 9999, got {index}.")
    last = None
    for split in ("test", "val"):
        try:
            two_way = family.can("cycle")
            images, _, targets = family.read_split(trained.name, split, trained.root, trained.direction,
                                                   (direction or pipe.direction) if two_way else None,
                                                   trained.derive, size, index + 1)
        except Exception as e:  # noqa: BLE001 - the next split, then one sentence
            last = e
            continue
        if index >= len(images):
            raise StudioError(f"The held-out split has {len(images)} images; index {index} is beyond it.")
        return images[index], (targets[index] if targets is not None else None)
    raise StudioError(f"No held-out split of {trained.name!r} could be read here ({last}).", 404)


STYLIZE_MAX_SIZE = 256  # longest side of a picture stylised in the studio (the optimisation's cost grows with it)
STYLIZE_MAX_ITERATIONS = 300


def stylize(content: torch.Tensor, style: torch.Tensor, size: int = 128, iterations: int = 100) -> Picture:
    """Gatys et al. on an uploaded photo and style (uint8 [C, H, W]) with ``ganforge.stylize``'s defaults
    (L-BFGS, the offline random network): the picture content | style | result, and its losses."""
    from ..style_transfer import stylize as run

    if not 16 <= size <= STYLIZE_MAX_SIZE:
        raise StudioError(f"The size must be between 16 and {STYLIZE_MAX_SIZE} pixels, got {size}.")
    if not 1 <= iterations <= STYLIZE_MAX_ITERATIONS:
        raise StudioError(f"The iterations must be between 1 and {STYLIZE_MAX_ITERATIONS}, got {iterations}.")
    rgb = [x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x for x in (content, style)]
    result = run(rgb[0], [rgb[1]], size=size, iterations=iterations)
    out = result.image
    cells = [fit_cells([x], tuple(out.shape[-2:]), 3) for x in rgb] + [out[None]]
    grid, cols = column_images(cells)
    first, last = result.history[0]["total"], result.final.get("total", result.history[-1]["total"])
    info = {"size": list(out.shape[1:]), "iterations": len(result.history), "loss_start": round(first, 6),
            "loss_end": round(last, 6), "seconds": round(result.seconds, 2), "network": result.settings.network,
            "panels": cols, "command": f"ganforge stylize CONTENT STYLE --size {size} --iterations {iterations} "
                                       "--out OUT.png"}
    return Picture(png_bytes(grid_image(grid, cols, min_width=0)), info)
