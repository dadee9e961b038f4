"""MNIST-format IDX files (MNIST, Fashion-MNIST).

Files are looked for, in order, in ``--data-root``, ``$GANFORGE_DATA``, the Debian package location
(``/usr/share/datasets/<name>``) and ganforge's download cache; when none has them, torchvision
downloads them (needs the internet). Plain and ``.gz`` files are both read.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import GanforgeError
from ..io import cache_dir
from . import DATASETS, ImageData

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(i) for i in range(10)]

SYSTEM_DIRS = [Path("/usr/share/datasets")]  # where Debian's dataset-* packages put their files
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise GanforgeError(f"Cannot read IDX file {str(path)!r}: {e}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GanforgeError(f"{str(path)!r} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - header != count:
        raise GanforgeError(f"IDX file {str(path)!r} is truncated or corrupt (expected {count} values).")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _candidate_dirs(name: str, root: str | None) -> list[Path]:
    bases = [Path(p).expanduser() for p in (root, os.environ.get("GANFORGE_DATA")) if p]
    bases += [*SYSTEM_DIRS, cache_dir("data")]
    out = []
    for b in bases:
        out += [b, b / name, b / _TORCHVISION_DIR[name] / "raw"]
    return out


def _find(name: str, split: str, root: str | None) -> tuple[Path, Path] | None:
    prefix = _SPLIT_PREFIX[split]
    for d in _candidate_dirs(name, root):
        found = []
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            for suffix in ("", ".gz"):
                p = d / f"{prefix}-{kind}{suffix}"
                if p.is_file():
                    found.append(p)
                    break
        if len(found) == 2:
            return found[0], found[1]
    return None


def download(name: str, dest: Path) -> None:
    """Download the IDX files of ``name`` with torchvision into ``dest`` (torchvision checks MD5s)."""
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        for train in (True, False):
            cls(str(dest), train=train, download=True)
    except Exception as e:  # network errors come in many types
        raise GanforgeError(f"Downloading {name} failed ({type(e).__name__}: {e}).") from None


def load_idx_dataset(name: str, root: str | None, split: str, classes: list[str]) -> ImageData:
    if split not in _SPLIT_PREFIX:
        raise GanforgeError(f"Unknown split {split!r} for {name}; choose 'train' or 'test'.")
    found = _find(name, split, root)
    if found is None and os.environ.get("GANFORGE_OFFLINE") != "1":
        download(name, cache_dir("data"))
        found = _find(name, split, root)
    if found is None:
        ways = ["give the folder that holds them with --data-root DIR (or $GANFORGE_DATA)"]
        if name == "fashion-mnist":
            ways.append("install them on Debian/Ubuntu with: apt-get install dataset-fashion-mnist")
        offline = os.environ.get("GANFORGE_OFFLINE") == "1"
        ways.append("unset GANFORGE_OFFLINE to let ganforge download them" if offline
                    else "ganforge downloads them when this machine is online")
        raise GanforgeError(
            f"{name} {split} files ({_SPLIT_PREFIX[split]}-images-idx3-ubyte[.gz]) were not found in "
            f"--data-root, $GANFORGE_DATA, /usr/share/datasets/{name} or {cache_dir('data')}; to get them, "
            f"{'; or '.join(ways)}."
        )
    images, labels = (read_idx(p) for p in found)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise GanforgeError(f"{name} files in {str(found[0].parent)!r} do not form an image/label pair.")
    return ImageData(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                     list(classes), name)


DATASETS.register("fashion-mnist", lambda root, split: load_idx_dataset("fashion-mnist", root, split, FASHION_CLASSES))
DATASETS.register("mnist", lambda root, split: load_idx_dataset("mnist", root, split, DIGITS))
