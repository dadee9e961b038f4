"""The data hooks of the families: how each kind of training data is loaded, and which held-out images the
training pictures show. Kept apart from the family list so that a new family can reuse them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..data import convert_images, load_dataset
from ..errors import GanforgeError


def _no_derive(cfg: TrainConfig) -> None:
    if cfg.data.derive:
        raise GanforgeError(f"derive={cfg.data.derive} makes input/target pairs; it applies to paired models such as "
                            f"pix2pix, not to {cfg.model}.")


def image_data(cfg: TrainConfig, split: str, augment: bool = True):
    """Images (and labels) from a dataset name or folder: {"image", "label"} batches."""
    _no_derive(cfg)
    d = cfg.data
    return load_dataset(d.name, d.root, split, d.image_size, d.channels)


def paired_data(cfg: TrainConfig, split: str, augment: bool = True):
    """Aligned input/target pairs {"A", "B"} (a paired dataset, a folder, or pairs derived from images);
    without ``augment`` resized straight to the image size, no crop, no flip."""
    from ..data.paired import load_paired

    d = cfg.data
    load_size, flip = (d.load_size, d.flip) if augment else (d.image_size, False)
    return load_paired(d.name, d.root, split, direction=d.direction, load_size=load_size, crop_size=d.image_size,
                       flip=flip, channels_B=d.channels, derive=d.derive)


def unaligned_data(cfg: TrainConfig, split: str, augment: bool = True):
    """Two unpaired domains {"A", "B"}; without ``augment`` resized to the image size, no crop, no flip."""
    from ..data.unaligned import load_unaligned

    d = cfg.data
    if d.derive:
        raise GanforgeError(f"derive={d.derive} makes input/target pairs for paired models such as pix2pix; "
                            f"{cfg.model} trains on two unpaired domains.")
    load_size, flip = (d.load_size, d.flip) if augment else (d.image_size, False)
    return load_unaligned(d.name, d.root, split, direction=d.direction, load_size=load_size, crop_size=d.image_size,
                          flip=flip, channels=d.channels, serial_batches=d.serial_batches)


def _splits_of(cfg: TrainConfig) -> bool:
    """Whether the data is a folder without split subfolders (it gives its training images for every split)."""
    folder = Path(cfg.data.name).expanduser()
    return folder.is_dir() and not any((folder / s).is_dir() or (folder / "A" / s).is_dir()
                                       for s in ("train", "val", "test"))


def held_out_pairs(cfg: TrainConfig, n: int, train_data, load) -> dict[str, Any]:
    """The first ``n`` items {"A", "B"} (uint8) of the held-out split (test, else val, else train) without
    augmentation, with the training data's size and channels, and "split": the split they come from."""
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_size=train_data.image_size))
    for split in ("test", "val", "train"):
        try:
            data = load(cfg, split, False)
        except GanforgeError:
            continue
        if split != "train" and _splits_of(cfg):
            split = "train"
        return {"A": convert_images(data.A[:n].clone(), None, train_data.channels_A),
                "B": convert_images(data.B[:n].clone(), None, train_data.channels_B), "split": split}
    raise GanforgeError(f"No split of {cfg.data.name!r} could be read for the sample pictures.")


def held_out_photos(cfg: TrainConfig, n: int, train_data, load) -> dict[str, Any]:
    """The first ``n`` images of the test split (else the training split) as RGB uint8 {"A"}: the photos that a
    stylisation run's pictures show."""
    d = cfg.data
    for split in ("test", d.split):
        try:
            data = load_dataset(d.name, d.root, split, d.image_size, 3)
        except GanforgeError:
            continue
        return {"A": data.images[:n].clone(), "split": split}
    raise GanforgeError(f"No images of {d.name!r} could be read for the sample pictures.")
