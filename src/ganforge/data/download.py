"""Published datasets: find one in the usual folders, or download and extract it once into the cache.

pix2pix's datasets come as ``NAME.tar.gz``, CycleGAN's as ``NAME.zip``; an :class:`ArchiveSite` says
where one kind lives. Both are looked up in ``--data-root``, ``$GANFORGE_DATA`` and the cache, downloaded
only when allowed (not with ``GANFORGE_OFFLINE=1``), written to a temporary file renamed when complete,
and extracted (safely: no path escapes, no links) into a scratch folder renamed into place, so an
interrupted download never leaves a partial dataset.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import GanforgeError
from ..io import cache_dir, write_atomic


@dataclass(frozen=True)
class ArchiveSite:
    """Where the published datasets of one kind live and what their archives hold."""

    kind: str  # "pix2pix", "cyclegan": the cache subfolder
    label: str  # how the kind is named in messages ("pix2pix", "CycleGAN")
    default_url: str  # a template with {name}, or the folder holding NAME + suffix
    env: str  # the environment variable that replaces default_url
    suffix: str  # ".tar.gz" (extracted by safe_extract_tar) or ".zip" (by safe_extract_zip)
    layout: str  # the folders NAME/ holds, for the messages ("train/...")
    has_layout: Callable[[Path], bool]  # whether an archive without a NAME/ folder holds them at its top

    def url(self, name: str) -> str:
        """The archive URL of ``name``: ``$ENV`` or the default, either a template with ``{name}`` or a folder."""
        template = os.environ.get(self.env) or self.default_url
        if "{name}" in template:
            return template.replace("{name}", name)
        return f"{template.rstrip('/')}/{name}{self.suffix}"

    def folder(self, name: str, root: str | None = None) -> Path:
        """The folder holding published dataset ``name``, found in --data-root, $GANFORGE_DATA or the cache,
        else downloaded into the cache when allowed."""
        cache = cache_dir("data") / self.kind
        bases = [Path(p).expanduser() for p in (root, os.environ.get("GANFORGE_DATA")) if p]
        for base in bases:
            if base.name == name and base.is_dir():
                return base
        for base in [*bases, cache]:
            if (base / name).is_dir():
                return base / name
        if os.environ.get("GANFORGE_OFFLINE") == "1":
            verb = "unzip" if self.suffix == ".zip" else "extract"
            raise GanforgeError(
                f"The {self.label} dataset {name!r} was not found in --data-root, $GANFORGE_DATA or {cache}, and "
                f"GANFORGE_OFFLINE=1 forbids downloading it: fetch {self.url(name)} and {verb} it there (giving "
                f"{name}/{self.layout}), or unset GANFORGE_OFFLINE to download it."
            )
        return self.download(name, cache)

    def download(self, name: str, dest: Path) -> Path:
        """Download ``NAME+suffix`` into ``dest`` and extract it into ``dest/NAME`` (see the module docstring)."""
        url = self.url(name)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        archive = dest / f"{name}{self.suffix}"

        def fetch(part: Path) -> None:
            with open(part, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, f, length=1 << 20)

        if not archive.is_file():
            try:
                write_atomic(archive, fetch, suffix=".part")
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise GanforgeError(f"Downloading the {self.label} dataset {name!r} from {url} failed ({e}).") from None
        # a folder, not a file, so write_atomic does not apply: extract into a scratch folder, rename it into place
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest))
        try:
            (safe_extract_zip if self.suffix == ".zip" else safe_extract_tar)(archive, scratch)
            top = scratch / name
            if not top.is_dir():
                if not self.has_layout(scratch):
                    raise GanforgeError(f"The archive {url} holds neither a {name}/ folder nor its split folders.")
                top = scratch
            target = dest / name
            if not target.exists():  # another process may have finished first; either copy is complete
                os.replace(top, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        archive.unlink(missing_ok=True)
        return dest / name


def _member_parts(archive: Path, member: str) -> tuple[str, ...]:
    """The path parts of an archive member; a GanforgeError for absolute paths, ``..`` parts and drive letters."""
    name = member.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise GanforgeError(f"Refusing to extract {Path(archive).name}: member {member!r} would be written outside "
                            f"the target folder.")
    return parts


def safe_extract_tar(archive: Path, dest: Path) -> None:
    """Extract the regular files and folders of a tar archive, refusing absolute or ``..`` paths (before
    writing anything)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            for m in tar.getmembers():
                _member_parts(archive, m.name)
                if m.isfile() or m.isdir():
                    members.append(m)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # Python < 3.11.4 / 3.10.12: the checks above are the protection
                tar.extractall(dest, members=members)  # noqa: S202
    except (tarfile.TarError, OSError, EOFError) as e:
        raise GanforgeError(f"Cannot extract {archive} ({e}); delete it to download it again.") from None


def safe_extract_zip(archive: Path, dest: Path) -> None:
    """Extract the regular files and folders of a zip archive into ``dest``.

    Refused (GanforgeError): absolute member paths, ``..`` parts and drive letters. Skipped: symbolic links
    (never created, so no later member can be written through one) and macOS ``__MACOSX/`` metadata."""
    dest = Path(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                parts = _member_parts(archive, info.filename)
                if not parts or parts[0] == "__MACOSX" or stat.S_ISLNK(info.external_attr >> 16):
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, length=1 << 20)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise GanforgeError(f"Cannot extract {archive} ({e}); delete it to download it again.") from None
