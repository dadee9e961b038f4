"""Checkpoints: a folder per step, written atomically.

``<run>/checkpoints/step_00001000/`` holds
- ``weights.safetensors``: every network as ``NET.param`` and EMA copies as ``ema.NET.param``;
- ``meta.json``: format, model name and constructor options, task, step, the resolved config;
- ``state.pt``: optimiser, scheduler, grad-scaler and RNG state and data position, plain tensors and
  containers only, read back with ``torch.load(weights_only=True)``.
The folder is written under a temporary name, flushed, then renamed, so a killed process leaves
either the previous checkpoint or the new one, never half of one. Loading never unpickles code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import GanforgeError

FORMAT = "ganforge-checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_file(path: Path, write) -> None:
    write(path)
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    nets: dict[str, nn.Module],
    ema: dict[str, nn.Module],
    meta: dict[str, Any],
    state: dict[str, Any],
    keep: int | None = None,
    name: str | None = None,
) -> Path:
    """Write checkpoint ``name`` (default ``step_%08d``) atomically and keep the newest ``keep`` step folders."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = name or f"step_{step:08d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, group in (("", nets), ("ema.", ema)):
        for net_name, net in group.items():
            for k, v in net.state_dict().items():
                tensors[f"{prefix}{net_name}.{k}"] = v.detach().to("cpu", copy=True).contiguous()
    meta = {"format": FORMAT, "version": VERSION, "step": step, "nets": sorted(nets), "ema": sorted(ema), **meta}
    try:
        tmp.mkdir()
        _write_file(tmp / "weights.safetensors", lambda p: save_file(tensors, str(p), metadata={"format": FORMAT}))
        _write_file(tmp / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
        _write_file(tmp / "state.pt", lambda p: torch.save(state, p))
        _fsync_dir(tmp)
    except (OSError, RuntimeError) as e:  # disk full, quota, I/O error (torch.save raises RuntimeError for them)
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        kept = list_checkpoints(ckpt_root)
        before = f"the previous checkpoint {kept[-1]} is kept" if kept else "no earlier checkpoint exists"
        raise GanforgeError(f"Writing the checkpoint of step {step} into {str(ckpt_root)!r} failed ({reason}; is "
                            f"the disk holding it full?); its temporary files were removed and {before}.") from None
    if final.exists():  # re-saving the same step (e.g. "best"): swap, then remove the old one
        old = ckpt_root / f".old-{name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(ckpt_root)
    if keep is not None:
        for old_step in list_checkpoints(ckpt_root)[:-keep]:
            shutil.rmtree(old_step, ignore_errors=True)
    return final


def remove_stale_temporaries(ckpt_root: Path) -> list[Path]:
    """Remove the temporary folders (``.tmp-NAME-PID``, ``.old-NAME-PID``) that a killed process left in
    ``ckpt_root``, unless their process still runs; returns what was removed."""
    removed = []
    if not ckpt_root.is_dir():
        return removed
    for p in ckpt_root.iterdir():
        m = re.match(r"^\.(tmp|old)-.+-(\d+)$", p.name)
        if not m or not p.is_dir():
            continue
        pid = int(m.group(2))
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # that process is alive (another writer): leave its folder alone
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete step checkpoints in ``ckpt_root``, oldest first."""
    if not ckpt_root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a ganforge run (its config.json or checkpoints)."""
    return (run_dir / "checkpoints").is_dir() or (run_dir / "config.json").is_file()


def resolve_checkpoint(path: str | Path, which: str = "latest") -> Path:
    """A checkpoint folder from a run folder (``which``: latest | best | a step number) or a checkpoint path."""
    path = Path(path)
    if (path / "meta.json").is_file() or (path / "weights.safetensors").is_file():
        return path
    if path.name in ("weights.safetensors", "meta.json", "state.pt") and path.is_file():
        return path.parent
    root = path / "checkpoints"
    if not path.exists():
        raise GanforgeError(f"No run folder or checkpoint at {str(path)!r}.")
    steps = list_checkpoints(root)
    if which == "latest":
        if not steps:
            raise GanforgeError(f"{str(path)!r} holds no checkpoint (expected {str(root)}/step_*/).")
        return steps[-1]
    if which == "best":
        if not (root / "best").is_dir():
            raise GanforgeError(f"{str(path)!r} has no 'best' checkpoint (it is kept when evaluation runs).")
        return root / "best"
    if str(which).isdigit():
        p = root / f"step_{int(which):08d}"
        if not p.is_dir():
            have = ", ".join(str(int(s.name[5:])) for s in steps) or "none"
            raise GanforgeError(f"{str(path)!r} has no checkpoint at step {which}; it has: {have}.")
        return p
    raise GanforgeError(f"Unknown checkpoint {which!r}; use latest, best or a step number.")


@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]
    weights: dict[str, dict[str, torch.Tensor]]  # "G" -> state_dict, "ema.G" -> state_dict

    def state(self) -> dict[str, Any]:
        """Optimiser / RNG / data-position state (loaded with weights_only=True)."""
        p = self.path / "state.pt"
        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, unpickling refused, missing file
            raise GanforgeError(f"Training state {str(p)!r} is missing or corrupt ({type(e).__name__}).") from None


def load_checkpoint(path: str | Path, which: str = "latest") -> Checkpoint:
    """Read a checkpoint's metadata and weights; every failure is one GanforgeError sentence."""
    ckpt = resolve_checkpoint(path, which)
    try:
        meta = json.loads((ckpt / "meta.json").read_text())
    except (OSError, ValueError) as e:
        raise GanforgeError(f"Checkpoint metadata {str(ckpt / 'meta.json')!r} is missing or corrupt ({e}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GanforgeError(f"{str(ckpt)!r} is not a ganforge checkpoint.")
    for field, kind in (("model", str), ("model_options", dict), ("config", dict), ("dataset", dict)):
        if field in meta and not isinstance(meta[field], kind):
            raise GanforgeError(f"Checkpoint metadata {str(ckpt / 'meta.json')!r} is corrupt ({field} is not a "
                                f"{'string' if kind is str else 'mapping'}).")
    try:
        flat = load_file(str(ckpt / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise GanforgeError(f"Checkpoint weights {str(ckpt / 'weights.safetensors')!r} are corrupt or "
                            f"truncated ({e}).") from None
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if head == "ema":
            net, _, rest = rest.partition(".")
            head = f"ema.{net}"
        weights.setdefault(head, {})[rest] = value
    return Checkpoint(ckpt, meta, weights)


def read_state_dict(path: str | Path, what: str = "a state dict of weights") -> dict[str, Any]:
    """A plain state dict from a ``.pth`` / ``.pt`` file (``torch.load(weights_only=True)``: never unpickling
    code) or a ``.safetensors`` file; every failure is one GanforgeError sentence, and a pickled module
    (``torch.save(netG)``) is named as what it is."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"No file at {str(path)!r}; give {what}.")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds (pickle, zip, unsupported global): all mean "not usable"
        pickled = pickled_class(path)
        if pickled is not None and pickled.rpartition(".")[2][:1].isupper():  # a class: an object of code
            raise GanforgeError(
                f"{str(path)!r} holds a pickled {pickled} object (saved with torch.save(net)), not {what}; it is "
                "refused on purpose, since loading a pickled module runs code from the file; save the weights "
                "instead with torch.save(net.state_dict(), path) and give that file.") from None
        if pickled is not None:  # a function the pickle would call
            raise GanforgeError(f"Could not read {str(path)!r} as {what}: its pickle would call {pickled}, and code "
                                "from a file is never run; save plain weights with torch.save(net.state_dict(), "
                                "path).") from None
        raise GanforgeError(f"Could not read {str(path)!r} as {what} ({type(e).__name__}); is it a complete .pth "
                            "file saved with torch.save(net.state_dict(), path)?") from None
    if not isinstance(state, dict):
        raise GanforgeError(f"{str(path)!r} holds a {type(state).__name__}, not {what}.")
    return state


# what a state dict's pickle may name: tensors, storages, dtypes, containers (anything else is code)
_DATA_GLOBALS = ("torch._utils.", "torch.serialization.", "collections.OrderedDict", "_codecs.encode", "torch.Size",
                 "torch.device", "torch.float", "torch.bfloat16", "torch.half", "torch.int", "torch.uint8",
                 "torch.bool", "numpy.core.multiarray.", "numpy._core.multiarray.", "numpy.dtype", "numpy.ndarray")


def pickled_class(path: str | Path) -> str | None:
    """The first class or function other than those of tensors and containers that a torch.save file's
    pickle names (e.g. ``torch.nn.modules.container.Sequential`` for ``torch.save(net)``), read from the
    pickle's opcodes without running them; None when it names none or is not such a file."""
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"))
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            name = None
            if op.name == "GLOBAL":
                name = str(arg).replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            elif isinstance(arg, str):
                strings.append(arg)
            if name and not (name.startswith(_DATA_GLOBALS) or name.endswith("Storage")):
                return name
    except Exception:  # not a zip holding a pickle, or a pickle that cannot be walked: nothing to name
        return None
    return None


def weights_origin(step: int | None, source: str | Path | None = None) -> str:
    """Where weights come from, for messages: ``step 1200``, or for a file that records no step (a plain
    state dict, ``netG_epoch_N.pth`` of pytorch/examples' DCGAN) what the file is."""
    if step is not None:
        return f"step {step}"
    name = Path(str(source)).name if source else "the file"
    return f"{name}, a reference state dict of pytorch/examples' DCGAN without a training step"


def load_state_into(net: nn.Module, state_dict: dict[str, torch.Tensor], what: str, source: Path) -> None:
    """``net.load_state_dict`` with a one-sentence error naming the mismatch."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or shapes:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {shapes[0]} is {tuple(state_dict[shapes[0]].shape)}, "
                       f"expected {tuple(own[shapes[0]].shape)}")
        raise GanforgeError(f"The weights of {what} in {str(source)!r} do not fit the network ({detail}); "
                            "was it saved for another model or other options?")
    net.load_state_dict(state_dict)
