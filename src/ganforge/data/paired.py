"""Paired image data for image-to-image translation (pix2pix).

A pair is an input image A and a target image B of the same square size. :func:`load_paired` reads
pairs from

* a published pix2pix dataset by name (``facades``, ``cityscapes``, ``maps``, ``edges2shoes``,
  ``edges2handbags``, ``night2day``), looked for in ``root/<name>``, ``$GANFORGE_DATA/<name>`` and
  ``<ganforge cache>/pix2pix/<name>``, and downloaded from :data:`PIX2PIX_URL` (overridable with
  ``$GANFORGE_PIX2PIX_URL``) when none has it and ``$GANFORGE_OFFLINE`` is not ``1``;
* a folder, in one of two layouts found automatically:

  - aligned: one image per pair with A on the left half and B on the right half (split at width / 2),
    in ``DIR/<split>/`` (``train``, ``val``, ``test``) or directly in ``DIR``;
  - two folders: ``DIR/A`` and ``DIR/B``, ``DIR/<split>/A`` and ``DIR/<split>/B``, ``DIR/<split>A`` and
    ``DIR/<split>B`` (``trainA``/``trainB`` names) or ``DIR/A/<split>`` and ``DIR/B/<split>``; files
    are paired by name without extension;

  a folder without any split folder serves every split;
* pairs made from single images (``derive=``, and the ``edges2fashion``-style names registered by
  :mod:`ganforge.data.derived`), so pix2pix can be trained offline.

As published, the left (A) halves are: facades and cityscapes photos (B = label maps, so use
``direction="BtoA"`` for labels -> photo), maps aerial photos (B = maps), edges2shoes / edges2handbags
edge maps (B = photos), night2day night scenes (B = the same scene by day).

Sizes follow junyanz/pytorch-CycleGAN-and-pix2pix: both halves are resized (bicubic) to
``load_size x load_size`` when loaded, and every training batch takes a random ``crop_size`` crop and a
random horizontal flip, identical for A and B (:meth:`PairedData.items`).

The registry :data:`PAIRED_DATASETS`, :class:`PairedSource` and the size rule are defined in
:mod:`ganforge.data.pairs` (below both this module and :mod:`ganforge.data.derived`) and importable from here;
so are the sizes, channel counts and crops that :class:`PairedData` shares with unaligned data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import GanforgeError
from ..io import warn_skipped
from . import convert_images
from .derived import derived_source
from .download import ArchiveSite
from .folders import image_files, read_image, resize_square
from .pairs import (
    PAIRED_DATASETS,
    SPLITS,
    ChosenSizes,
    PairedSource,
    SizeRule,
    Sizes,
    StoredAB,
    check_load_options,
    check_split,
)

PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
"""Where the published pix2pix datasets live; ``$GANFORGE_PIX2PIX_URL`` replaces it (``{name}`` is filled
in; a URL without ``{name}`` is taken as the folder holding ``<name>.tar.gz``)."""

_MAX_NAMED = 3


@dataclass
class PairedData(StoredAB):
    """Pairs of images in memory, stored at ``load_size``; training takes random crops of ``crop_size``.

    A: uint8 [N, Ca, S, S] inputs; B: uint8 [N, Cb, S, S] targets (S = load size, the same for both);
    names: one file name or id per pair; crop_size <= S is the networks' image size.
    """

    A: torch.Tensor
    B: torch.Tensor
    name: str
    names: list[str]
    crop_size: int
    flip: bool = True
    labels: None = None
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, s = self.A.shape[0], self.A.shape[-1]
        if self.A.dim() != 4 or self.B.dim() != 4 or self.A.dtype != torch.uint8 or self.B.dtype != torch.uint8:
            raise ValueError("PairedData needs uint8 [N, C, S, S] tensors A and B")
        if self.B.shape[0] != n or len(self.names) != n:
            raise ValueError(f"PairedData: {n} A images, {self.B.shape[0]} B images, {len(self.names)} names")
        if tuple(self.A.shape[-2:]) != (s, s) or tuple(self.B.shape[-2:]) != (s, s):
            raise ValueError(f"PairedData: A {tuple(self.A.shape)} and B {tuple(self.B.shape)} differ in size")
        if not 1 <= self.crop_size <= s:
            raise ValueError(f"PairedData: crop_size {self.crop_size} must lie in 1..{s}")

    def __len__(self) -> int:
        return self.A.shape[0]

    def items(self, indices: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """{"A": uint8 [B, Ca, crop, crop], "B": uint8 [B, Cb, crop, crop]} for the pairs ``indices``.

        One crop corner and flip per pair, drawn from ``generator`` as :meth:`StoredAB.crops` says and
        applied identically to A and B.
        """
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        A, B = self.crops(indices, generator, self.A, self.B)
        return {"A": A, "B": B}


def load_paired(source: str, root: str | None = None, split: str = "train", direction: str = "AtoB",
                load_size: int | None = None, crop_size: int | None = None, flip: bool = True,
                channels_A: int | None = None, channels_B: int | None = None,
                derive: str | None = None) -> PairedData:
    """Load pairs from a registered name (:data:`PAIRED_DATASETS`) or a folder, or derive them.

    Args:
        source: a name in :data:`PAIRED_DATASETS`, or a folder (aligned or two-folder layout); with
            ``derive``, an image dataset in ``ganforge.data.DATASETS`` or a folder of images (the B side).
        root: where to look for published and image datasets (like ``--data-root``).
        split: ``train``, ``val`` or ``test`` (what the source has).
        direction: ``AtoB`` keeps the stored order; ``BtoA`` swaps A and B.
        load_size, crop_size: sizes in pixels. Without ``crop_size`` the crop is ``load_size`` when that
            is given, else the source's own size (the first image's height; Fashion-MNIST sources 32,
            photos 64). Without ``load_size`` it is ``round(crop_size * 286 / 256)`` (the reference's
            286/256 jitter) when ``flip`` is on or ``crop_size`` was given, else ``crop_size``; pass
            ``load_size == crop_size`` with ``flip=False`` for a deterministic resize and no crop.
        flip: random horizontal flips in :meth:`PairedData.items`.
        channels_A, channels_B: force 1 (luma) or 3 (RGB) channels on A / B (after ``direction``).
            Otherwise folder images are 1-channel when every image of both halves is grayscale, else 3.
        derive: a derivation in ``ganforge.data.derived.DERIVATIONS`` (edges, softedges, gray2color,
            lowres2, lowres4, inpaint) making A from the images of ``source``.

    Raises:
        GanforgeError: unknown name, direction, split or derivation; bad sizes; missing, empty or
            malformed folders; a dataset that is not there and cannot be downloaded.
    """
    check_load_options(direction, load_size, crop_size, {"channels_A": channels_A, "channels_B": channels_B})
    if derive is not None:
        src, name = derived_source(source, derive)
    elif source in PAIRED_DATASETS:
        src, name = PAIRED_DATASETS.get(source), source
    elif Path(source).expanduser().is_dir():
        folder = Path(source).expanduser()
        src, name = PairedSource(lambda _root, s, rule: read_paired_folder(folder, s, rule)), str(source)
    else:
        raise GanforgeError(
            f"Unknown paired dataset {source!r}; choose one of: {', '.join(PAIRED_DATASETS.names())}, "
            f"or give a folder of paired images."
        )
    check_split(split)
    size_rule = ChosenSizes(load_size, crop_size, flip)
    A, B, names = src.load(root, split, size_rule)
    crop = size_rule.chosen.crop if size_rule.chosen else A.shape[-1]
    if direction == "BtoA":
        A, B = B, A
    A = convert_images(A, None, channels_A)
    B = convert_images(B, None, channels_B)
    return PairedData(A=A, B=B, name=name, names=names, crop_size=crop, flip=flip)


# ----------------------------------------------------------------------------------------------------
# folders


def find_pair_layout(folder: Path, split: str) -> tuple[Path] | tuple[Path, Path]:
    """(aligned_dir,) or (dir_A, dir_B) holding ``split`` of ``folder``; see the module docstring."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GanforgeError(f"The paired image folder '{folder}' does not exist or is not a folder.")

    def two(a: Path, b: Path) -> bool:
        return a.is_dir() and b.is_dir()

    def for_split(s: str) -> tuple[Path] | tuple[Path, Path] | None:
        d = folder / s
        if d.is_dir():
            return (d / "A", d / "B") if two(d / "A", d / "B") else (d,)
        if two(folder / f"{s}A", folder / f"{s}B"):
            return folder / f"{s}A", folder / f"{s}B"
        if two(folder / "A" / s, folder / "B" / s):
            return folder / "A" / s, folder / "B" / s
        return None

    found = {s: for_split(s) for s in SPLITS}
    present = [s for s in SPLITS if found[s] is not None]
    if present:
        if found.get(split) is None:
            raise GanforgeError(f"'{folder}' has no {split} split; it has: {', '.join(present)}.")
        return found[split]
    if two(folder / "A", folder / "B"):
        return folder / "A", folder / "B"
    return (folder,)


