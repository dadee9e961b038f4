"""ImageNet weights of the VGG feature networks: found, downloaded (checksum checked) and loaded.

Where a network's weights are looked for, in order:

1. the ``weights`` argument (``--weights FILE``);
2. ``$GANFORGE_WEIGHTS``, the torch hub cache (``torch.hub.get_dir()/checkpoints``, default
   ``~/.cache/torch/hub/checkpoints``, where ``torchvision.models.vgg19(weights=...)`` puts them) and
   ganforge's cache ``$XDG_CACHE_HOME/ganforge/weights``, under torchvision's file names
   (``vgg19-dcbb9e9d.pth``, ``vgg16-397923af.pth``);
3. a download from download.pytorch.org into the torch hub cache, unless ``GANFORGE_OFFLINE=1``. The
   file is written to a temporary name, its SHA-256 must begin with the hash prefix of torchvision's file
   name, and only then is it renamed into place: a failed or wrong download leaves nothing behind.

Files are read with ``torch.load(weights_only=True)`` (or safetensors), never unpickling code. Only the
``features.N.weight`` / ``features.N.bias`` entries are used (the classifier is left out).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..checkpoint import read_state_dict as read_state_dict_file
from ..errors import GanforgeError
from ..io import cache_dir, download_checked

TORCHVISION_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth"}
URL_BASE = "https://download.pytorch.org/models/"
_HASH = re.compile(r"-([0-9a-f]{6,64})\.[a-z]+$")


def hub_dir() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``; default ``~/.cache/torch/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def search_dirs() -> list[Path]:
    env = os.environ.get("GANFORGE_WEIGHTS")
    return ([Path(env).expanduser()] if env else []) + [hub_dir(), cache_dir("weights")]


def hash_prefix(file_name: str) -> str:
    """The SHA-256 prefix in a torchvision file name: ``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``."""
    m = _HASH.search(file_name)
    if not m:
        raise GanforgeError(f"The file name {file_name!r} carries no hash prefix (NAME-HASH.pth) to check a "
                            "download against.")
    return m.group(1)


def download(url: str, dest_dir: Path | None = None) -> Path:
    """Download ``url`` into ``dest_dir`` (default: the torch hub cache) under its own file name, checking
    the SHA-256 against the file name's hash prefix before the file is renamed into place."""
    dest_dir = Path(dest_dir) if dest_dir is not None else hub_dir()
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return download_checked(url, dest_dir / name, hash_prefix(name), "pass --weights FILE")


def find_vgg_weights(arch: str, weights: str | os.PathLike | None = None) -> Path:
    """The weights file of ``arch`` (vgg19 | vgg16): see the module docstring for the order."""
    file_name = TORCHVISION_FILES[arch]
    if weights:
        path = Path(weights).expanduser()
        if path.is_dir():
            path = path / file_name
        if not path.is_file():
            raise GanforgeError(f"The {arch} weights file {str(path)!r} does not exist (torchvision's {file_name} "
                                f"can be downloaded from {URL_BASE}{file_name}).")
        return path
    for d in search_dirs():
        if (d / file_name).is_file():
            return d / file_name
    if os.environ.get("GANFORGE_OFFLINE") == "1":
        places = ", ".join(repr(str(d)) for d in search_dirs())
        raise GanforgeError(f"The {arch} ImageNet weights {file_name} were not found in {places} and "
                            f"GANFORGE_OFFLINE=1 forbids downloading them: get {URL_BASE}{file_name} and put it in "
                            f"{hub_dir()}, pass --weights FILE, or use the offline --network random.")
    return download(URL_BASE + file_name)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth (``torch.load(weights_only=True)``) or .safetensors file."""
    return read_state_dict_file(path)


def load_vgg_weights(net, weights: str | os.PathLike | None = None) -> Path:
    """Load the ImageNet weights of ``net`` (a :class:`~ganforge.style.features.VGGFeatures`) in place;
    returns the file used. Keys may carry a ``module.`` prefix (DataParallel copies)."""
    path = find_vgg_weights(net.arch, weights)
    state = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
    own = net.features.state_dict()
    found = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    missing = sorted(set(own) - set(found))
    wrong = sorted(k for k in own if k in found and tuple(found[k].shape) != tuple(own[k].shape))
    if missing or wrong:
        what = f"lacks features.{missing[0]}" if missing else (
            f"has features.{wrong[0]} of shape {list(found[wrong[0]].shape)}, not {list(own[wrong[0]].shape)}")
        raise GanforgeError(f"{str(path)!r} is not a torchvision {net.arch} state dict: it {what}.")
    net.features.load_state_dict({k: found[k].float() for k in own})
    net.weights_file = str(path)
    return path
