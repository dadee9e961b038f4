"""Published datasets: find one in the usual folders, or download and extract it once into the cache.

pix2pix's datasets come as ``NAME.tar.gz``, CycleGAN's as ``NAME.zip``; both are looked up in
``--data-root``, ``$GANFORGE_DATA`` and the cache, downloaded only when allowed (not with
``GANFORGE_OFFLINE=1``), written to a temporary file renamed when complete, and extracted (by the
caller's safe extractor: no path escapes, no links) into a scratch folder renamed into place, so an
interrupted download never leaves a partial dataset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import GanforgeError
from ..io import cache_dir, write_atomic

_LABEL = {"cyclegan": "CycleGAN"}  # how a kind of dataset is named in messages


def archive_url(env: str, default: str, name: str, suffix: str) -> str:
    """The archive URL of ``name``: ``$ENV`` or ``default``, either a template with ``{name}`` or a folder."""
    template = os.environ.get(env) or default
    if "{name}" in template:
        return template.replace("{name}", name)
    return f"{template.rstrip('/')}/{name}{suffix}"


def published_dataset(name: str, root: str | None, kind: str, url: str, layout: str,
                      extract: Callable[[Path, Path], None], has_layout: Callable[[Path], bool],
                      suffix: str) -> Path:
    """The folder holding published dataset ``name`` of ``kind`` ("pix2pix", "cyclegan"), found in
    --data-root, $GANFORGE_DATA or the cache, else downloaded from ``url`` when allowed. ``layout`` names
    the folders it holds (for the messages); ``has_layout(folder)`` says whether an archive without a
    NAME/ folder holds them at its top."""
    cache = cache_dir("data") / kind
    bases = [Path(p).expanduser() for p in (root, os.environ.get("GANFORGE_DATA")) if p]
    for base in bases:
        if base.name == name and base.is_dir():
            return base
    for base in [*bases, cache]:
        if (base / name).is_dir():
            return base / name
    if os.environ.get("GANFORGE_OFFLINE") == "1":
        verb = "unzip" if suffix == ".zip" else "extract"
        raise GanforgeError(
            f"The {_LABEL.get(kind, kind)} dataset {name!r} was not found in --data-root, $GANFORGE_DATA or "
            f"{cache}, and GANFORGE_OFFLINE=1 forbids downloading it: fetch {url} and {verb} it there (giving "
            f"{name}/{layout}), or unset GANFORGE_OFFLINE to download it."
        )
    return download_dataset(name, cache, kind, url, extract, has_layout, suffix)


def download_dataset(name: str, dest: Path, kind: str, url: str, extract: Callable[[Path, Path], None],
                     has_layout: Callable[[Path], bool], suffix: str) -> Path:
    """Download ``url`` to ``dest/NAME+suffix`` and extract it into ``dest/NAME`` (see the module docstring)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"{name}{suffix}"

    def fetch(part: Path) -> None:
        with open(part, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, f, length=1 << 20)

    if not archive.is_file():
        try:
            write_atomic(archive, fetch, suffix=".part")
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise GanforgeError(f"Downloading the {_LABEL.get(kind, kind)} dataset {name!r} from {url} failed "
                                f"({e}).") from None
    # a folder, not a file, so write_atomic does not apply: extract into a scratch folder, rename it into place
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest))
    try:
        extract(archive, scratch)
        top = scratch / name
        if not top.is_dir():
            if not has_layout(scratch):
                raise GanforgeError(f"The archive {url} holds neither a {name}/ folder nor its split folders.")
            top = scratch
        target = dest / name
        if not target.exists():  # another process may have finished first; either copy is complete
            os.replace(top, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    archive.unlink(missing_ok=True)
    return dest / name
