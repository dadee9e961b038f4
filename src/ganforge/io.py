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
