"""The published super-resolution sets by name: folders of their high-resolution (HR) images.

=============  ====================================================================================
name           what it is, where it is published, what its archive holds
=============  ====================================================================================
Set5           5 test images (baby, bird, butterfly, head, woman; Bevilacqua et al. 2012), as packaged
               for the Hugging Face dataset eugenesiow/Set5:
               https://huggingface.co/datasets/eugenesiow/Set5/resolve/main/data/Set5_HR.tar.gz
               -> ``Set5_HR/baby.png`` ...
Set14          14 test images (baboon, barbara, ..., zebra; Zeyde et al. 2010), eugenesiow/Set14:
               .../eugenesiow/Set14/resolve/main/data/Set14_HR.tar.gz -> ``Set14_HR/baboon.png`` ...
BSD100         the 100 test images of the Berkeley segmentation set BSD300 (Martin et al. 2001),
               eugenesiow/BSD100: .../eugenesiow/BSD100/resolve/main/data/BSD100_HR.tar.gz
               -> ``BSD100_HR/*.png``
DIV2K          the 800 DIV2K training images (Agustsson and Timofte 2017, NTIRE 2017), 2K resolution,
               from ETH Zurich's CVL: https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip
               (several GB) -> ``DIV2K_train_HR/0001.png`` ... ``0800.png``
DIV2K-valid    the 100 DIV2K validation images: .../cvl/DIV2K/DIV2K_valid_HR.zip (hundreds of MB)
               -> ``DIV2K_valid_HR/0801.png`` ... ``0900.png``
=============  ====================================================================================

Only the HR images are fetched: the LR inputs are made from them by ``ganforge.metrics.sr.bicubic_downscale``
(the bicubic degradation of the SR papers, by PIL rather than MATLAB; see that module).

A set is looked for under ``root`` (``--data-root``), then ``$GANFORGE_DATA``: the folder itself when it is
named after the set and holds images, ``<base>/<name>`` holding images (a copy from elsewhere, e.g.
``ROOT/Set5/*.png``), ``<base>/<folder>`` (``<folder>`` is the archive's top folder, e.g. ``Set5_HR``);
then in the cache (``~/.cache/ganforge/data/sr/<folder>``). Otherwise it is downloaded and extracted into
the cache by the code that fetches the pix2pix and CycleGAN datasets
(:class:`~ganforge.data.download.ArchiveSite`: a temporary file renamed when complete, safe extraction, an
archive without the top folder accepted when it holds images at its top; refused with
``GANFORGE_OFFLINE=1``). ``$GANFORGE_SR_URL`` replaces every set's address: a folder URL holding the
archives under their published file names (``Set5_HR.tar.gz``, ``DIV2K_valid_HR.zip``, ...), or a template
with ``{name}`` (the archive's top folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import GanforgeError
from .download import ArchiveSite
from .folders import IMAGE_EXTENSIONS

SR_URL_ENV = "GANFORGE_SR_URL"
HUGGING_FACE = "https://huggingface.co/datasets/eugenesiow/{set}/resolve/main/data/{{name}}.tar.gz"
DIV2K_SITE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/{name}.zip"


@dataclass(frozen=True)
class SRSet:
    """One published set: its name, the folder its archive holds, and where the archive lives."""

    name: str
    folder: str  # the archive's top folder, and the cache folder: "Set5_HR"
    count: int  # images in the set
    about: str
    site: ArchiveSite


def _holds_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def _site(url: str, suffix: str) -> ArchiveSite:
    return ArchiveSite("sr", "super-resolution", url, SR_URL_ENV, suffix, "*.png", _holds_images)


def _hugging_face(name: str, count: int, about: str) -> SRSet:
    return SRSet(name, f"{name}_HR", count, about, _site(HUGGING_FACE.format(set=name), ".tar.gz"))


SR_SETS: dict[str, SRSet] = {s.name: s for s in (
    _hugging_face("Set5", 5, "Bevilacqua et al. 2012: baby, bird, butterfly, head, woman"),
    _hugging_face("Set14", 14, "Zeyde et al. 2010: baboon, barbara, ..., zebra"),
    _hugging_face("BSD100", 100, "the test images of BSD300 (Martin et al. 2001)"),
    SRSet("DIV2K", "DIV2K_train_HR", 800, "NTIRE 2017 training images at 2K (several GB)",
          _site(DIV2K_SITE, ".zip")),
    SRSet("DIV2K-valid", "DIV2K_valid_HR", 100, "NTIRE 2017 validation images at 2K",
          _site(DIV2K_SITE, ".zip")),
)}


def sr_set(name: str) -> SRSet:
    """The published set called ``name`` (case-insensitive), or a GanforgeError listing the known ones."""
    for key, entry in SR_SETS.items():
        if key.lower() == str(name).strip().lower():
            return entry
    raise GanforgeError(f"Unknown super-resolution set {name!r}; choose one of: {', '.join(SR_SETS)}.")


def sr_set_url(name: str) -> str:
    """The archive URL of set ``name`` ($GANFORGE_SR_URL when set)."""
    entry = sr_set(name)
    return entry.site.url(entry.folder)


def sr_set_folder(name: str, root: str | Path | None = None) -> Path:
    """The folder of HR images of the published set ``name`` (see the module docstring for where it is
    looked for), downloading it into the cache when it is found nowhere and downloading is allowed."""
    entry = sr_set(name)
    for base in (Path(p).expanduser() for p in (root, os.environ.get("GANFORGE_DATA")) if p):
        if base.name == entry.name and _holds_images(base):
            return base
        if _holds_images(base / entry.name):
            return base / entry.name
    folder = entry.site.folder(entry.folder, None if root is None else str(root))
    if not _holds_images(folder):
        raise GanforgeError(f"The {entry.name} folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                            f"delete it to download the set again.")
    return folder
