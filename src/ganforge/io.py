"""Files: atomic writes, the cache folder, and the one wording of "skipped unreadable files".

Everything ganforge writes that a reader may open while it is written (JSON records, pictures, cached
statistics) goes to a temporary file in the same folder first and is renamed over the target, so a
killed process leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, write: Callable[[Path], None], suffix: str | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    ``suffix`` is the temporary file's extension (default: the target's), for writers that choose the
    format by extension (PIL, numpy). The temporary file is removed if ``write`` fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix if suffix is not None else path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically."""
    return write_atomic(path, lambda p: p.write_text(json.dumps(obj, indent=indent)))


def cache_dir(kind: str) -> Path:
    """``$XDG_CACHE_HOME/ganforge/KIND`` (default ``~/.cache/ganforge/KIND``): data, weights, stats."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganforge" / kind


def skipped_message(names: Sequence[str], where: str | Path | None = None, shown: int = 5) -> str:
    """'Skipped 3 unreadable image files in DIR: a.png, b.png, c.png' (one wording everywhere)."""
    n = len(names)
    what = "unreadable image file" if n == 1 else "unreadable image files"
    place = f" in {where}" if where is not None else ""
    more = f" and {n - shown} more" if n > shown else ""
    return f"Skipped {n} {what}{place}: {', '.join(str(x) for x in names[:shown])}{more}"


def warn_skipped(names: Sequence[str], where: str | Path | None = None, stacklevel: int = 2) -> None:
    """Warn once (UserWarning) with :func:`skipped_message` when ``names`` is not empty.

    ``stacklevel`` counts from the caller, as in ``warnings.warn``: the default 2 names the line that
    called the function calling this one."""
    if names:
        warnings.warn(skipped_message(names, where), UserWarning, stacklevel=stacklevel + 1)


def check_writable_parent(path: str | Path, what: str) -> None:
    """Raise one GanforgeError sentence when ``path`` cannot be created: a file stands where one of its
    folders must be, or the nearest existing folder above it is not writable. Nothing is created."""
    from .errors import GanforgeError

    path = Path(path).expanduser()
    for parent in [path, *path.parents]:
        if parent.exists():
            if parent != path and not parent.is_dir():
                raise GanforgeError(f"{what} {str(path)!r} lies under {str(parent)!r}, which is a file, not a folder.")
            folder = parent if parent.is_dir() else parent.parent
            if not os.access(folder, os.W_OK | os.X_OK):
                raise GanforgeError(f"{what} {str(path)!r} cannot be written: the folder {str(folder)!r} is read-only.")
            return


def download_checked(url: str, dest: Path, sha256_prefix: str, put_instead: str, size_note: str = "") -> Path:
    """Download ``url`` to the file ``dest``: streamed into a temporary file beside it, its SHA-256 checked
    against ``sha256_prefix`` before the rename, so a failed or mismatching download leaves nothing behind.
    ``put_instead`` ends the error sentences: what the user can do instead (e.g. "pass --weights FILE")."""
    import hashlib
    import sys
    import urllib.request

    from .errors import GanforgeError

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GanforgeError(f"Cannot create the folder {str(dest.parent)!r} ({e}).") from None
    print(f"ganforge: downloading {dest.name}{size_note} from {url} into {dest.parent}", file=sys.stderr)

    def fetch(tmp: Path) -> None:
        digest = hashlib.sha256()
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        if not sha.startswith(sha256_prefix):
            raise GanforgeError(f"The download from {url} has SHA-256 {sha[:16]}..., not {sha256_prefix}..., so it "
                                f"was discarded; put a good copy of {dest.name} in {dest.parent} or {put_instead}.")

    try:
        return write_atomic(dest, fetch, suffix=".part")
    except GanforgeError:
        raise
    except Exception as e:  # network and disk errors come in many types
        raise GanforgeError(f"Downloading {url} failed ({type(e).__name__}: {e}); download {dest.name} yourself "
                            f"and put it in {dest.parent}, or {put_instead}.") from None
