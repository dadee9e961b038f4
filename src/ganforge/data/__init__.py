"""Datasets, registered by name. Every dataset loads into memory as uint8 images.

A loader returns :class:`ImageData`; :class:`BatchStream` turns it into reproducible batches
(DistributedSampler order, so one process and N processes share the same mechanism).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from ..errors import GanforgeError
from ..registry import Registry

LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G, B: the one colour -> gray conversion (data loading, derived pairs, the
fmnist extractor). Each use makes a float32 tensor of them."""


@dataclass
class ImageData:
    """images: uint8 [N, C, H, W]; labels: int64 [N] or None; class_names: one per label value."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    name: str = ""

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


def _squash(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def resolve_class(value: int | str, names: Sequence[str], what: str = "class") -> int:
    """A class -> its index. An int is an index; text is first a name (case-insensitive), then an index,
    then a name with spaces and punctuation ignored. So with class folders named by numbers, ``"2"``
    is the folder named 2, whatever its index."""
    listing = ", ".join(f"{i} {n}" if n != str(i) else n for i, n in enumerate(names))
    text = str(value).strip()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if 0 <= int(value) < len(names):
            return int(value)
        raise GanforgeError(f"{what.capitalize()} index {int(value)} is out of range; choose one of: {listing}.")
    for i, n in enumerate(names):
        if n.lower() == text.lower():
            return i
    if re.fullmatch(r"-?\d+", text):
        i = int(text)
        if 0 <= i < len(names):
            return i
        raise GanforgeError(f"{what.capitalize()} index {i} is out of range; choose one of: {listing}.")
    matches = [i for i, n in enumerate(names) if _squash(n) == _squash(text) and _squash(text)]
    if len(matches) == 1:
        return matches[0]
    raise GanforgeError(f"Unknown {what} {text!r}; choose one of: {listing} (a name, case-insensitive, or an index).")


# loader(root, split) -> ImageData at the dataset's own size
Loader = Callable[[str | None, str], ImageData]
DATASETS: Registry[Loader] = Registry("dataset")


def convert_images(images: torch.Tensor, image_size: int | None, channels: int | None) -> torch.Tensor:
    """Resize (bilinear, antialiased; never cropped) and convert channels of uint8 [N, C, H, W] images.

    Grayscale -> RGB repeats the channel; RGB -> grayscale uses ITU-R 601 luma weights.
    """
    c = images.shape[1]
    if channels is not None and channels != c:
        if c == 1 and channels == 3:
            images = images.expand(-1, 3, -1, -1).contiguous()
        elif c == 3 and channels == 1:
            w = torch.tensor(LUMA).view(1, 3, 1, 1)
            images = (images.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        else:
            raise GanforgeError(f"Cannot convert {c}-channel images to {channels} channels; use 1 or 3.")
    if image_size is not None and tuple(images.shape[-2:]) != (image_size, image_size):
        out = []
        for chunk in images.split(4096):
            x = F.interpolate(chunk.float(), size=(image_size, image_size), mode="bilinear",
                              antialias=True, align_corners=False)
            out.append(x.round().clamp(0, 255).to(torch.uint8))
        images = torch.cat(out)
    return images


def load_dataset(name: str, root: str | None = None, split: str = "train",
                 image_size: int | None = None, channels: int | None = None) -> ImageData:
    """Load a registered dataset, or a folder of images when ``name`` is a directory."""
    if name in DATASETS:
        data = DATASETS.get(name)(root, split)
    elif Path(name).expanduser().is_dir():
        data = folders.load_image_folder(Path(name).expanduser(), image_size=image_size or 64)
    else:
        raise GanforgeError(
            f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS.names())}, or give a folder of images."
        )
    data.images = convert_images(data.images, image_size, channels)
    return data


class BatchStream:
    """Reproducible batches from in-memory images.

    Batch number ``i`` (counting from the start of training) always holds the same images for a given
    seed, rank and world size, so training can resume mid-epoch exactly. Each epoch's order comes from
    ``DistributedSampler(seed=seed).set_epoch(epoch)``; incomplete final batches are dropped.
    """

    def __init__(self, data: ImageData, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if len(data) < batch_size * world_size:
            raise GanforgeError(
                f"The batch size {batch_size} (x{world_size} processes) is larger than the dataset "
                f"({len(data)} images); use --batch-size {max(1, len(data) // world_size)} or less."
            )
        self.data = data
        self.seed, self.rank = seed, rank
        self.batch_size = batch_size
        self.sampler = DistributedSampler(range(len(data)), num_replicas=world_size, rank=rank,
                                          shuffle=True, seed=seed, drop_last=True)
        self.batches_per_epoch = len(self.sampler) // batch_size
        self._epoch = -1
        self._order: torch.Tensor | None = None

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        """Batch number ``index``: {"image": uint8 [B, C, H, W], "label": int64 [B] (labelled data)}, or
        what ``data.items(indices, generator)`` returns for data that augments per batch (paired data)."""
        epoch, pos = divmod(index, self.batches_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._order = torch.tensor(list(iter(self.sampler)), dtype=torch.long)
            self._epoch = epoch
        take = self._order[pos * self.batch_size:(pos + 1) * self.batch_size]
        items = getattr(self.data, "items", None)
        if items is not None:  # data with its own per-batch augmentation (paired crops/flips), seeded per batch
            g = torch.Generator().manual_seed(((self.seed * 1_000_003 + self.rank) * 1_000_033 + index) % (1 << 64))
            return items(take, g)
        out = {"image": self.data.images[take]}
        if self.data.labels is not None:
            out["label"] = self.data.labels[take]
        return out


# The package's own submodules, imported last (they import the names above): folders (image folders);
# idx registers mnist and fashion-mnist; paired and derived register the paired datasets (facades, ...,
# edges2fashion); toy registers the toy distributions (gaussian1d, ...); unaligned registers the unpaired
# domains of CycleGAN (horse2zebra, ..., fashion2edges).
from . import derived, folders, idx, paired, toy, unaligned  # noqa: E402,F401
