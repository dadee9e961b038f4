"""Reading exported files: the optional packages they need, ONNX sessions and torch.export programs
(refusing archives with pickled parts), and the ganforge metadata inside them. Every failure is one
GanforgeError sentence."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import zipfile
from pathlib import Path

import torch

from ..errors import GanforgeError

SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
META_FORMAT = "ganforge-export"
INSTALL_HINT = "pip install 'ganforge[export]'"
PT2_META_FILE = "ganforge.json"  # the metadata inside a .pt2 archive


# ---------------------------------------------------------------------------------------------- dependencies


def _onnx_modules():
    """(onnxruntime, onnxscript): the optional packages ONNX export needs, or one sentence on installing them."""
    try:
        import onnx  # noqa: F401  (torch.onnx needs it)
        import onnxruntime
        import onnxscript
    except ImportError as e:
        raise GanforgeError(f"Exporting to ONNX needs the optional packages onnx, onnxscript and onnxruntime "
                            f"({e.name or 'one of them'} is missing); install them with {INSTALL_HINT}.") from None
    return onnxruntime, onnxscript


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise GanforgeError(f"Running ONNX files needs the optional package onnxruntime; install it with "
                            f"{INSTALL_HINT}.") from None
    return onnxruntime


# ---------------------------------------------------------------------------------------------- loading files


def load_onnx(path: str | Path, threads: int | None = None):
    """An onnxruntime ``InferenceSession`` (CPU) for the ONNX file at ``path``; a missing, corrupt or truncated
    file raises one GanforgeError sentence instead of onnxruntime's error."""
    ort = _onnxruntime()
    p = Path(path)
    if not p.is_file():
        raise GanforgeError(f"No ONNX file at {str(p)!r}.")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: a broken file is reported below, in one sentence
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(p), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # InvalidProtobuf, InvalidGraph, Fail, RuntimeException ...: all mean "not usable"
        raise GanforgeError(f"{str(p)!r} is not a readable ONNX model; it may be corrupt or truncated "
                            f"({_ort_reason(e)}).") from None


def _ort_reason(e: Exception) -> str:
    found = re.search(r"\[ONNXRuntimeError\] : \d+ : (\w+)", str(e))
    return found.group(1) if found else type(e).__name__


@contextlib.contextmanager
def _quiet(logger_name: str):
    """Silence a logger's warnings (torch.export.load logs a traceback before raising on a broken file)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _pickled_parts(archive: zipfile.ZipFile) -> list[str]:
    """Members of a .pt2 archive that ``torch.export.load`` would unpickle (code could run), as readable names."""
    from torch.export.pt2_archive import constants as c

    found = []
    names = archive.namelist()
    root = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""
    inner = [n[len(root):] if n.startswith(root) else n for n in names]
    if c.ARCHIVE_FORMAT_PATH not in inner:
        return ["the whole archive (a legacy format loaded through pickle)"]
    for full, name in zip(names, inner, strict=True):
        base = name.rsplit("/", 1)[-1]
        if base.startswith((c.CUSTOM_OBJ_FILENAME_PREFIX, c.OPAQUE_OBJ_FILENAME_PREFIX)):
            found.append(name)
        elif name.endswith(".pt") and name.startswith((c.WEIGHTS_DIR, c.CONSTANTS_DIR)):
            found.append(name)  # legacy weights / constants: torch.load with a weights_only=False fallback
        elif name.endswith(".json") and name.startswith((c.WEIGHTS_DIR, c.CONSTANTS_DIR)):
            try:
                config = json.loads(archive.read(full)).get("config", {})
            except (ValueError, AttributeError):
                found.append(name)
                continue
            if any(isinstance(v, dict) and v.get("use_pickle") for v in config.values()):
                found.append(name)
        elif name.startswith(c.SAMPLE_INPUTS_DIR):
            data = archive.read(full)
            if data:
                try:  # torch.export.load retries failures with weights_only=False
                    torch.load(io.BytesIO(data), weights_only=True)
                except Exception:
                    found.append(name)
    return found


def load_pt2(path: str | Path) -> tuple[torch.export.ExportedProgram, dict[str, str]]:
    """(the ExportedProgram, its ganforge metadata) of the .pt2 file at ``path``; a missing, corrupt or
    truncated file, or one with parts that would be unpickled, raises one GanforgeError sentence."""
    p = Path(path)
    if not p.is_file():
        raise GanforgeError(f"No .pt2 file at {str(p)!r}.")
    try:
        with zipfile.ZipFile(p) as archive:
            unsafe = _pickled_parts(archive)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
        raise GanforgeError(f"{str(p)!r} is not a readable torch.export program (.pt2); it may be corrupt or "
                            f"truncated ({type(e).__name__}).") from None
    if unsafe:
        raise GanforgeError(f"{str(p)!r} holds parts that loading would unpickle ({', '.join(unsafe[:3])}), "
                            "which could run code; ganforge does not load it (ganforge export never writes those).")
    extra = {PT2_META_FILE: ""}
    try:
        with _quiet("torch.export"):
            program = torch.export.load(str(p), extra_files=extra)
    except Exception as e:
        raise GanforgeError(f"{str(p)!r} is not a readable torch.export program (.pt2); it may be corrupt or "
                            f"truncated ({type(e).__name__}).") from None
    try:
        meta = json.loads(extra[PT2_META_FILE]) if extra[PT2_META_FILE] else {}
    except ValueError:
        meta = {}
    return program, meta if isinstance(meta, dict) else {}



def read_metadata(path: str | Path) -> tuple[str, dict[str, str]]:
    """(format, the ganforge metadata) of an exported file; one GanforgeError sentence for an unreadable one."""
    p = Path(path)
    by_suffix = {s: f for f, s in SUFFIXES.items()}.get(p.suffix.lower())
    fmt = by_suffix or ("pt2" if _is_zip(p) else "onnx")
    if fmt == "onnx":
        meta = dict(load_onnx(p).get_modelmeta().custom_metadata_map)
    else:
        _, meta = load_pt2(p)
    return fmt, meta


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
