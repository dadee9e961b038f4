"""What a source of image pairs is: the size rule it is handed, and the registry of named sources; and
what paired (pix2pix) and unaligned (CycleGAN) data share: the option checks, the size rule of
``load_paired`` / ``load_unaligned`` and the stored images with their random crops (:class:`StoredAB`).

The lowest module of paired data: :mod:`ganforge.data.derived` registers its made-up pairs here and
:mod:`ganforge.data.paired` its published datasets and folder layouts, and ``load_paired`` (in
``paired``) looks names up here, so imports between them go one way: paired -> derived -> pairs.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from ..errors import GanforgeError
from ..registry import Registry

SPLITS = ("train", "val", "test")
DIRECTIONS = ("AtoB", "BtoA")
JITTER = 286 / 256  # load_size / crop_size of the reference (resize to 286, random crop 256)


class Sizes(NamedTuple):
    load: int  # the stored size S
    crop: int  # the training crop (the networks' image size)


SizeRule = Callable[[int], Sizes]
"""Maps a source's own image size to the (load, crop) sizes; sources store images at ``load``."""


@dataclass
class ChosenSizes:
    """The size rule of ``load_paired`` and ``load_unaligned``; ``chosen`` keeps the sizes it last returned.

    Without ``crop_size`` the crop is ``load_size`` when given, else the source's own size; without
    ``load_size`` the load is round(crop * 286 / 256) (the reference's jitter) when ``flip`` is on or
    ``crop_size`` was given, else the crop.
    """

    load_size: int | None
    crop_size: int | None
    flip: bool
    chosen: Sizes | None = None

    def __call__(self, own_size: int) -> Sizes:
        crop = self.crop_size if self.crop_size is not None else (
            self.load_size if self.load_size is not None else own_size)
        load = self.load_size
        if load is None:
            load = round(crop * JITTER) if (self.flip or self.crop_size is not None) else crop
        self.chosen = Sizes(int(load), int(crop))
        return self.chosen


def check_load_options(direction: str, load_size: int | None, crop_size: int | None,
                       channels: dict[str, int | None]) -> None:
    """One GanforgeError sentence for an unknown direction, a size that is not a positive whole number, a
    channel count (``{option name: value}``) other than 1 or 3, or a crop larger than the load size."""
    if direction not in DIRECTIONS:
        raise GanforgeError(f"Unknown direction {direction!r}; choose 'AtoB' or 'BtoA'.")
    for label, value in (("load_size", load_size), ("crop_size", crop_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise GanforgeError(f"{label} must be a positive whole number of pixels, not {value!r}.")
    for label, value in channels.items():
        if value not in (None, 1, 3):
            raise GanforgeError(f"{label} must be 1 (grayscale) or 3 (RGB), not {value!r}.")
    if load_size is not None and crop_size is not None and crop_size > load_size:
        raise GanforgeError(f"crop_size {crop_size} is larger than load_size {load_size}; "
                            f"crops are taken from images stored at load_size.")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise GanforgeError(f"Unknown split {split!r}; choose one of: {', '.join(SPLITS)}.")


class StoredAB:
    """What paired and unaligned data share: images A uint8 [Na, Ca, S, S] and B uint8 [Nb, Cb, S, S] stored
    at the load size S, their sizes and channel counts, and random ``crop_size`` crops with flips."""

    A: torch.Tensor
    B: torch.Tensor
    crop_size: int
    flip: bool

    @property
    def image_size(self) -> int:
        return self.crop_size

    @property
    def load_size(self) -> int:
        return self.A.shape[-1]

    @property
    def channels(self) -> int:
        return self.B.shape[1]

    @property
    def channels_A(self) -> int:
        return self.A.shape[1]

    @property
    def channels_B(self) -> int:
        return self.B.shape[1]

    def crops(self, index: torch.Tensor, generator: torch.Generator, *stacks: torch.Tensor) -> list[torch.Tensor]:
        """The same crops of each of ``stacks`` at the images ``index``: uint8 [n, C, crop, crop] each.

        Each index gets a crop corner (top, left) uniform in [0, S - crop] and, when ``flip``, a horizontal
        flip with probability 1/2, drawn from ``generator``: the corners as one [n, 2] draw when S > crop,
        then the flips as one [n] draw. With S == crop and no flip the stored images are returned and
        nothing is drawn.
        """
        s, c, n = self.load_size, self.crop_size, index.numel()
        if s == c and not self.flip:
            return [images[index] for images in stacks]
        corners = torch.randint(0, s - c + 1, (n, 2), generator=generator).tolist() if s > c else [[0, 0]] * n
        flips = (torch.rand(n, generator=generator) < 0.5).tolist() if self.flip else [False] * n
        out = []
        for images in stacks:
            cut = []
            for i, (top, left), flipped in zip(index.tolist(), corners, flips, strict=True):
                crop = images[i, :, top:top + c, left:left + c]
                cut.append(crop.flip(-1) if flipped else crop)
            out.append(torch.stack(cut) if cut else images[:0, :, :c, :c].clone())
        return out


@dataclass
class PairedSource:
    """A registered source of pairs.

    load(root, split, size_rule) -> (A uint8 [N, Ca, S, S], B uint8 [N, Cb, S, S], names), where the
    source finds its own image size s0 and stores S = size_rule(s0).load.
    """

    load: Callable[[str | None, str, SizeRule], tuple[torch.Tensor, torch.Tensor, list[str]]]
    description: str = ""


PAIRED_DATASETS: Registry[PairedSource] = Registry("paired dataset")


def split_folder(folder: Path, split: str) -> Path:
    """``folder/<split>`` when the folder has split subfolders (train, val, test), else ``folder`` itself."""
    present = [s for s in SPLITS if (folder / s).is_dir()]
    if not present:
        return folder
    if split not in present:
        raise GanforgeError(f"'{folder}' has no {split} split; it has: {', '.join(present)}.")
    return folder / split