def read_paired_folder(folder: Path, split: str, size_rule: SizeRule = lambda s: Sizes(s, s),
                       ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read the ``split`` pairs of ``folder`` (either layout) as (A, B, names) at ``size_rule(height).load``.

    The own size is the height of the first readable B image; every half is resized (bicubic) to a
    square of the stored size. Unreadable files are skipped with one warning.
    """
    layout = find_pair_layout(Path(folder), split)
    if len(layout) == 1:
        return _read_aligned(layout[0], size_rule)
    return _read_two_folders(layout[0], layout[1], size_rule)


def _read_aligned(folder: Path, size_rule: SizeRule) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    files = image_files(folder)
    stack = _PairStack(len(files), size_rule)
    skipped = []
    for path in files:
        image = read_image(path)
        if image is None:
            skipped.append(path)
            continue
        _, h, w = image.shape
        if w % 2 or w < h:
            shape = "an odd width" if w % 2 else "a width smaller than its height"
            raise GanforgeError(
                f"'{path}' ({w}x{h}) has {shape}, so it cannot hold A and B side by side; aligned pairs are "
                f"images of twice the width of each half (or use the A/ and B/ folder layout)."
            )
        stack.add(image[:, :, :w // 2], image[:, :, w // 2:], path.relative_to(folder).as_posix())
    return stack.finish(folder, skipped)


def _read_two_folders(dir_a: Path, dir_b: Path, size_rule: SizeRule,
                      ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    by_stem = []
    for d in (dir_a, dir_b):
        stems: dict[str, Path] = {}
        for path in image_files(d):
            key = path.relative_to(d).with_suffix("").as_posix()
            if key in stems:
                raise GanforgeError(f"'{d}' has two images named {key!r} ({stems[key].name} and {path.name}); "
                                    f"pairs are matched by file name without extension.")
            stems[key] = path
        by_stem.append(stems)
    stems_a, stems_b = by_stem
    lonely = [f"{dir_a.name}/{stems_a[k].name}" for k in stems_a if k not in stems_b]
    lonely += [f"{dir_b.name}/{stems_b[k].name}" for k in stems_b if k not in stems_a]
    if lonely:
        examples = ", ".join(lonely[:_MAX_NAMED]) + (", ..." if len(lonely) > _MAX_NAMED else "")
        raise GanforgeError(
            f"{len(lonely)} image(s) in '{dir_a}' and '{dir_b}' have no partner of the same name in the other "
            f"folder (e.g. {examples}); pairs are matched by file name without extension."
        )
    keys = sorted(stems_a)
    stack = _PairStack(len(keys), size_rule)
    skipped = []
    for key in keys:
        a, b = read_image(stems_a[key]), read_image(stems_b[key])
        if a is None or b is None:
            skipped.append(stems_a[key] if a is None else stems_b[key])
            continue
        stack.add(a, b, stems_a[key].relative_to(dir_a).as_posix())
    return stack.finish(dir_a.parent, skipped)


class _PairStack:
    """Collects decoded halves, resized to one square size, into preallocated RGB arrays."""

    def __init__(self, capacity: int, size_rule: SizeRule):
        self.capacity, self.size_rule = capacity, size_rule
        self.size = 0
        self.A = self.B = np.empty(0, dtype=np.uint8)
        self.names: list[str] = []
        self.all_gray = True

    def add(self, a: np.ndarray, b: np.ndarray, name: str) -> None:
        if not self.names:
            self.size = int(self.size_rule(b.shape[1]).load)
            self.A = np.empty((self.capacity, 3, self.size, self.size), dtype=np.uint8)
            self.B = np.empty_like(self.A)
        i = len(self.names)
        self.A[i] = resize_square(a, self.size, crop=False)  # a gray half repeats into the 3 channels
        self.B[i] = resize_square(b, self.size, crop=False)
        self.all_gray = self.all_gray and a.shape[0] == 1 and b.shape[0] == 1
        self.names.append(name)

    def finish(self, folder: Path, skipped: list[Path]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        if not self.names:  # every file was skipped
            named = ", ".join(p.name for p in skipped[:_MAX_NAMED]) + (", ..." if len(skipped) > _MAX_NAMED else "")
            raise GanforgeError(f"No readable images in '{folder}' (could not decode {len(skipped)} file(s): "
                                f"{named}).")
        warn_skipped([p.name for p in skipped], folder, stacklevel=3)
        n = len(self.names)
        channels = slice(0, 1) if self.all_gray else slice(0, 3)
        A = torch.from_numpy(np.ascontiguousarray(self.A[:n, channels]))
        B = torch.from_numpy(np.ascontiguousarray(self.B[:n, channels]))
        return A, B, self.names


# ----------------------------------------------------------------------------------------------------
# published pix2pix datasets

PUBLISHED = {
    "facades": ("train, val, test", "CMP Facades, 400 train: photo | label map (BtoA for labels -> photo)"),
    "cityscapes": ("train, val", "Cityscapes, 2975 train: photo | label map (BtoA for labels -> photo)"),
    "maps": ("train, val", "Google Maps, 1096 train: aerial photo | map"),
    "edges2shoes": ("train, val", "UT Zappos50K shoes: edge map | photo"),
    "edges2handbags": ("train, val", "iGAN Amazon handbags: edge map | photo"),
    "night2day": ("train, val, test", "Transient Attributes: night | day (BtoA for day -> night)"),
}


PIX2PIX_SITE = ArchiveSite("pix2pix", "pix2pix", PIX2PIX_URL, "GANFORGE_PIX2PIX_URL", ".tar.gz", "train/...",
                           lambda top: any((top / s).is_dir() for s in SPLITS))
pix2pix_url = PIX2PIX_SITE.url  # the archive URL of a published dataset


def _published(name: str) -> PairedSource:
    def load(root: str | None, split: str, size_rule: SizeRule):
        return read_paired_folder(PIX2PIX_SITE.folder(name, root), split, size_rule)

    splits, about = PUBLISHED[name]
    return PairedSource(load, f"{about}; splits {splits}")


for _name in PUBLISHED:
    PAIRED_DATASETS.register(_name, _published(_name))


def paired_split(source: str, split: str = "test", root: str | None = None, direction: str = "AtoB",
                 derive: str | None = None, size: int = 256, n: int | None = None, with_total: bool = False
                 ) -> tuple:
    """Inputs, names and targets of the first ``n`` pairs (None: all) of a paired dataset split at ``size``
    x ``size`` (no crop, no flip); ``with_total`` adds the number of pairs the split holds."""
    data = load_paired(source, root, split, direction=direction, load_size=size, crop_size=size, flip=False,
                       derive=derive)
    k = len(data) if n is None else min(n, len(data))
    out = list(data.A[:k]), list(data.names[:k]), list(data.B[:k])
    return (*out, len(data)) if with_total else out
