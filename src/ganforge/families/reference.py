"""What the reference importers share: how the files of a two-generator (CycleGAN) checkpoint are told apart
from a one-generator one, and the sibling file of a generator."""

from __future__ import annotations

import re
from pathlib import Path

from .base import ReferenceFiles


def is_two_way(files: ReferenceFiles) -> bool:
    """Whether reference files are one of a pair of generators: a second file given, a ResNet netG (the
    CycleGAN generator), or a name latest_net_G_A.pth / latest_net_G_B.pth."""
    name = files.path.name if files.path is not None else ""
    return files.path_B is not None or files.path is None or str(files.options.get("netG") or "").startswith(
        "resnet") or re.search(r"net_G_[AB]\.pth$", name) is not None


def sibling_G_B(path_A: Path) -> Path | None:
    """``latest_net_G_B.pth`` beside ``latest_net_G_A.pth``, when it is there."""
    if not re.search(r"net_G_A\.pth$", path_A.name):
        return None
    sibling = path_A.with_name(re.sub(r"net_G_A\.pth$", "net_G_B.pth", path_A.name))
    return sibling if sibling.is_file() else None
