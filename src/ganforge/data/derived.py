"""Pairs made from single images, so pix2pix can be trained offline: A is computed from the target B.

Derivations (:data:`DERIVATIONS`; each maps uint8 [N, C, H, W] images B to inputs A of the same H, W):

=============  ======================================================================================
edges          Canny edges (skimage.feature.canny, sigma 1) of the luma: black edges on white, 1 channel
               (what edges2shoes / edges2handbags inputs look like)
softedges      HED-like soft edges: Sobel gradient magnitude of the Gaussian-smoothed luma, scaled by
               each image's maximum and inverted (dark soft lines on white), 1 channel
gray2color     A = luma of B (ITU-R 601), 1 channel; needs colour B (colourisation)
lowres2/4      super-resolution x2 / x4: B averaged over 2x2 / 4x4 blocks, then bicubic upsampling back
               to H x W (so A and B have equal sizes), B's channels
inpaint        B with 1 to 3 random rectangles (each side 1/8 to 1/2 of the image) set to gray 127,
               the rectangles drawn from (seed 0, image index)
noise          denoising: B plus Gaussian noise of sigma 25 pixel levels (as DnCNN, Zhang et al. 2017),
noise15/50     rounded and clipped to 0..255; the noise is drawn from (seed 0, a hash of the image), so
               an image always gets the same noise, wherever it stands; sigma 15 / 50 for noise15 / 50
=============  ======================================================================================

Image sources:

* ``fashion``: Fashion-MNIST (``load_dataset("fashion-mnist", root, split)``, splits train / test), the
  28x28 garments padded with black to 32x32 so U-Nets fit (for another crop size c the garment is
  resized to round(c * 7 / 8); at the stored size S > c only the black border grows);
* ``photos``: random square crops (load_size, default 64) from the colour photos bundled with
  scikit-image (astronaut, chelsea, coffee, rocket), scikit-learn (china, flower) and matplotlib
  (grace_hopper), each first scaled so its shorter side is 4x the crop size (never enlarged beyond
  what a crop needs); 200 crops of the stored size per photo from a fixed seed. Split train =
  astronaut, chelsea, rocket, china, grace_hopper; split test = crops of the held-out photos coffee and
  flower (no photo is in both).
  Grayscale photos (camera, ...) are left out so every target has colour.

Registered names in ``PAIRED_DATASETS`` are ``<derivation>-<source>`` for every pair that makes sense
(edges-fashion, softedges-fashion, lowres2-fashion, lowres4-fashion, inpaint-fashion, noise-fashion,
noise15-fashion, noise50-fashion, and the same with -photos, plus gray2color-photos; gray2color-fashion
is left out because Fashion-MNIST has no colour), plus pix2pix-style aliases for the edge maps:
``edges2fashion``, ``softedges2fashion``, ``edges2photos``, ``softedges2photos``.
``load_paired(source, derive=<derivation>)`` applies a derivation to any image dataset in
``ganforge.data.DATASETS`` (at its own size) or a folder of images (square crops, default 64; the
folder's ``train``/``val``/``test`` subfolder when it has split subfolders, else the whole folder for
every split).

Derivations are deterministic functions of the images; results are kept in a small in-memory cache keyed
by the derivation and a hash of the images (edges for the 60k Fashion-MNIST training images take about
10 s on 2 cores, the others under 2 s).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import GanforgeError
from ..io import warn_skipped
from ..registry import Registry
from . import DATASETS, LUMA, load_dataset
from .folders import list_images, read_image, resize_square
from .pairs import PAIRED_DATASETS, PairedSource, SizeRule, split_folder

INPAINT_FILL = 127
FASHION_SIZE = 32
PHOTO_SIZE = 64
PHOTO_CROPS = 200
PHOTOS_TRAIN = ("astronaut", "chelsea", "rocket", "china", "grace_hopper")
PHOTOS_TEST = ("coffee", "flower")

Images = torch.Tensor | np.ndarray


def _as_tensor(images: Images) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.dim() != 4 or x.dtype != torch.uint8 or x.shape[1] not in (1, 3):
        raise GanforgeError(f"Expected uint8 images [N, C, H, W] with C = 1 or 3, got {x.dtype} "
                            f"{tuple(x.shape)}.")
    return x


def _like(result: torch.Tensor, images: Images) -> Images:
    """Return ``result`` as numpy when the input was numpy."""
    return result.numpy() if isinstance(images, np.ndarray) else result


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, 1, H, W] luma in 0..255 (the channel itself when C == 1)."""
    if x.shape[1] == 1:
        return x.float()
    return (x.float() * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def grayscale(images: Images) -> Images:
    """uint8 [N, C, H, W] -> uint8 [N, 1, H, W]: ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), rounded."""
    return _like(_to_uint8(_luma(_as_tensor(images))), images)


def edges(images: Images, method: str = "canny", sigma: float = 1.0) -> Images:
    """uint8 [N, C, H, W] -> uint8 [N, 1, H, W] edge maps of the luma: dark edges (0) on white (255).

    ``canny``: skimage.feature.canny per image (Gaussian ``sigma``, hysteresis thresholds 0.1 / 0.2 of
    the gradient of the 0..1 image, border pixels replicated), binary. ``soft``: Sobel gradient
    magnitude of the luma smoothed by a Gaussian of ``sigma`` (truncated at round(3 sigma) pixels;
    replicated borders), divided by the
    image's largest magnitude and inverted: 255 * (1 - m / max m), so a flat image stays white.
    """
    x = _as_tensor(images)
    if method == "canny":
        try:
            from skimage.feature import canny
        except ImportError:
            raise GanforgeError("Canny edges need scikit-image; install it with: pip install scikit-image.") from None
        luma = (_luma(x) / 255).numpy()
        out = np.full((x.shape[0], 1, *x.shape[2:]), 255, dtype=np.uint8)
        for i in range(x.shape[0]):
            found = canny(luma[i, 0], sigma=sigma, low_threshold=0.1, high_threshold=0.2, mode="nearest")
            out[i, 0][found] = 0
        return _like(torch.from_numpy(out), images)
    if method == "soft":
        return _like(_soft_edges(x, sigma), images)
    raise GanforgeError(f"Unknown edge method {method!r}; choose 'canny' or 'soft'.")


def _soft_edges(x: torch.Tensor, sigma: float) -> torch.Tensor:
    # Filters as sums of shifted slices: torch's conv2d on one channel is very slow on CPU.
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = (g / g.sum()).tolist()
    h, w = x.shape[-2:]
    out = []
    for chunk in x.split(4096):
        y = F.pad(_luma(chunk) / 255, (radius, radius, radius, radius), mode="replicate")
        y = sum(g[k] * y[..., :, k:k + w] for k in range(2 * radius + 1))
        y = sum(g[k] * y[..., k:k + h, :] for k in range(2 * radius + 1))
        y = F.pad(y, (1, 1, 1, 1), mode="replicate")  # [n, 1, h + 2, w + 2]
        dx = y[..., :, 2:] - y[..., :, :-2]  # [n, 1, h + 2, w]
        dy = y[..., 2:, :] - y[..., :-2, :]  # [n, 1, h, w + 2]
        gx = dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]
        gy = dy[..., :, :-2] + 2 * dy[..., :, 1:-1] + dy[..., :, 2:]
        m = torch.sqrt(gx * gx + gy * gy)
        top = m.amax(dim=(1, 2, 3), keepdim=True)
        m = torch.where(top > 1e-6, m / top.clamp_min(1e-6), torch.zeros_like(m))
        out.append(_to_uint8(255 * (1 - m)))
    return torch.cat(out) if out else torch.full((0, 1, h, w), 255, dtype=torch.uint8)


