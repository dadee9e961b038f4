"""Super-resolution (Ledig et al. 2017): ``srresnet`` (G on MSE) and ``srgan`` (SRResNet first, then the GAN).

Data: HR photos (a folder, ``mate-nature``, ``skimage-photos``, a published set such as DIV2K), random HR crops
of ``image_size`` (96) with LR inputs made by the protocol's bicubic (:mod:`ganforge.data.sr_photos`).
Evaluation (``ganforge eval RUN``): PSNR / SSIM on Y and two perceptual measures on whole held-out photos
(:mod:`ganforge.families.srgan_eval`). Command: ``ganforge upscale RUN image.png|folder --out DIR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..data.folders import IMAGE_EXTENSIONS, image_files, read_image_file
from ..data.sr_photos import SRPairs, center_crops, mod_crop, read_photos
from ..errors import GanforgeError
from ..io import write_json
from ..metrics.sr import bicubic_downscale, bicubic_upscale, psnr_y
from ..models.srgan import SCALES, SRGAN, SRRESNET
from ..pipelines.super_resolution import SuperResolutionPipeline
from ..tasks.srgan import SRGANTask
from ..threads import add_threads_option, applies_threads
from ..viz.sr import save_side_by_side
from .base import Family, FamilyCommand
from .srgan_eval import evaluate_sr

DEFAULT_CROP = 96  # the paper's HR crops


def _scale(cfg: TrainConfig) -> int:
    scale = cfg.model_options.get("scale", 4)
    if scale not in SCALES:
        raise GanforgeError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}.")
    return int(scale)


def sr_data(cfg: TrainConfig, split: str, augment: bool = True) -> SRPairs:
    """Random HR crops of ``data.image_size`` (default 96) with their bicubic LR inputs (see sr_photos)."""
    d = cfg.data
    if d.derive:
        raise GanforgeError(f"derive={d.derive} makes pairs for pix2pix; {cfg.model} makes its LR inputs from HR "
                            "photos itself (give a folder of photos).")
    if cfg.precision == "fp16" and cfg.model == "srgan":  # checked here: the one hook that sees the run's config
        raise GanforgeError("srgan cannot train with precision fp16: its D gets no gradients in the MSE stage, which "
                            "the fp16 gradient scaler refuses; use bf16 or fp32.")
    images, names = read_photos(d.name, d.root, split, d.load_size, d.channels or 3)
    return SRPairs(images, names, d.image_size or DEFAULT_CROP, _scale(cfg), bicubic_downscale,
                   flip=d.flip and augment, name=d.name)


def held_out_crops(cfg: TrainConfig, n: int, train_data: SRPairs, load) -> dict[str, Any]:
    """The centre crop (the training crop size) of each of the first ``n`` held-out photos large enough, with
    its LR input: {"A": LR uint8, "B": HR uint8, "split"}; the training photos when none is held out."""
    d, size = cfg.data, train_data.crop_size
    for split in ("test", "train"):
        try:
            images, _ = read_photos(d.name, d.root, split, d.load_size, train_data.channels)
        except GanforgeError:
            continue
        images = [im for im in images if min(im.shape[-2:]) >= size][:n]
        if images:
            hr = center_crops(images, size)
            return {"A": torch.stack([train_data.lr_of(x) for x in hr]), "B": hr, "split": split}
    raise GanforgeError(f"No photo of {d.name!r} is large enough for the sample pictures.")


# ---------------------------------------------------------------------------------------- ganforge upscale
def _read(path: Path) -> tuple[list[np.ndarray], list[str]]:
    if path.is_dir():
        files = image_files(path)
    elif path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise GanforgeError(f"{str(path)!r} is not an image file ({', '.join(IMAGE_EXTENSIONS)}).")
        files = [path]
    else:
        raise GanforgeError(f"{str(path)!r} is neither an image file nor a folder.")
    return [read_image_file(f).transpose(1, 2, 0) for f in files], [f.stem for f in files]


@applies_threads
def upscale_files(model: SuperResolutionPipeline, inputs: str | Path, out: str | Path, originals: bool = False,
                  figure_images: int = 4) -> dict[str, Any]:
    """Upscale the image file or folder ``inputs`` into ``out``/<name>.png with ``model``, and draw
    ``out``/comparison.png (bicubic | SRResNet | SRGAN | original when known, with a zoomed box) of the first
    ``figure_images``. ``originals``: the files are HR originals, each shrunk x scale (bicubic, after a mod-crop)
    before upscaling, so the figure and upscale.json can compare against them (PSNR on Y). Existing files
    are never overwritten. Returns what upscale.json records."""
    images, names = _read(Path(inputs).expanduser())
    out = Path(out).expanduser()
    stems = list(dict.fromkeys(names))
    if len(stems) != len(names):
        raise GanforgeError(f"Two inputs share the name {next(n for n in names if names.count(n) > 1)!r}; the "
                            "outputs would overwrite each other: rename one.")
    targets = [out / f"{s}.png" for s in names] + [out / "comparison.png", out / "upscale.json"]
    taken = [t for t in targets if t.exists()]
    if taken:
        raise GanforgeError(f"{str(taken[0])!r} already exists; upscale never overwrites a file, so choose another "
                            "--out or move it.")
    s = model.scale
    hr = [mod_crop(im, s) for im in images] if originals else None
    lr = [bicubic_downscale(im, s) for im in hr] if hr is not None else images
    methods = {w: model.upscale(lr, which=w) for w in model.networks()}
    own = "srgan" if "srgan" in methods else "srresnet"
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for name, image in zip(names, methods[own], strict=True):
        Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(out / f"{name}.png")
    record: dict[str, Any] = {"model": model.source, "step": model.step, "scale": s, "n": len(names),
                              "originals": originals, "out": str(out), "outputs": [f"{n}.png" for n in names]}
    rows = []
    for i in range(min(figure_images, len(names))):
        row = [("bicubic", bicubic_upscale(lr[i], s))] + [
            ("SRResNet" if w == "srresnet" else "SRGAN", methods[w][i]) for w in ("srresnet", "srgan") if w in methods]
        if hr is not None:
            row = [(f"{label} {psnr_y(im, hr[i], s):.2f} dB", im) for label, im in row] + [("original", hr[i])]
        rows.append(row)
    if hr is not None:
        record["psnr_y"] = {label: float(np.mean([psnr_y(im, h, s) for im, h in zip(ims, hr, strict=True)]))
                            for label, ims in [("bicubic", [bicubic_upscale(x, s) for x in lr]),
                                               *methods.items()]}
    title = f"x{s}: {', '.join(names[:figure_images])}" + (" (shrunk from the originals)" if originals else "")
    record["comparison"] = str(save_side_by_side(rows, out / "comparison.png", title=title))
    write_json(out / "upscale.json", record)
    return record


def _upscale_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="an srgan / srresnet run folder or checkpoint")
    p.add_argument("inputs", help="an image file or a folder of images (the LR inputs)")
    p.add_argument("--out", required=True, help="folder for <name>.png, comparison.png and upscale.json (new files "
                                                "only: nothing is overwritten)")
    p.add_argument("--ckpt", default="latest", help="latest | best | a step number (default latest)")
    p.add_argument("--originals", action="store_true",
                   help="the inputs are HR originals: shrink each x scale (bicubic) first and compare against it")
    p.add_argument("--figure-images", type=int, default=4, help="images in comparison.png (default 4)")
    p.add_argument("--device", default="auto")
    add_threads_option(p)


def _upscale_run(args: argparse.Namespace) -> int:
    from . import family_of, load

    model = load(args.run, args.ckpt, args.device)
    if family_of(model).name != FAMILY.name:
        raise GanforgeError(f"{str(args.run)!r} is a {model.name} model; upscale needs an srgan or srresnet run.")
    if args.figure_images < 1:
        raise GanforgeError(f"--figure-images must be at least 1, got {args.figure_images}.")
    record = upscale_files(model, args.inputs, args.out, originals=args.originals,
                           figure_images=args.figure_images, threads=args.threads)
    print(json.dumps({k: record[k] for k in ("n", "scale", "out", "comparison") if k in record}
                     | ({"psnr_y": record["psnr_y"]} if "psnr_y" in record else {})))
    return 0


UPSCALE = FamilyCommand(
    "upscale", "upscale images with an srgan / srresnet run (and draw bicubic | SRResNet | SRGAN side by side)",
    _upscale_arguments, _upscale_run,
    epilog="examples:\n  ganforge upscale runs/sr photo.png --out up\n"
           "  ganforge upscale runs/sr photos/ --out up --originals   # shrink x scale first, compare to the originals")

FAMILY = Family(
    name="srgan",
    models=(SRRESNET, SRGAN),
    task=SRGANTask,
    pipeline=SuperResolutionPipeline,
    offers=frozenset({"export", "upscale"}),
    load_data=sr_data,
    held_out=held_out_crops,
    description="super-resolution: SRResNet (MSE) and SRGAN (content + adversarial), x2 / x4 / x8",
    commands=(UPSCALE,),
    evaluate=evaluate_sr,
)
