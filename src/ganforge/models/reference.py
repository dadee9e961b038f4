"""State dicts of the junyanz reference networks (pix2pix/CycleGAN ``latest_net_*.pth``) made to fit ours.

What the U-Net, ResNet and PatchGAN importers share: :func:`reference_state` (drop ``module.``
prefixes, check that every entry is a tensor), :class:`ReferenceKeys` (rename by a table of module
paths, then check against the state dict our network expects, naming keys as the file spells them),
:func:`fit_state_dict` (patch what old or norm-less checkpoints lack) and the warning for the
instance-norm statistics that PyTorch < 0.4 saved.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import GanforgeError

STATS = ("running_mean", "running_var", "num_batches_tracked")  # a norm's buffers, not weights


def strip_dataparallel_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix that (Distributed)DataParallel puts before every key."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def check_tensors(state: Mapping, what: str) -> None:
    """A state dict maps names to tensors; anything else is not a checkpoint of ``what``."""
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise GanforgeError(
                f"This is not a state dict of {what}: entry {key!r} holds a {type(value).__name__}, not a tensor."
            )


def reference_state(state_dict: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """``state_dict`` without DataParallel prefixes, every entry checked to be a tensor (see above)."""
    state = strip_dataparallel_prefix(state_dict)
    check_tensors(state, what)
    return state


def warn_ignored_statistics(count: int, stacklevel: int = 3) -> None:
    """Say that ``count`` running-statistics entries of instance norms (PyTorch < 0.4) are left out."""
    warnings.warn(f"ganforge: ignoring {count} running-statistics entries of instance norms in this checkpoint "
                  "(saved by PyTorch < 0.4); instance norm uses each image's own statistics, as the reference does "
                  "now.", UserWarning, stacklevel=stacklevel)


def fit_state_dict(state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor], norm: str,
                   norm_modules: set[str], what: str, hint: str = "",
                   display: Callable[[str], str] = str) -> dict[str, torch.Tensor]:
    """Check ``state`` (keys already renamed) against ``expected`` (a module's state_dict) and patch old forms.

    Patched: running statistics that old torch versions saved for instance norms are dropped; a batch
    norm without ``num_batches_tracked`` gets 0; with ``norm="none"``, conv biases the reference leaves
    out are filled with zeros. Anything else missing, left over or of another shape raises a GanforgeError
    naming ``what`` (e.g. "netG unet_256 with batch norm") and the key as ``display`` spells it (the
    checkpoint's own name), ending with ``hint``.
    """
    out = {}
    for key, value in state.items():
        module, _, name = key.rpartition(".")
        if module in norm_modules and name in STATS and key not in expected:
            continue  # instance-norm statistics of torch < 0.4, or batch stats under another norm: not weights
        out[key] = value
    for key, value in expected.items():
        if key in out:
            continue
        if key.endswith(".num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        elif norm == "none" and key.endswith(".bias") and key[: -len("bias")] + "weight" in out:
            out[key] = torch.zeros(value.shape, dtype=out[key[: -len("bias")] + "weight"].dtype)
    missing = [k for k in expected if k not in out]
    unexpected = [k for k in out if k not in expected]
    if missing or unexpected:
        problem = (f"it lacks {display(missing[0])!r}" if missing
                   else f"it has the unexpected entry {display(unexpected[0])!r}")
        raise GanforgeError(f"This checkpoint does not fit {what}: {problem}{hint}.")
    for key, value in expected.items():
        if tuple(out[key].shape) != tuple(value.shape):
            raise GanforgeError(
                f"This checkpoint does not fit {what}: {display(key)!r} has shape {list(out[key].shape)}, "
                f"expected {list(value.shape)}{hint}."
            )
    return out


@dataclass
class ReferenceKeys:
    """A key map (reference module path -> module path here) and the network it is read for.

    ``what`` names that network in messages (e.g. "netG resnet_9blocks with instance norm"); ``hint``
    ends each message (e.g. "; it looks like netG resnet_6blocks").
    """

    table: dict[str, str]
    what: str
    hint: str = ""

    def rename(self, state: Mapping[str, torch.Tensor], required: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """``state`` with every key renamed by the table; ``required`` (names here) must be 4-D conv weights.
        An entry the table lacks, or a missing required weight, raises a GanforgeError."""
        renamed = {}
        for key, value in state.items():
            module, _, name = key.rpartition(".")
            if module not in self.table:
                raise GanforgeError(f"This checkpoint does not fit {self.what}: it has the unexpected entry "
                                    f"{key!r}{self.hint}.")
            renamed[f"{self.table[module]}.{name}"] = value
        for key in required:
            if key not in renamed or renamed[key].dim() != 4:
                missing = next(k for k, v in self.table.items() if v == key.rpartition(".")[0]) + ".weight"
                raise GanforgeError(f"This checkpoint does not fit {self.what}: it lacks {missing!r}{self.hint}.")
        return renamed

    def reference_name(self, key: str) -> str:
        """A key here as the reference spells it."""
        reverse = {v: k for k, v in self.table.items()}
        module, _, name = key.rpartition(".")
        return f"{reverse.get(module, module)}.{name}"

    def fit(self, renamed: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor], norm: str,
            norm_modules: set[str]) -> dict[str, torch.Tensor]:
        """:func:`fit_state_dict` of the renamed state, naming keys in messages as the reference does."""
        return fit_state_dict(renamed, expected, norm, norm_modules, self.what, self.hint, self.reference_name)