def lowres(images: Images, factor: int, upsample: str = "bicubic") -> Images:
    """Super-resolution inputs: uint8 [N, C, H, W] -> uint8 [N, C, H, W].

    Downsample by ``factor`` (2 or 4) with a box filter (the mean of each factor x factor block; adaptive
    average pooling to ceil(H / factor) x ceil(W / factor) when H or W is not a multiple), then upsample
    back to H x W with
    ``upsample`` = ``bicubic`` (default, align_corners=False, clamped to 0..255) or ``nearest``.
    """
    if factor not in (2, 4):
        raise GanforgeError(f"lowres factor must be 2 or 4, not {factor!r}.")
    if upsample not in ("bicubic", "nearest"):
        raise GanforgeError(f"Unknown upsampling {upsample!r}; choose 'bicubic' or 'nearest'.")
    x = _as_tensor(images)
    h, w = x.shape[-2:]
    small = (-(-h // factor), -(-w // factor))
    out = []
    for chunk in x.split(4096):
        y = F.adaptive_avg_pool2d(chunk.float(), small)
        y = F.interpolate(y, size=(h, w), mode=upsample, **({"align_corners": False} if upsample == "bicubic" else {}))
        out.append(_to_uint8(y))
    return _like(torch.cat(out) if out else x.clone(), images)


def inpaint_masks(n: int, height: int, width: int, seed: int = 0, start: int = 0) -> torch.Tensor:
    """bool [n, 1, height, width]: True inside 1 to 3 rectangles per image.

    Image ``i`` uses ``numpy.random.default_rng((seed, start + i))``: a count in 1..3, then for each
    rectangle a height and width uniform in [size // 8, size // 2] (at least 1) and a uniform position.
    """
    masks = torch.zeros(n, 1, height, width, dtype=torch.bool)
    for i in range(n):
        rng = np.random.default_rng((seed, start + i))
        for _ in range(int(rng.integers(1, 4))):
            rh = int(rng.integers(max(1, height // 8), max(1, height // 2) + 1))
            rw = int(rng.integers(max(1, width // 8), max(1, width // 2) + 1))
            top = int(rng.integers(0, height - rh + 1))
            left = int(rng.integers(0, width - rw + 1))
            masks[i, 0, top:top + rh, left:left + rw] = True
    return masks


def masked(images: Images, seed: int = 0, start: int = 0, fill: int = INPAINT_FILL) -> Images:
    """Inpainting inputs: ``images`` with the rectangles of :func:`inpaint_masks` set to ``fill``.

    Image ``i`` of the batch is dataset image ``start + i``: the same image index and seed always give
    the same rectangles, whatever the batch.
    """
    x = _as_tensor(images)
    mask = inpaint_masks(x.shape[0], x.shape[2], x.shape[3], seed, start)
    return _like(torch.where(mask, torch.tensor(fill, dtype=torch.uint8), x), images)


def noisy(images: Images, sigma: float = 25.0, seed: int = 0) -> Images:
    """Denoising inputs: uint8 [N, C, H, W] plus Gaussian noise of standard deviation ``sigma`` pixel levels
    (0..255 units), rounded and clipped to 0..255 (so the noise is slightly weaker than sigma where the
    image is near black or white; the denoising papers add it to float images unclipped).

    Image ``i`` draws its noise from ``numpy.random.default_rng((seed, h))`` with h the first 8 bytes of
    the BLAKE2b hash of its pixels: the same image always gets the same noise, whatever its batch or
    index, and a held-out image's noise is independent of the training images'. Being a fixed function of
    the images, like every derivation, it gives training one noisy copy of each image, not fresh noise
    every batch as DnCNN's training does.
    """
    if not sigma >= 0:
        raise GanforgeError(f"The noise sigma must be >= 0 pixel levels (25 in the denoising papers), got {sigma!r}.")
    x = _as_tensor(images)
    out = np.empty(tuple(x.shape), dtype=np.uint8)
    pixels = x.contiguous().numpy()
    for i in range(pixels.shape[0]):
        h = int.from_bytes(hashlib.blake2b(pixels[i].tobytes(), digest_size=8).digest(), "little")
        noise = np.random.default_rng((seed, h)).standard_normal(pixels.shape[1:], dtype=np.float32)
        out[i] = np.clip(np.rint(pixels[i] + np.float32(sigma) * noise), 0, 255)
    return _like(torch.from_numpy(out), images)


def _gray2color(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        raise GanforgeError("gray2color needs colour (3-channel) images; these have 1 channel.")
    return grayscale(x)


Derivation = Callable[[torch.Tensor], torch.Tensor]
DERIVATIONS: Registry[Derivation] = Registry("derivation")
DERIVATIONS.register("edges", lambda x: edges(x, "canny"))
DERIVATIONS.register("softedges", lambda x: edges(x, "soft"))
DERIVATIONS.register("gray2color", _gray2color)
DERIVATIONS.register("lowres2", lambda x: lowres(x, 2))
DERIVATIONS.register("lowres4", lambda x: lowres(x, 4))
DERIVATIONS.register("inpaint", lambda x: masked(x, seed=0))
DERIVATIONS.register("noise", lambda x: noisy(x, 25.0))
DERIVATIONS.register("noise15", lambda x: noisy(x, 15.0))
DERIVATIONS.register("noise50", lambda x: noisy(x, 50.0))

_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_CACHE_ENTRIES = 4


def derive(name: str, images: torch.Tensor) -> torch.Tensor:
    """A = DERIVATIONS[name](images) for uint8 [N, C, H, W] images, memoised by name and image content."""
    fn = DERIVATIONS.get(name)
    x = _as_tensor(images).contiguous()
    key = (name, tuple(x.shape), hashlib.blake2b(memoryview(x.numpy()).cast("B"), digest_size=16).hexdigest())
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    result = fn(x)
    _CACHE[key] = result
    while len(_CACHE) > _CACHE_ENTRIES:
        _CACHE.popitem(last=False)
    return result


def resize_bicubic(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, C, size, size], bicubic with antialiasing (a no-op at that size)."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    out = [_to_uint8(F.interpolate(c.float(), size=(size, size), mode="bicubic", antialias=True,
                                   align_corners=False)) for c in images.split(4096)]
    return torch.cat(out) if out else images.new_zeros((0, images.shape[1], size, size))


# ----------------------------------------------------------------------------------------------------
# image sources


def fashion_images(root: str | None, split: str, size: int = FASHION_SIZE, garment: int | None = None,
                   ) -> tuple[torch.Tensor, list[str]]:
    """Fashion-MNIST ``split`` as uint8 [N, 1, size, size] with names ``<split>-<index>``.

    The 28x28 images are resized (bicubic) to ``garment`` pixels (default round(size * 7 / 8); no resize
    at 28) and centred on black. load_paired passes garment = round(crop * 7 / 8), so training crops
    and evaluation images show garments at the same scale: 28 pixels in a 32 crop, with a 36 stored
    size (the 286/256 jitter) giving random shifts of up to 4 pixels instead of a blurring resize.
    """
    if split not in ("train", "test"):
        raise GanforgeError(f"Fashion-MNIST has the splits train and test, not {split!r}.")
    images = load_dataset("fashion-mnist", root, split).images
    inner = min(size, max(1, garment if garment is not None else round(size * 7 / 8)))
    images = resize_bicubic(images, inner)
    before = (size - inner) // 2
    images = F.pad(images, (before, size - inner - before, before, size - inner - before))
    return images.contiguous(), [f"{split}-{i:05d}" for i in range(images.shape[0])]


def _photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 [H, W, 3]."""
    try:
        if name in ("china", "flower"):
            from sklearn.datasets import load_sample_image

            return np.asarray(load_sample_image(f"{name}.jpg"))
        if name == "grace_hopper":
            from matplotlib import cbook

            with cbook.get_sample_data("grace_hopper.jpg") as f, Image.open(f) as im:
                return np.asarray(im.convert("RGB"))
        import skimage.data

        return np.asarray(getattr(skimage.data, name)())
    except ImportError as e:
        raise GanforgeError(f"The photos source needs {e.name} (for the {name!r} photo); "
                            f"install scikit-image, scikit-learn and matplotlib.") from None


def photo_crops(split: str, size: int = PHOTO_SIZE, per_photo: int = PHOTO_CROPS, seed: int = 0,
                scale_to: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """uint8 [n_photos * per_photo, 3, size, size] random crops of the bundled photos of ``split``.

    Each photo is scaled (PIL bicubic) so its shorter side is max(size, min(scale_to, shorter side))
    (``scale_to`` defaults to 4 * size; load_paired passes 4 * crop_size so training and evaluation
    crops share one scale), i.e. shrunk when larger and enlarged only when smaller than a crop; photo ``p`` of
    the full list PHOTOS_TRAIN + PHOTOS_TEST takes its crop corners from
    ``numpy.random.default_rng((seed, p))``. Names are ``<photo>-<k>``.
    """
    splits = {"train": PHOTOS_TRAIN, "test": PHOTOS_TEST}
    if split not in splits:
        raise GanforgeError(f"The photos source has the splits train and test, not {split!r}.")
    if per_photo < 1:
        raise GanforgeError(f"per_photo must be at least 1, not {per_photo}.")
    every = PHOTOS_TRAIN + PHOTOS_TEST
    out = np.empty((len(splits[split]) * per_photo, 3, size, size), dtype=np.uint8)
    names = []
    for j, name in enumerate(splits[split]):
        photo = _photo(name)
        h, w = photo.shape[:2]
        short = max(size, min(scale_to or 4 * size, min(h, w)))
        if short != min(h, w):
            scale = short / min(h, w)
            h, w = max(size, round(h * scale)), max(size, round(w * scale))
            photo = np.asarray(Image.fromarray(photo).resize((w, h), Image.Resampling.BICUBIC))
        rng = np.random.default_rng((seed, every.index(name)))
        tops = rng.integers(0, h - size + 1, per_photo)
        lefts = rng.integers(0, w - size + 1, per_photo)
        for k, (top, left) in enumerate(zip(tops, lefts, strict=True)):
            out[j * per_photo + k] = photo[top:top + size, left:left + size].transpose(2, 0, 1)
            names.append(f"{name}-{k:03d}")
    return torch.from_numpy(out), names


def _folder_images(folder: Path, size: int) -> tuple[torch.Tensor, list[str]]:
    """Every image under ``folder`` as uint8 [N, C, size, size] (shorter side resized, centre crop)."""
    files, _, _ = list_images(folder)
    arrays, names, skipped = [], [], []
    for path in files:
        image = read_image(path)
        if image is None:
            skipped.append(path.name)
            continue
        arrays.append(resize_square(image, size))
        names.append(path.relative_to(folder).as_posix())
    if not arrays:
        raise GanforgeError(f"No readable images found in '{folder}'.")
    warn_skipped(skipped, folder, stacklevel=3)
    channels = 1 if all(a.shape[0] == 1 for a in arrays) else 3
    stacked = np.stack([np.broadcast_to(a, (channels, size, size)) for a in arrays])
    return torch.from_numpy(stacked), names


def _fashion_source(derivation: str) -> PairedSource:
    def load(root: str | None, split: str, size_rule: SizeRule):
        sizes = size_rule(FASHION_SIZE)
        B, names = fashion_images(root, split, sizes.load, garment=round(sizes.crop * 7 / 8))
        return derive(derivation, B), B, names

    return PairedSource(load, f"{derivation} of Fashion-MNIST at 32x32 -> the garment; splits train, test")


def _photos_source(derivation: str) -> PairedSource:
    def load(root: str | None, split: str, size_rule: SizeRule):
        sizes = size_rule(PHOTO_SIZE)
        B, names = photo_crops(split, sizes.load, scale_to=4 * sizes.crop)
        return derive(derivation, B), B, names

    return PairedSource(load, f"{derivation} of {PHOTO_CROPS} crops per bundled photo -> the crop; "
                              f"train {', '.join(PHOTOS_TRAIN)}; test {', '.join(PHOTOS_TEST)}")


def derived_source(source: str, derivation: str) -> tuple[PairedSource, str]:
    """(PairedSource, name) deriving A by ``derivation`` from the image dataset or folder ``source``."""
    DERIVATIONS.get(derivation)  # unknown names fail here, listing the choices
    if source in PAIRED_DATASETS:
        raise GanforgeError(f"{source!r} is already a paired dataset; derive= takes an image dataset "
                            f"({', '.join(DATASETS.names())}) or a folder of images.")
    if source in DATASETS:
        def load(root: str | None, split: str, size_rule: SizeRule):
            B = load_dataset(source, root, split).images
            B = resize_bicubic(B, size_rule(B.shape[-1]).load)
            return derive(derivation, B), B, [f"{split}-{i:05d}" for i in range(B.shape[0])]

        return PairedSource(load), f"{derivation}-{source}"
    folder = Path(source).expanduser()
    if folder.is_dir():
        def load_folder(root: str | None, split: str, size_rule: SizeRule):
            B, names = _folder_images(split_folder(folder, split), size_rule(PHOTO_SIZE).load)
            return derive(derivation, B), B, names

        return PairedSource(load_folder), f"{derivation}:{source}"
    raise GanforgeError(f"Unknown image dataset {source!r} for derive=; choose one of: "
                        f"{', '.join(DATASETS.names())}, or give a folder of images.")


def _register() -> None:
    for derivation in DERIVATIONS:
        if derivation != "gray2color":
            PAIRED_DATASETS.register(f"{derivation}-fashion", _fashion_source(derivation))
        PAIRED_DATASETS.register(f"{derivation}-photos", _photos_source(derivation))
    for derivation in ("edges", "softedges"):
        PAIRED_DATASETS.register(f"{derivation}2fashion", _fashion_source(derivation))
        PAIRED_DATASETS.register(f"{derivation}2photos", _photos_source(derivation))


_register()
