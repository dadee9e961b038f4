"""Image-to-image translation of files, folders and held-out splits, with pictures and scores.

    import ganforge
    from ganforge.translation import load_translator, translate_images
    t = load_translator("runs/edges2fashion")                      # or from_reference="latest_net_G.pth"
    out = t(images)                                                  # uint8 [N, C, H, W] -> uint8 [N, C', H, W]

``load_translator`` returns the model's inference object (:class:`ganforge.TranslationPipeline`), which
owns sizes (reflection padding to multiples of 2^downs) and modes; see ``ganforge.pipelines.translation``.
Modes: ``auto`` (default) picks ``reference`` for reference checkpoints and runs trained with batch
size 1, ``eval`` for runs trained with larger batches; ``reference`` and ``eval`` force one.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data.folders import IMAGE_EXTENSIONS, list_images, read_image
from .data.paired import paired_split
from .errors import GanforgeError
from .families import family_of, import_reference, load
from .io import skipped_message, write_json
from .metrics.evaluation import batches_from_array, default_extractor, extract, get_extractor
from .metrics.fid import fid_from_features
from .metrics.paired import paired_metrics
from .pipelines import TranslationPipeline, resolve_device
from .pipelines.translation import INFERENCE_MODES
from .threads import applies_threads
from .viz import save_image_atomic
from .viz.columns import fit_cells, save_column_grid


def load_translator(source: str | Path | None = None, *, ckpt: str = "latest", from_reference: str | Path | None = None,
                    from_reference_B: str | Path | None = None, netG: str | None = None, norm: str | None = None,
                    input_nc: int | None = None, output_nc: int | None = None, ngf: int | None = None,
                    dropout: float = 0.5, mode: str = "auto", device: str = "cpu", seed: int = 0,
                    direction: str | None = None) -> TranslationPipeline:
    """The inference object of a ganforge run / checkpoint folder, or of reference generator files.

    Reference files: a pix2pix ``latest_net_G.pth`` (defaults netG unet_256, batch norm, 3 -> 3 channels,
    ngf 64), or CycleGAN generators (defaults resnet_9blocks, instance norm, channels and ngf read from the
    weights): ``latest_net_G_A.pth`` (its sibling ``latest_net_G_B.pth`` is loaded too when it is there),
    ``latest_net_G_B.pth`` alone, or ``from_reference_B``; a resnet netG also makes a CycleGAN pipeline.
    ``direction`` (CycleGAN: AtoB = G_A, BtoA = G_B) sets the pipeline's direction.

    ``mode="auto"``: ``reference`` for reference checkpoints and the run's own default otherwise
    (reference for batch-1 runs, whose training used each image's own statistics; eval for larger
    batches, whose running statistics match training better than one image's)."""
    if mode not in INFERENCE_MODES + ("auto",):
        raise GanforgeError(f"Unknown mode {mode!r}; choose one of: auto, {', '.join(INFERENCE_MODES)}.")
    dev = resolve_device(device)
    if from_reference is not None or from_reference_B is not None:
        options = {"netG": netG, "norm": norm, "input_nc": input_nc, "output_nc": output_nc, "ngf": ngf,
                   "dropout": dropout}
        pipe = import_reference(from_reference, from_reference_B, options, "reference" if mode == "auto" else mode,
                                dev, seed, verb="translate")
    else:
        if source is None:
            raise GanforgeError("Give a run folder or checkpoint to translate with, or --from-reference FILE.pth.")
        pipe = load(source, ckpt, dev)
        family = family_of(pipe)
        if not family.can("translate"):
            what = "samples from noise" if family.can("sample") or family.can("points") else "does not translate images"
            raise GanforgeError(f"{str(source)!r} is a {pipe.name} model, which {what}; translate needs an "
                                "image-to-image model such as pix2pix (use ganforge sample for GANs that sample from "
                                "noise).")
        pipe.mode = pipe.mode if mode == "auto" else mode
        pipe.seed = seed
        pipe.record = {"run": str(source), "checkpoint": str(pipe.path), "step": pipe.step, "model": pipe.name,
                       "model_options": pipe.meta.get("model_options")}
    if direction is not None and family_of(pipe).can("cycle"):
        pipe.direction = direction
    return pipe


def _record(translator: TranslationPipeline) -> dict[str, Any]:
    return {**translator.record, **translator.settings_record()}


def _save_png(image: torch.Tensor, path: Path) -> None:
    arr = image.permute(1, 2, 0).numpy()
    save_image_atomic(Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr), path)


