"""High-resolution photos for super-resolution: random HR crops with their bicubic LR inputs, and whole
held-out images for the evaluation protocol.

Sources (``data.name``):

* any folder of photos. A folder with ``train/`` and ``test/`` (or ``val/``, ``valid/``) subfolders gives
  those splits; a folder without them is split by file name: sorted, every fifth image (the 5th, 10th, ...)
  is held out (``test``) and the others train (a folder of one image gives it to both);
* ``mate-nature``: the twelve photographs of Debian's ``mate-backgrounds`` package
  (``/usr/share/backgrounds/mate/nature``: flowers, a ladybird, rain drops, a dune, a storm, wood, ...;
  1280x1024 to 2560x1920 JPEGs; ``make data`` installs it), split as a folder: Garden and TwoWings held out;
* ``skimage-photos``: the photographs that scikit-image ships as files inside its package (astronaut,
  chelsea, coffee, motorcycle_left, rocket; no download), split as a folder (rocket held out);
* the published SR sets by name (Set5, Set14, BSD100, DIV2K, DIV2K-valid): the folder that
  :func:`ganforge.data.sr_sets.sr_set_folder` gives (downloaded when missing). Each is one split: every split
  of it is the whole set, except ``DIV2K``, whose held-out split is ``DIV2K-valid``;
* a registered dataset (``fashion-mnist`` ...): its images of the split.

``load_size`` (``data.load_size``) shrinks every photo whose shorter side is longer to that shorter side (PIL
bicubic, antialiased) when it is loaded; without it photos are used at their own resolution.

Pairs: training takes one random ``crop_size`` HR crop per item (corner uniform over the photo, optionally
flipped left-right) and makes its LR input with ``downscale`` (uint8 [H, W, C] -> uint8 [H / s, W / s, C]);
the family passes the protocol's resampler (:func:`ganforge.metrics.sr.bicubic_downscale`, PIL's bicubic,
antialiased), so training inputs and evaluation inputs come from one resampler. The held-out images for
evaluation are whole photos mod-cropped (bottom and right rows cut) to a multiple of the scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import GanforgeError
from ..io import warn_skipped
from . import DATASETS, convert_images, load_dataset
from .folders import image_files, read_image
from .sr_sets import SR_SETS, sr_set_folder

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg")
HOLD_OUT_EVERY = 5  # a folder without split subfolders: every 5th image (sorted) is held out
EPOCH_CROPS = 1000  # an epoch draws at least this many crops, every photo equally often
TEST_NAMES = {"test": ("test", "val", "valid"), "val": ("val", "valid", "test")}

Downscale = Callable[[np.ndarray, int], np.ndarray]


def skimage_folder() -> Path:
    """Where scikit-image keeps its bundled sample images (files inside the installed package)."""
    try:
        import skimage
    except ImportError:
        raise GanforgeError("The skimage-photos source needs scikit-image; install it (pip install scikit-image) "
                            "or give a folder of photos.") from None
    return Path(skimage.__file__).parent / "data"


def split_files(files: list[Path], split: str) -> list[Path]:
    """``split`` of a flat list of photos: every HOLD_OUT_EVERY-th (sorted) is test/val, the rest train."""
    files = sorted(files)
    if len(files) < 2:
        return files
    held = files[HOLD_OUT_EVERY - 1::HOLD_OUT_EVERY] or files[-1:]
    return held if split != "train" else [f for f in files if f not in held]


def _folder_split(folder: Path, split: str) -> list[Path]:
    subs = {p.name: p for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else {}
    if "train" in subs:
        if split == "train":
            return image_files(subs["train"])
        for name in TEST_NAMES.get(split, (split,)):
            if name in subs:
                return image_files(subs[name])
        raise GanforgeError(f"{str(folder)!r} has a train/ folder but no {split}/ folder (nor test/, val/).")
    return split_files(image_files(folder), split)


def photo_files(name: str, root: str | None, split: str) -> list[Path] | None:
    """The photo files of ``split`` of source ``name``, or None when ``name`` is a registered dataset."""
    if name == "mate-nature":
        if not MATE_NATURE.is_dir():
            raise GanforgeError(f"The mate-nature photos are not installed ({MATE_NATURE} is missing); install "
                                "Debian's mate-backgrounds package (make data, or apt-get install mate-backgrounds).")
        return _folder_split(MATE_NATURE, split)
    if name == "skimage-photos":
        folder = skimage_folder()
        files = [folder / f for f in SKIMAGE_PHOTOS if (folder / f).is_file()]
        if not files:
            raise GanforgeError(f"scikit-image's sample photos are not in {str(folder)!r}; give a folder of photos.")
        return split_files(files, split)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return _folder_split(folder, split)
    if name in DATASETS:
        return None
    if name.lower() not in {k.lower() for k in SR_SETS}:
        raise GanforgeError(f"Unknown photo source {name!r}; give a folder of photos, mate-nature, skimage-photos, a "
                            f"published SR set ({', '.join(SR_SETS)}) or a dataset ({', '.join(DATASETS.names())}).")
    # a published set is one split: every split of it is the whole set, except DIV2K, whose held-out split is
    # its 100 validation images
    held = split != "train" and name.lower() == "div2k"
    return image_files(sr_set_folder("DIV2K-valid" if held else name, root))


def _shrink(image: np.ndarray, load_size: int | None) -> np.ndarray:
    """uint8 [C, H, W] with its shorter side shrunk to ``load_size`` (PIL bicubic, antialiased), else as is."""
    c, h, w = image.shape
    if load_size is None or min(h, w) <= load_size:
        return image
    f = load_size / min(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    planes = np.ascontiguousarray(image[0] if c == 1 else image.transpose(1, 2, 0))
    out = np.asarray(Image.fromarray(planes).resize(size, Image.Resampling.BICUBIC))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def read_photos(name: str, root: str | None, split: str, load_size: int | None = None,
                channels: int | None = 3) -> tuple[list[torch.Tensor], list[str]]:
    """The HR photos of ``split``: (a list of uint8 [C, H, W] of their own sizes, their names)."""
    if load_size is not None and load_size < 1:
        raise GanforgeError(f"load_size must be a positive number of pixels, got {load_size}.")
    files = photo_files(name, root, split)
    if files is None:
        data = load_dataset(name, root, split, None, channels)
        return [im for im in data.images], [f"{split}-{i:05d}" for i in range(len(data))]
    images, names, skipped = [], [], []
    for path in files:
        im = read_image(path)
        if im is None:
            skipped.append(path.name)
            continue
        t = torch.from_numpy(np.ascontiguousarray(_shrink(im, load_size)))
        images.append(convert_images(t[None], None, channels)[0] if channels else t)
        names.append(path.stem)
    warn_skipped(skipped, name)
    if not images:
        raise GanforgeError(f"No readable photo in the {split} split of {name!r}.")
    return images, names


def _hwc(image: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image.reshape(*image.shape[:2], -1).transpose(2, 0, 1)))  # a writable copy


@dataclass
class SRPairs:
    """HR photos in memory and the (LR, HR) training pairs drawn from them.

    ``images``: uint8 [C, H, W] each, of their own sizes (each at least ``crop_size`` on both sides). Item ``i``
    is photo ``i % len(images)``; ``len`` counts ``repeats`` crops of every photo (an epoch of at least
    EPOCH_CROPS crops). A batch is {"A": LR uint8 [B, C, crop / scale, crop / scale], "B": HR uint8
    [B, C, crop, crop]}.
    """

    images: list[torch.Tensor]
    names: list[str]
    crop_size: int
    scale: int
    downscale: Downscale
    flip: bool = True
    name: str = ""
    labels: None = None
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.crop_size % self.scale:
            raise GanforgeError(f"The HR crop size {self.crop_size} must be a multiple of the scale {self.scale}.")
        small = [n for n, im in zip(self.names, self.images, strict=True) if min(im.shape[-2:]) < self.crop_size]
        if small:
            keep = [i for i, im in enumerate(self.images) if min(im.shape[-2:]) >= self.crop_size]
            warn_skipped([f"{n} (smaller than the {self.crop_size}-pixel crop)" for n in small], self.name)
            self.images = [self.images[i] for i in keep]
            self.names = [self.names[i] for i in keep]
        if not self.images:
            raise GanforgeError(f"No photo of {self.name!r} is at least {self.crop_size} pixels on both sides; use "
                                f"a smaller crop (image_size) or larger photos.")
        self.repeats = max(1, math.ceil(EPOCH_CROPS / len(self.images)))

    def __len__(self) -> int:
        return len(self.images) * self.repeats

    @property
    def image_size(self) -> int:
        return self.crop_size

    @property
    def channels(self) -> int:
        return int(self.images[0].shape[0])

    def lr_of(self, hr: torch.Tensor) -> torch.Tensor:
        """uint8 [C, H, W] -> its LR input uint8 [C, H / scale, W / scale] by ``downscale``."""
        return _chw(self.downscale(_hwc(hr), self.scale))

    def items(self, indices: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random crops of the photos ``indices % len(images)``: one corner draw [n, 2] (uniform in [0, 1),
        scaled to each photo's free range), then one flip draw [n] when ``flip``."""
        n, c = indices.numel(), self.crop_size
        where = torch.rand(n, 2, generator=generator).tolist()
        flips = (torch.rand(n, generator=generator) < 0.5).tolist() if self.flip else [False] * n
        hr, lr = [], []
        for i, (fy, fx), flipped in zip(indices.tolist(), where, flips, strict=True):
            photo = self.images[i % len(self.images)]
            h, w = photo.shape[-2:]
            top, left = int(fy * (h - c + 1)), int(fx * (w - c + 1))
            crop = photo[:, top:top + c, left:left + c]
            crop = crop.flip(-1) if flipped else crop
            hr.append(crop.contiguous())
            lr.append(self.lr_of(crop))
        return {"A": torch.stack(lr), "B": torch.stack(hr)}


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [H, W, C] cut to multiples of ``scale`` (the last rows and columns dropped), as the SR papers'
    modcrop."""
    h, w = image.shape[:2]
    return image[:h - h % scale, :w - w % scale]


def center_crops(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """The centre ``size`` x ``size`` of each uint8 [C, H, W] (each at least that size): uint8 [N, C, size, size]."""
    out = []
    for im in images:
        h, w = im.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        out.append(im[:, top:top + size, left:left + size])
    return torch.stack(out)


def held_out_images(name: str, root: str | None, split: str, scale: int, load_size: int | None = None,
                    channels: int | None = 3, n: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Whole HR images of ``split`` mod-cropped to ``scale``: (uint8 [H, W, C] each, names); the first ``n``."""
    images, names = read_photos(name, root, split, load_size, channels)
    if n is not None:
        images, names = images[:n], names[:n]
    return [mod_crop(_hwc(im), scale) for im in images], names
