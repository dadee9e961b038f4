"""Unaligned (unpaired) image data for CycleGAN: two domains A and B with no correspondence.

:func:`load_unaligned` reads the two domains from

* a published CycleGAN dataset by name (:data:`PUBLISHED`: horse2zebra, apple2orange, ..., downloaded as
  ``<name>.zip`` from :data:`CYCLEGAN_URL` into ``<ganforge cache>/data/cyclegan/<name>`` when online;
  also looked for in ``root/<name>`` and ``$GANFORGE_DATA/<name>``);
* a folder in the reference layout: ``DIR/trainA``, ``DIR/trainB``, ``DIR/testA``, ``DIR/testB`` (any of
  the splits train, val, test), or ``DIR/<split>/A`` and ``DIR/<split>/B``, or ``DIR/A`` and ``DIR/B``
  serving every split;
* two folders joined by a comma, ``A_DIR,B_DIR`` (``--data ~/horses,~/zebras``): each serves every split,
  or its ``<split>`` subfolder when it has split subfolders (a folder whose name holds a comma has to use
  the trainA/trainB layout);
* an offline pair of domains (:data:`UNALIGNED_DATASETS`): ``fashion2edges`` (A = Fashion-MNIST garments
  from the first half of the training set, B = Canny edge maps of the garments of the second half, so no
  pair is ever seen in training; the test split keeps the pairs x, edges(x), so both directions have a
  known answer) and ``photo2cartoon`` (A = crops of the photos bundled with scikit-image, scikit-learn and
  matplotlib, B = a cartoon rendering, posterised colours with dark edges, of *other* crops; the test
  split pairs each crop of the held-out photos with its rendering).

Domains may differ in size; an epoch is max(|A|, |B|) items, as in the reference: item i takes
A[i % |A|] and a B drawn at random (``serial_batches``: B[i % |B|]). Every image is resized (bicubic) to
``load_size x load_size`` when loaded and each training item takes its own random ``crop_size`` crop
and horizontal flip, A and B independently (:meth:`UnalignedData.items`), all drawn from the batch's
seeded generator, so batches are reproducible and resumable mid-epoch.

Channels: gray, palette, RGBA (composited on white) and 16-bit files are read as folders.read_image
reads them; each domain is then converted to ``channels`` when given, else to the channel count most of
its images have (1 or 3; a tie gives 3). ``direction="BtoA"`` swaps the domains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GanforgeError
from ..io import warn_skipped
from ..registry import Registry
from . import convert_images, load_dataset
from .derived import FASHION_SIZE, PHOTO_CROPS, PHOTO_SIZE, derive, edges, fashion_images, photo_crops
from .download import ArchiveSite
from .folders import image_files, read_image, resize_square
from .pairs import (
    DIRECTIONS,
    SPLITS,
    ChosenSizes,
    SizeRule,
    Sizes,
    StoredAB,
    check_load_options,
    check_split,
    split_folder,
)


@dataclass
class UnalignedData(StoredAB):
    """Two unpaired domains in memory, stored at ``load_size``; training takes random crops of ``crop_size``.

    A: uint8 [Na, Ca, S, S]; B: uint8 [Nb, Cb, S, S] (S = the load size, the same for both); names_A,
    names_B: one file name or id per image. ``paired``: A[i] and B[i] belong together (the test split of
    an offline source with a known answer); ``pair_labels``: int64 [Na] classes of those pairs, or None.
    """

    A: torch.Tensor
    B: torch.Tensor
    name: str
    names_A: list[str]
    names_B: list[str]
    crop_size: int
    flip: bool = True
    serial_batches: bool = False
    paired: bool = False
    pair_labels: torch.Tensor | None = None
    labels: None = None  # no class labels for training (what the trainer's data checks read)
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for key, x in (("A", self.A), ("B", self.B)):
            if x.dim() != 4 or x.dtype != torch.uint8 or x.shape[-1] != x.shape[-2] or x.shape[0] == 0:
                raise ValueError(f"UnalignedData: {key} must be a non-empty uint8 [N, C, S, S] tensor, got "
                                 f"{x.dtype} {tuple(x.shape)}")
        if self.A.shape[-1] != self.B.shape[-1]:
            raise ValueError(f"UnalignedData: A {tuple(self.A.shape)} and B {tuple(self.B.shape)} differ in size")
        if len(self.names_A) != self.A.shape[0] or len(self.names_B) != self.B.shape[0]:
            raise ValueError("UnalignedData: one name per image is needed in each domain")
        if self.paired and self.A.shape[0] != self.B.shape[0]:
            raise ValueError("UnalignedData: paired domains need as many A images as B images")
        if not 1 <= self.crop_size <= self.load_size:
            raise ValueError(f"UnalignedData: crop_size {self.crop_size} must lie in 1..{self.load_size}")

    def __len__(self) -> int:
        """Items per epoch: max(|A|, |B|), as in the reference."""
        return max(self.A.shape[0], self.B.shape[0])

    def items(self, indices: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """{"A": uint8 [n, Ca, crop, crop], "B": uint8 [n, Cb, crop, crop]} for the epoch items ``indices``.

        Item i is A[i % |A|] and B[j], j uniform in [0, |B|) (``serial_batches``: j = i % |B|). Draws from
        ``generator``, in this order: the n B indices (unless serial), then for A and then for B the crop
        corners and flips (:meth:`StoredAB.crops`), so A and B are cropped and flipped independently.
        """
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        n = indices.numel()
        a = indices % self.A.shape[0]
        if self.serial_batches:
            b = indices % self.B.shape[0]
        else:
            b = torch.randint(0, self.B.shape[0], (n,), generator=generator)
        (A,) = self.crops(a, generator, self.A)
        (B,) = self.crops(b, generator, self.B)
        return {"A": A, "B": B}


class Domains(NamedTuple):
    """What a source loads: both domains at the stored size, their names, and whether A[i] pairs with B[i]."""

    A: torch.Tensor
    B: torch.Tensor
    names_A: list[str]
    names_B: list[str]
    paired: bool = False
    pair_labels: torch.Tensor | None = None


@dataclass
class UnalignedSource:
    """A registered source: load(root, split, size_rule) -> Domains, stored at size_rule(own size).load."""

    load: Callable[[str | None, str, SizeRule], Domains]
    description: str = ""


UNALIGNED_DATASETS: Registry[UnalignedSource] = Registry("unaligned dataset")


def load_unaligned(source: str, root: str | None = None, split: str = "train", direction: str = "AtoB",
                   load_size: int | None = None, crop_size: int | None = None, flip: bool = True,
                   channels: int | None = None, serial_batches: bool = False) -> UnalignedData:
    """Load two domains from a registered name, a folder or ``A_DIR,B_DIR`` (see the module docstring).

    Sizes follow ``load_paired``: without ``crop_size`` the crop is ``load_size`` when given, else the
    source's own size (the first A image's height; 32 for fashion2edges, 64 for photo2cartoon); without
    ``load_size`` it is round(crop * 286 / 256) when ``flip`` is on or ``crop_size`` was given, else the
    crop. ``channels`` (1 or 3) converts both domains; ``direction="BtoA"`` swaps them.

    Raises:
        GanforgeError: unknown name, split or direction; bad sizes; missing or empty folders; a
            published dataset that is not there and cannot be downloaded.
    """
    check_load_options(direction, load_size, crop_size, {"channels": channels})
    check_split(split)
    src = _source(source, channels)
    size_rule = ChosenSizes(load_size, crop_size, flip)
    d = src.load(root, split, size_rule)
    A, B, names_A, names_B = d.A, d.B, d.names_A, d.names_B
    if direction == "BtoA":
        A, B, names_A, names_B = B, A, names_B, names_A
    crop = size_rule.chosen.crop if size_rule.chosen else A.shape[-1]
    return UnalignedData(A=convert_images(A, None, channels), B=convert_images(B, None, channels), name=source,
                         names_A=names_A, names_B=names_B, crop_size=crop, flip=flip, serial_batches=serial_batches,
                         paired=d.paired, pair_labels=d.pair_labels)


def _source(source: str, channels: int | None) -> UnalignedSource:
    if source in UNALIGNED_DATASETS:
        return UNALIGNED_DATASETS.get(source)
    path = Path(source).expanduser()
    if path.is_dir():
        return UnalignedSource(lambda _root, split, rule: read_unaligned_folder(path, split, rule, channels))
    if "," in source:
        parts = [Path(p.strip()).expanduser() for p in source.split(",")]
        if len(parts) != 2 or not all(str(p) for p in parts):
            raise GanforgeError(f"{source!r} is not two folders joined by one comma (A_DIR,B_DIR).")
        for p in parts:
            if not p.is_dir():
                raise GanforgeError(f"The domain folder '{p}' of {source!r} does not exist or is not a folder.")
        return UnalignedSource(lambda _root, split, rule: read_two_domains(parts[0], parts[1], split, rule, channels))
    raise GanforgeError(
        f"Unknown unaligned dataset {source!r}; choose one of: {', '.join(UNALIGNED_DATASETS.names())}, "
        "or give a folder with trainA/ and trainB/ (or A/ and B/), or two folders as A_DIR,B_DIR."
    )


def translation_split(source: str, split: str = "test", root: str | None = None, data_direction: str = "AtoB",
                      direction: str = "AtoB", size: int = 256, n: int | None = None, with_total: bool = False,
                      ) -> tuple:
    """(inputs, names, targets or None) of a held-out split at ``size`` x ``size`` (no crop, no flip) for
    translating in ``direction``: domain A's images for AtoB, B's for BtoA (after ``data_direction``
    swapped the domains, as in training). Targets are the other domain's images when the split pairs them.
    The first ``n`` (None: all); ``with_total`` adds the number the split holds."""
    if direction not in DIRECTIONS:
        raise GanforgeError(f"Unknown direction {direction!r}; choose 'AtoB' or 'BtoA'.")
    data = load_unaligned(source, root, split, direction=data_direction, load_size=size, crop_size=size, flip=False)
    inputs, others, names = ((data.A, data.B, data.names_A) if direction == "AtoB" else (data.B, data.A, data.names_B))
    k = len(inputs) if n is None else min(n, len(inputs))
    out = list(inputs[:k]), list(names[:k]), (list(others[:k]) if data.paired else None)
    return (*out, len(inputs)) if with_total else out


# ----------------------------------------------------------------------------------------------------
# folders


def find_unaligned_layout(folder: Path, split: str) -> tuple[Path, Path]:
    """(dir_A, dir_B) of ``split`` in ``folder``: <split>A/<split>B, <split>/A and <split>/B, or A/ and B/."""
    folder = Path(folder)
    found = {}
    for s in SPLITS:
        if (folder / f"{s}A").is_dir() and (folder / f"{s}B").is_dir():
            found[s] = (folder / f"{s}A", folder / f"{s}B")
        elif (folder / s / "A").is_dir() and (folder / s / "B").is_dir():
            found[s] = (folder / s / "A", folder / s / "B")
    if found:
        if split not in found:
            raise GanforgeError(f"'{folder}' has no {split} split; it has: {', '.join(found)}.")
        return found[split]
    if (folder / "A").is_dir() and (folder / "B").is_dir():
        return split_folder(folder / "A", split), split_folder(folder / "B", split)
    raise GanforgeError(f"'{folder}' holds neither trainA/ and trainB/ (the CycleGAN layout) nor A/ and B/ "
                        "folders; give two folders as A_DIR,B_DIR instead.")


def read_domain(folder: Path, size_rule: SizeRule, channels: int | None = None,
                ) -> tuple[torch.Tensor, list[str], Sizes]:
    """Every image under ``folder`` (sorted) as uint8 [N, C, S, S], stretched (bicubic) to S =
    size_rule(first image's height).load, with C = ``channels`` or the count most images have."""
    files = image_files(folder)
    arrays, names, skipped = [], [], []
    sizes = None
    for path in files:
        image = read_image(path)
        if image is None:
            skipped.append(path.relative_to(folder).as_posix())
            continue
        if sizes is None:
            sizes = size_rule(image.shape[1])
        arrays.append(resize_square(image, sizes.load, crop=False))
        names.append(path.relative_to(folder).as_posix())
    if not arrays:
        raise GanforgeError(f"No readable images in '{folder}' (could not decode {len(skipped)} file(s)).")
    warn_skipped(skipped, folder, stacklevel=3)
    gray = sum(a.shape[0] == 1 for a in arrays)
    c = channels or (1 if gray > len(arrays) - gray else 3)
    out = torch.empty((len(arrays), c, sizes.load, sizes.load), dtype=torch.uint8)
    for j, a in enumerate(arrays):
        out[j] = convert_images(torch.from_numpy(np.array(a))[None], None, c)[0]  # a copy: PIL arrays are read-only
    return out, names, sizes


def read_two_domains(dir_a: Path, dir_b: Path, split: str, size_rule: SizeRule, channels: int | None = None,
                     ) -> Domains:
    """Domains from two folders (each its ``<split>`` subfolder when it has split subfolders); B is stored
    at the size chosen from A's first image."""
    A, names_A, sizes = read_domain(split_folder(Path(dir_a), split), size_rule, channels)
    B, names_B, _ = read_domain(split_folder(Path(dir_b), split), lambda _own: sizes, channels)
    return Domains(A, B, names_A, names_B)


def read_unaligned_folder(folder: Path, split: str, size_rule: SizeRule = lambda s: Sizes(s, s),
                          channels: int | None = None) -> Domains:
    """Domains of ``split`` in a folder of the reference layout (see :func:`find_unaligned_layout`)."""
    dir_a, dir_b = find_unaligned_layout(Path(folder), split)
    A, names_A, sizes = read_domain(dir_a, size_rule, channels)
    B, names_B, _ = read_domain(dir_b, lambda _own: sizes, channels)
    return Domains(A, B, names_A, names_B)


# ----------------------------------------------------------------------------------------------------
# published CycleGAN datasets

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
"""Where the published CycleGAN datasets live; ``$GANFORGE_CYCLEGAN_URL`` replaces it (``{name}`` is filled in;
a URL without ``{name}`` is taken as the folder holding ``<name>.zip``)."""

PUBLISHED = {
    "horse2zebra": "ImageNet horses (A) and zebras (B)",
    "apple2orange": "ImageNet apples (A) and oranges (B)",
    "summer2winter_yosemite": "Flickr Yosemite in summer (A) and in winter (B)",
    "monet2photo": "Monet paintings (A) and Flickr landscape photos (B)",
    "cezanne2photo": "Cezanne paintings (A) and landscape photos (B)",
    "ukiyoe2photo": "Ukiyo-e prints (A) and landscape photos (B)",
    "vangogh2photo": "Van Gogh paintings (A) and landscape photos (B)",
    "maps": "Google Maps aerial photos (A) and maps (B), 1,096 train, unpaired",
    "cityscapes": "Cityscapes photos (A) and label maps (B), unpaired",
    "facades": "CMP facade photos (A) and label maps (B), unpaired",
    "iphone2dslr_flower": "Flower photos from iPhones (A) and DSLRs with shallow depth of field (B)",
}


CYCLEGAN_SITE = ArchiveSite("cyclegan", "CycleGAN", CYCLEGAN_URL, "GANFORGE_CYCLEGAN_URL", ".zip", "trainA/ ...",
                            lambda top: any((top / f"{s}A").is_dir() for s in SPLITS))


def _published(name: str) -> UnalignedSource:
    def load(root: str | None, split: str, size_rule: SizeRule) -> Domains:
        return read_unaligned_folder(CYCLEGAN_SITE.folder(name, root), split, size_rule)

    return UnalignedSource(load, f"{PUBLISHED[name]}; trainA/trainB/testA/testB, downloaded when online")


# ----------------------------------------------------------------------------------------------------
# offline domains


def cartoon(images: torch.Tensor, levels: int = 4, sigma: float = 1.5) -> torch.Tensor:
    """A cartoon-like rendering of uint8 [N, 3, H, W] photos: smoothed (two 3x3 box filters), each channel
    posterised to ``levels`` values (0 .. 255 in equal steps), and the Canny edges (``sigma``) of the
    original drawn in black."""
    if images.dim() != 4 or images.dtype != torch.uint8 or images.shape[1] != 3:
        raise GanforgeError(f"cartoon() takes uint8 RGB images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}.")
    step = 255 / (levels - 1)
    out = []
    for chunk in images.split(1024):
        x = chunk.float()
        for _ in range(2):
            x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        x = (x / step).round() * step
        lines = torch.as_tensor(edges(chunk, "canny", sigma)) == 0
        out.append(torch.where(lines, torch.zeros_like(x), x).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def _fashion2edges(root: str | None, split: str, size_rule: SizeRule) -> Domains:
    sizes = size_rule(FASHION_SIZE)
    images, names = fashion_images(root, split, sizes.load, garment=round(sizes.crop * 7 / 8))
    if split == "train":
        half = images.shape[0] // 2
        return Domains(images[:half], derive("edges", images[half:]), names[:half], names[half:])
    labels = load_dataset("fashion-mnist", root, split).labels
    return Domains(images, derive("edges", images), names, names, paired=True, pair_labels=labels)


def _photo2cartoon(root: str | None, split: str, size_rule: SizeRule) -> Domains:
    sizes = size_rule(PHOTO_SIZE)
    crops, names = photo_crops(split, sizes.load, scale_to=4 * sizes.crop)
    if split == "train":
        first = torch.tensor([int(n.rsplit("-", 1)[1]) < PHOTO_CROPS // 2 for n in names])
        keep_a = [n for n, f in zip(names, first.tolist(), strict=True) if f]
        keep_b = [n for n, f in zip(names, first.tolist(), strict=True) if not f]
        return Domains(crops[first], cartoon(crops[~first]), keep_a, keep_b)
    return Domains(crops, cartoon(crops), names, names, paired=True)


UNALIGNED_DATASETS.register("fashion2edges", UnalignedSource(
    _fashion2edges, "Fashion-MNIST garments (A, first half of train) and Canny edges of other garments (B, second "
                    "half); the test split pairs x with edges(x); 32x32, offline"))
UNALIGNED_DATASETS.register("photo2cartoon", UnalignedSource(
    _photo2cartoon, "crops of the bundled photos (A) and cartoon renderings of other crops (B); the test split "
                    "pairs each held-out crop with its rendering; 64x64, offline"))
for _name in PUBLISHED:
    UNALIGNED_DATASETS.register(_name, _published(_name))