def _comparison(inputs: list[torch.Tensor], outputs: list[torch.Tensor], targets: list[torch.Tensor] | None,
                path: Path, n: int = 16, reconstructions: list[torch.Tensor] | None = None) -> Path:
    """input | output (| reconstruction) (| target) rows under column headers for the first ``n`` images:
    images of other sizes or channels are fitted into the first output's cell (aspect ratio kept)."""
    k = min(n, len(inputs))
    parts = [inputs[:k], outputs[:k]] + ([reconstructions[:k]] if reconstructions is not None else []) \
        + ([targets[:k]] if targets is not None else [])
    headers = ["input", "output"] + (["reconstruction"] if reconstructions is not None else []) \
        + (["target"] if targets is not None else [])
    cell = tuple(outputs[0].shape[-2:])
    if max(cell) > 256:  # a preview: big images are shown at most 256 pixels on a side
        cell = tuple(max(1, round(x * 256 / max(cell))) for x in cell)
    channels = max(x.shape[0] for part in parts for x in part)
    columns = [fit_cells(part, cell, channels) for part in parts]
    title = f"the first {k} of {len(inputs)} images" if len(inputs) > k else None
    return save_column_grid(columns, path, headers, min_width=min(960, 3 * len(columns) * cell[-1]), title=title)


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute difference between neighbouring pixels (horizontal and vertical) of uint8 images:
    blur lowers it; ``sharpness`` in :func:`paired_scores` is the outputs' value over the targets'."""
    x = images.float()
    return float(((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()) / 2)


def paired_scores(outputs: torch.Tensor, targets: torch.Tensor, fid: bool = True,
                  extractor: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """L1 (in 0..255), PSNR, SSIM of outputs against targets (uint8 [N, C, H, W]), sharpness (the outputs'
    mean neighbouring-pixel difference over the targets': below 1 is blurrier than the targets) and, when
    an extractor is usable here, FID between the outputs and the targets (fmnist for small gray images)."""
    if outputs.shape != targets.shape:
        raise GanforgeError(f"Outputs {list(outputs.shape)} and targets {list(targets.shape)} differ in shape.")
    scores: dict[str, Any] = {"n": int(outputs.shape[0]), **paired_metrics(outputs.numpy(), targets.numpy()),
                              "sharpness": sharpness(outputs) / max(sharpness(targets), 1e-12)}
    if fid and outputs.shape[0] >= 2:
        name = extractor or default_extractor(outputs.shape[1], outputs.shape[-1])
        try:
            ex = get_extractor(name, None, device)
            f_out = extract(batches_from_array(outputs, 200), ex)
            f_tgt = extract(batches_from_array(targets, 200), ex)
            scores["fid"] = float(fid_from_features(f_tgt.features, f_out.features, warn=False))
            if outputs.shape[0] <= f_out.features.shape[1]:  # a covariance of rank < D: said in the record
                scores["fid_reliable"] = False
            scores["fid_extractor"] = ex.protocol()
        except GanforgeError as e:
            scores["fid"] = None
            scores["fid_unavailable"] = str(e)
    return scores


def translate_images(translator: TranslationPipeline, inputs: list[torch.Tensor], names: list[str], out: str | Path,
                     targets: list[torch.Tensor] | None = None, size: int | None = None,
                     fid: bool = True, progress: bool = False, available: int | None = None) -> dict[str, Any]:
    """Translate images (each uint8 [C, H, W]) into ``out``/<name>.png and write comparison.png (input | output
    | target); with targets also scores. A CycleGAN pipeline holding both generators also maps each output
    back (the reconstruction column, and "cycle": L1 / PSNR / SSIM of the reconstructions against the inputs).
    Writes translate.json (what ran, and the scores) and returns it. ``progress``: a progress bar on
    stderr; ``available``: how many images the split held (recorded beside "n")."""
    if not inputs:
        raise GanforgeError("No images to translate.")
    if size is not None and size < 1:
        raise GanforgeError(f"--size must be a positive number of pixels, got {size}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outputs: list[torch.Tensor] = []
    cycle = family_of(translator).can("cycle") and translator.has_inverse
    reconstructions: list[torch.Tensor] | None = [] if cycle else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(inputs), desc="translating", unit="img", leave=False, mininterval=1.0)
    i = 0
    while i < len(inputs):  # consecutive images of one size go through together
        j = i
        while j < len(inputs) and inputs[j].shape == inputs[i].shape and j - i < 64:
            j += 1
        if reconstructions is not None:  # CycleGAN: translated, then mapped back by the other generator
            o, r = translator.cycle(torch.stack(inputs[i:j]), size=size)
            outputs.extend(o)
            reconstructions.extend(r)
        else:
            outputs.extend(translator(torch.stack(inputs[i:j]), size=size))
        if bar is not None:
            bar.update(j - i)
        i = j
    if bar is not None:
        bar.close()
    used: set[str] = set()
    for name, image in zip(names, outputs, strict=True):
        stem = Path(name).stem or "image"
        base, k = stem, 1
        while stem in used:
            k += 1
            stem = f"{base}_{k}"
        used.add(stem)
        _save_png(image, out / f"{stem}.png")
    record: dict[str, Any] = {"translator": _record(translator), "n": len(outputs), "size": size, "out": str(out)}
    if available is not None:
        record["available"] = available
    if targets is not None:
        same = all(t.shape[-2:] == o.shape[-2:] for t, o in zip(targets, outputs, strict=True))
        if same and len({tuple(o.shape) for o in outputs}) == 1:
            c = max(outputs[0].shape[0], targets[0].shape[0])
            o = torch.stack([x.expand(c, -1, -1) for x in outputs])
            t = torch.stack([x.expand(c, -1, -1) for x in targets])
            record["scores"] = paired_scores(o, t, fid=fid, device=str(translator.device))
    if reconstructions is not None and len({tuple(x.shape[-2:]) for x in inputs}) == 1:
        c = max(reconstructions[0].shape[0], inputs[0].shape[0])
        rec = torch.stack([t.expand(c, -1, -1) for t in reconstructions])
        given = torch.stack([t.expand(c, -1, -1) for t in inputs])
        record["cycle"] = paired_metrics(rec.numpy(), given.numpy())  # reconstruction against the input
    record["comparison"] = str(_comparison(inputs, outputs, targets, out / "comparison.png",
                                           reconstructions=reconstructions))
    write_json(out / "translate.json", record)
    return record


def read_inputs(path: str | Path, aligned: bool = False, direction: str = "AtoB"
                ) -> tuple[list[torch.Tensor], list[str], list[torch.Tensor] | None]:
    """(images, names, targets or None) from an image file or a folder (recursively, sorted).

    ``aligned``: each file holds A|B side by side (the published pix2pix datasets' format); the input is
    A (B with direction BtoA) and the other half the target."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise GanforgeError(f"{str(path)!r} is not an image file ({', '.join(IMAGE_EXTENSIONS)}).")
        files = [path]
    elif path.is_dir():
        files = list_images(path)[0]
        if not files:
            raise GanforgeError(f"No image files found in {str(path)!r}.")
    else:
        raise GanforgeError(f"Input {str(path)!r} is neither an image file nor a folder.")
    images, names, targets, bad = [], [], [], []
    for f in files:
        a = read_image(f)
        if a is None:
            bad.append(f.name)
            continue
        t = torch.from_numpy(np.array(a))  # a writable copy
        if aligned:
            w = t.shape[-1]
            if w % 2:
                raise GanforgeError(f"{f.name} is {w} pixels wide; an aligned A|B image needs an even width.")
            left, right = t[..., : w // 2], t[..., w // 2:]
            t, tgt = (left, right) if direction == "AtoB" else (right, left)
            targets.append(tgt.contiguous())
        images.append(t.contiguous())
        names.append(str(f.relative_to(path)) if path.is_dir() else f.name)
    if not images:
        if path.is_file():
            raise GanforgeError(f"{str(path)!r} could not be read as an image (a damaged file, or a format Pillow "
                                "does not read).")
        raise GanforgeError(f"None of the image files in {str(path)!r} could be read.")
    if bad:
        warnings.warn(skipped_message(bad, path), stacklevel=2)
    return images, names, (targets if aligned else None)


SPLIT_N = 500  # pairs of a split translated when no count is given (n="all": every pair)


@applies_threads
def translate(source: str | Path | None = None, inputs: str | Path | None = None, out: str | Path = "translated",
              *, split: str | None = None, data: str | None = None, derive: str | None = None,
              direction: str | None = None, aligned: bool = False, n: int | str | None = None,
              size: int | None = None, mode: str = "auto", seed: int = 0, fid: bool = True, ckpt: str = "latest",
              device: str = "cpu", from_reference: str | Path | None = None,
              from_reference_B: str | Path | None = None, netG: str | None = None, norm: str | None = None,
              input_nc: int | None = None, output_nc: int | None = None, ngf: int | None = None,
              dropout: float = 0.5, progress: bool = False) -> dict[str, Any]:
    """``ganforge translate`` as one call: translate an image file or folder (``inputs``), or the first ``n``
    pairs of a held-out ``split`` (default SPLIT_N; ``n="all"``: every pair) of the run's data or of
    ``data``, with a run / checkpoint (``source``) or reference generator files; write one PNG per input,
    comparison.png and translate.json into ``out``, and return the record (with "available": the pairs
    the split holds). The other arguments are :func:`load_translator`'s and :func:`translate_images`'s."""
    if inputs is not None and split:
        raise GanforgeError("Give either an input file/folder or --split, not both.")
    if n == "all":
        n = None
    elif n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise GanforgeError(f"--n must be a positive integer or all, got {n!r}.")
    elif n is None and split:
        n = SPLIT_N
    if size is not None and size < 1:
        raise GanforgeError(f"--size must be a positive integer, got {size}.")
    t = load_translator(source, ckpt=ckpt, from_reference=from_reference, from_reference_B=from_reference_B,
                        netG=netG, norm=norm, input_nc=input_nc, output_nc=output_nc, ngf=ngf, dropout=dropout,
                        mode=mode, device=device, seed=seed, direction=direction)
    family = family_of(t)
    two_way = family.can("cycle")  # its direction picks the generator, not a half of the data
    available = None
    if inputs is not None:
        images, names, targets = read_inputs(inputs, aligned, t.direction if two_way else direction or "AtoB")
        if n is not None:
            images, names = images[:n], names[:n]
            targets = targets[:n] if targets is not None else None
    else:
        if not split:
            raise GanforgeError("Give an input image file or folder, or --split test to translate held-out pairs.")
        trained = t.data_config() if source is not None else None
        own = trained is not None and data is None  # the run's own data and its settings
        data = data or (trained.name if trained else None)
        if data is None:
            raise GanforgeError("--split needs --data NAME|DIR with --from-reference.")
        net_size = t.model_cfg.image_size if source is not None else None
        images, names, targets, available = family.read_split(
            data, split, trained.root if own else None, trained.direction if own else "AtoB",
            t.direction if two_way else (direction or (trained.direction if trained else "AtoB")),
            derive if derive is not None else (trained.derive if own else None), size or net_size or 256, n,
            with_total=True)
    record = translate_images(t, images, names, out, targets, size=size if inputs is not None else None, fid=fid,
                              progress=progress, available=available)
    return record


__all__ = ["SPLIT_N", "load_translator", "paired_scores", "paired_split", "read_inputs", "translate",
           "translate_images"]
