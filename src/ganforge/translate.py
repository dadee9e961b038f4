"""Image-to-image translation with a trained generator: a ganforge pix2pix run or a reference checkpoint.

    from ganforge.translate import load_translator, translate_folder
    t = load_translator("runs/edges2fashion")                      # or from_reference="latest_net_G.pth"
    out = t(images)                                                  # uint8 [N, C, H, W] -> uint8 [N, C', H, W]
    translate_folder(t, "photos/", "out/")                           # one output PNG per input file

Sizes: a U-Net with d downsamplings takes sides that are multiples of 2^d (256 for unet_256). Other
sizes are padded by reflection up to the next multiple and the output is cropped back to the input's
size (edge replication where an image is smaller than the padding); ``size`` resizes inputs to
size x size first (bicubic) and the outputs back to the input's size. Images are not tiled: a large
image runs whole, so its memory grows with its area.

Modes: ``auto`` (default) picks ``reference`` for reference checkpoints and runs trained with batch
size 1, ``eval`` for runs trained with larger batches. ``reference`` matches the reference
implementation's test.py without --eval: dropout on, batch norm on the statistics of the image itself
(each image is run on its own, as with its batch size 1); the dropout noise comes from ``seed``.
``eval`` uses the running statistics and no dropout, and batches images of the same size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import GanforgeError
from .tasks.pix2pix import INFERENCE_MODES, inference_mode, paired_grid


@dataclass
class Translator:
    """A generator ready for translation: uint8 images in, uint8 images out."""

    G: nn.Module
    input_nc: int
    output_nc: int
    multiple: int  # sides must be multiples of this (2 ** downsamplings)
    mode: str = "reference"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    source: dict[str, Any] = field(default_factory=dict)  # what was loaded (recorded with the outputs)
    seed: int = 0

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise GanforgeError(f"Images to translate must be uint8 [N, C, H, W], got {images.dtype} "
                                f"{list(images.shape)}.")
        from .data import convert_images

        return convert_images(images, None, self.input_nc).float().div(127.5).sub(1.0)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        y = self.G(x.to(self.device))
        if ph or pw:
            y = y[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return ((y.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, size: int | None = None, batch_size: int = 16) -> torch.Tensor:
        """uint8 [N, C, H, W] -> uint8 [N, output_nc, H, W] (see the module docstring for sizes and modes)."""
        x = self._prepare(images)
        h, w = x.shape[-2:]
        if size is not None:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
        step = 1 if self.mode == "reference" else batch_size
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            with inference_mode(self.G, self.mode):
                out = torch.cat([self._run(x[i:i + step]) for i in range(0, x.shape[0], step)])
        if size is not None and (h, w) != (size, size):
            out = F.interpolate(out.float(), size=(h, w), mode="bicubic", align_corners=False)
            out = out.round().clamp(0, 255).to(torch.uint8)
        return out


def load_translator(source: str | Path | None = None, *, ckpt: str = "latest", from_reference: str | Path | None = None,
                    netG: str = "unet_256", norm: str = "batch", input_nc: int = 3, output_nc: int = 3,
                    ngf: int = 64, dropout: float = 0.5, mode: str = "auto", device: str = "cpu",
                    seed: int = 0) -> Translator:
    """A Translator from a ganforge run / checkpoint folder, or from a reference ``latest_net_G.pth``.

    ``mode="auto"``: ``reference`` for reference checkpoints and runs trained with batch size 1 (where
    each image's own statistics are what training used), ``eval`` for runs trained with larger batches
    (whose running statistics match training better than one image's)."""
    from .api import load, resolve_device
    from .tasks.pix2pix import default_inference_mode

    if mode not in INFERENCE_MODES + ("auto",):
        raise GanforgeError(f"Unknown mode {mode!r}; choose one of: auto, {', '.join(INFERENCE_MODES)}.")
    dev = resolve_device(device)
    if from_reference is not None:
        from .models.pix2pix import generator_from_reference

        G = generator_from_reference(from_reference, netG=netG, norm=norm, input_nc=input_nc, output_nc=output_nc,
                                     dropout=dropout, ngf=ngf)
        info = {"from_reference": str(from_reference), "netG": netG, "norm": norm, "input_nc": input_nc,
                "output_nc": output_nc, "ngf": ngf, "dropout": dropout}
        mode = "reference" if mode == "auto" else mode
    else:
        if source is None:
            raise GanforgeError("Give a run folder or checkpoint to translate with, or --from-reference FILE.pth.")
        model = load(source, ckpt, device)
        if getattr(model.task, "samples_from_noise", True):
            raise GanforgeError(f"{str(source)!r} is a {model.name} model, which samples from noise; translate needs "
                                "an image-to-image model such as pix2pix (use ganforge sample for this one).")
        G = model.nets[model.task.sample_net]
        mode = default_inference_mode(model.config.batch_size) if mode == "auto" else mode
        info = {"run": str(source), "checkpoint": str(model.path), "step": model.step, "model": model.name,
                "model_options": model.meta.get("model_options")}
    G = G.to(dev)
    downs = getattr(G, "num_downs", 0)
    return Translator(G, G.input_nc, G.output_nc, 2**downs, mode, dev, {**info, "mode": mode, "seed": seed}, seed)


def _save_png(image: torch.Tensor, path: Path) -> None:
    from PIL import Image

    from .viz import save_image_atomic

    arr = image.permute(1, 2, 0).numpy()
    save_image_atomic(Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr), path)


def _comparison(inputs: list[torch.Tensor], outputs: list[torch.Tensor], targets: list[torch.Tensor] | None,
                path: Path, n: int = 16) -> Path | None:
    """input | output | target rows for the first ``n`` images that share the first image's size."""
    from .viz import save_grid

    shape = inputs[0].shape[-2:]
    keep = [i for i in range(len(inputs)) if inputs[i].shape[-2:] == shape][:n]
    if not keep:
        return None
    a = torch.stack([inputs[i] for i in keep])
    o = torch.stack([outputs[i] for i in keep])
    b = torch.stack([targets[i] for i in keep]) if targets is not None else None
    images, per_row = paired_grid(a, o, b, groups=2 if len(keep) >= 8 and shape[-1] <= 64 else 1)
    return save_grid(images, path, nrow=per_row, min_width=min(960, 3 * per_row * shape[-1]))


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
    from .metrics.paired import paired_metrics

    if outputs.shape != targets.shape:
        raise GanforgeError(f"Outputs {list(outputs.shape)} and targets {list(targets.shape)} differ in shape.")
    scores: dict[str, Any] = {"n": int(outputs.shape[0]), **paired_metrics(outputs.numpy(), targets.numpy()),
                              "sharpness": sharpness(outputs) / max(sharpness(targets), 1e-12)}
    if fid and outputs.shape[0] >= 2:
        from .metrics.evaluation import batches_from_array, default_extractor, extract, get_extractor
        from .metrics.fid import fid_from_features

        name = extractor or default_extractor(outputs.shape[1], outputs.shape[-1])
        try:
            ex = get_extractor(name, None, device)
            f_out = extract(batches_from_array(outputs, 200), ex)
            f_tgt = extract(batches_from_array(targets, 200), ex)
            scores["fid"] = float(fid_from_features(f_tgt.features, f_out.features))
            scores["fid_extractor"] = ex.protocol()
        except GanforgeError as e:
            scores["fid"] = None
            scores["fid_unavailable"] = str(e)
    return scores


def translate_images(translator: Translator, inputs: list[torch.Tensor], names: list[str], out: str | Path,
                     targets: list[torch.Tensor] | None = None, size: int | None = None,
                     fid: bool = True) -> dict[str, Any]:
    """Translate images (each uint8 [C, H, W]) into ``out``/<name>.png; with targets also write
    comparison.png and scores. Writes translate.json (what ran, and the scores) and returns it."""
    if not inputs:
        raise GanforgeError("No images to translate.")
    if size is not None and size < 1:
        raise GanforgeError(f"--size must be a positive number of pixels, got {size}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outputs: list[torch.Tensor] = []
    i = 0
    while i < len(inputs):  # consecutive images of one size go through together
        j = i
        while j < len(inputs) and inputs[j].shape == inputs[i].shape and j - i < 64:
            j += 1
        outputs.extend(translator(torch.stack(inputs[i:j]), size=size))
        i = j
    used: set[str] = set()
    for name, image in zip(names, outputs, strict=True):
        stem = Path(name).stem or "image"
        base, k = stem, 1
        while stem in used:
            k += 1
            stem = f"{base}_{k}"
        used.add(stem)
        _save_png(image, out / f"{stem}.png")
    record: dict[str, Any] = {"translator": translator.source, "n": len(outputs), "size": size, "out": str(out)}
    if targets is not None:
        same = all(t.shape[-2:] == o.shape[-2:] for t, o in zip(targets, outputs, strict=True))
        if same and len({tuple(o.shape) for o in outputs}) == 1:
            c = max(outputs[0].shape[0], targets[0].shape[0])
            o = torch.stack([x.expand(c, -1, -1) for x in outputs])
            t = torch.stack([x.expand(c, -1, -1) for x in targets])
            record["scores"] = paired_scores(o, t, fid=fid, device=str(translator.device))
    comp = _comparison(inputs, outputs, targets, out / "comparison.png")
    if comp is not None:
        record["comparison"] = str(comp)
    tmp = out / "translate.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, out / "translate.json")
    return record


def read_inputs(path: str | Path, aligned: bool = False, direction: str = "AtoB"
                ) -> tuple[list[torch.Tensor], list[str], list[torch.Tensor] | None]:
    """(images, names, targets or None) from an image file or a folder (recursively, sorted).

    ``aligned``: each file holds A|B side by side (the published pix2pix datasets' format); the input is
    A (B with direction BtoA) and the other half the target."""
    from .data.folders import IMAGE_EXTENSIONS, list_images, read_image

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
        t = torch.from_numpy(np.ascontiguousarray(a))
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
        raise GanforgeError(f"None of the image files in {str(path)!r} could be read.")
    if bad:
        import warnings

        warnings.warn(f"Skipped {len(bad)} unreadable image files: {', '.join(bad[:5])}", stacklevel=2)
    return images, names, (targets if aligned else None)


def paired_split(source: str, split: str = "test", root: str | None = None, direction: str = "AtoB",
                 derive: str | None = None, size: int = 256, n: int | None = None
                 ) -> tuple[list[torch.Tensor], list[str], list[torch.Tensor]]:
    """Inputs, names and targets of a paired dataset split at ``size`` x ``size`` (no crop, no flip)."""
    from .data.paired import load_paired

    data = load_paired(source, root, split, direction=direction, load_size=size, crop_size=size, flip=False,
                       derive=derive)
    k = len(data) if n is None else min(n, len(data))
    return list(data.A[:k]), list(data.names[:k]), list(data.B[:k])


__all__ = ["Translator", "load_translator", "paired_scores", "paired_split", "read_inputs", "translate_images"]
