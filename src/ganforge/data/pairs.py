"""What a source of image pairs is: the size rule it is handed, and the registry of named sources.

The lowest module of paired data: :mod:`ganforge.data.derived` registers its made-up pairs here and
:mod:`ganforge.data.paired` its published datasets and folder layouts, and ``load_paired`` (in
``paired``) looks names up here, so imports between them go one way: paired -> derived -> pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from ..errors import GanforgeError
from ..registry import Registry

SPLITS = ("train", "val", "test")


class Sizes(NamedTuple):
    load: int  # the stored size S
    crop: int  # the training crop (the networks' image size)


SizeRule = Callable[[int], Sizes]
"""Maps a source's own image size to the (load, crop) sizes; sources store images at ``load``."""


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
