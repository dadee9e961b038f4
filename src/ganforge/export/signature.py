"""What an exported file computes: the pipeline's network behind a fixed tensor signature, its inputs at
check sizes, its dynamic axes, and the metadata written into the file."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from ..pipelines import Pipeline
from ..pipelines.base import TensorSpec
from ..version import __version__
from .files import META_FORMAT

CHECK_BATCHES = (1, 5)
_AXIS_NAMES = {2: "height", 3: "width"}


# ---------------------------------------------------------------------------------------------- the signature


class _Signature(nn.Module):
    """The pipeline's network as a function of its input tensors, in ``input_specs()`` order."""

    def __init__(self, pipe: Pipeline, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.names = [s.name for s in pipe.input_specs()]
        self._forward = _export_forward(pipe)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self._forward(self.net, dict(zip(self.names, inputs, strict=True)))


def _export_forward(pipe: Pipeline):
    """What the graph computes: the pipeline's ``export_forward`` if it has one, else its ``forward``; for
    conditional noise models, labels enter as one-hot rows ("y_soft"), because checking label values
    (``int(y.max())``) cannot be traced."""
    own = getattr(pipe, "export_forward", None)
    if own is not None:
        return own
    if getattr(pipe, "num_classes", 0):
        k = pipe.num_classes

        def with_one_hot(net: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            y = inputs["y"]
            rows = (y.unsqueeze(1) == torch.arange(k, device=y.device)).to(torch.float32)
            return pipe.forward(net, {**{n: v for n, v in inputs.items() if n != "y"}, "y_soft": rows})

        return with_one_hot
    return pipe.forward


def _multiple(pipe: Pipeline) -> int:
    return max(1, int(getattr(pipe, "multiple", 1) or 1))


def _spatial_axes(spec: TensorSpec) -> list[int]:
    return [a for a in spec.dynamic if a > 0]


def _base_size(pipe: Pipeline) -> int | None:
    """The side of the pipeline's example inputs along their spatial axes (None: no spatial axes)."""
    example = pipe.example_inputs(1, 0)
    for spec in pipe.input_specs():
        axes = _spatial_axes(spec)
        if axes:
            return int(example[spec.name].shape[axes[0]])
    return None


def inputs_at(pipe: Pipeline, n: int, seed: int = 0, size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
    """``pipe.example_inputs(n, seed)``, with the spatial axes of its inputs ``size`` (height, width) when given
    (values uniform in the input's range)."""
    inputs = pipe.example_inputs(n, seed)
    if size is None:
        return inputs
    g = torch.Generator().manual_seed(seed + 7919)
    for spec in pipe.input_specs():
        axes = _spatial_axes(spec)
        if not axes:
            continue
        shape = list(inputs[spec.name].shape)
        for axis, side in zip(axes, size, strict=False):
            shape[axis] = side
        lo, hi = spec.range or (-1.0, 1.0)
        inputs[spec.name] = torch.rand(shape, generator=g) * (hi - lo) + lo
    return inputs


def _dynamic_shapes(pipe: Pipeline) -> dict[str, tuple[dict[int, Any], ...]]:
    """torch.export's dynamic_shapes for the inputs: one batch Dim; each spatial axis a Dim times ``multiple``."""
    from torch.export import Dim

    multiple = _multiple(pipe)
    batch = Dim("batch", min=1)
    sides: dict[int, Any] = {}
    shapes = []
    for spec in pipe.input_specs():
        axes: dict[int, Any] = {}
        for axis in spec.dynamic:
            if axis == 0:
                axes[0] = batch
            else:
                if axis not in sides:
                    name = _AXIS_NAMES.get(axis, f"axis{axis}")
                    sides[axis] = Dim(f"{name}_blocks", min=1) * multiple if multiple > 1 else Dim(name, min=1)
                axes[axis] = sides[axis]
        shapes.append(axes)
    return {"inputs": tuple(shapes)}


def _trace_inputs(pipe: Pipeline) -> tuple[torch.Tensor, ...]:
    """Example inputs for tracing: batch 2 (a batch of 1 would pin the batch axis) and spatial sides of at least
    two multiples (so neither is 1 block)."""
    base = _base_size(pipe)
    size = None
    if base is not None:
        side = max(base, 2 * _multiple(pipe))
        size = (side, side)
    inputs = inputs_at(pipe, 2, 0, size)
    return tuple(inputs[s.name] for s in pipe.input_specs())


def check_cases(pipe: Pipeline) -> list[tuple[int, tuple[int, int] | None]]:
    """(batch, spatial size) of the parity checks: batch 1 and 5 at the example size, and for networks with
    spatial axes batch 2 at a second, non-square size (one multiple taller)."""
    base = _base_size(pipe)
    size = None if base is None else (base, base)
    cases = [(n, size) for n in CHECK_BATCHES]
    if base is not None:
        cases.append((2, (base + _multiple(pipe), base)))
    return cases


def _spec_dict(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype,
            "range": list(spec.range) if spec.range is not None else None, "dynamic": list(spec.dynamic)}


def metadata(pipe: Pipeline, ema: bool) -> dict[str, str]:
    """What an exported file records about itself (string -> string; lists and mappings as JSON)."""
    meta: dict[str, Any] = {
        "format": META_FORMAT,
        "ganforge_version": __version__,
        "model": pipe.name,
        "pipeline": pipe.kind,
        "inputs": [_spec_dict(s) for s in pipe.input_specs()],
        "output": _spec_dict(pipe.output_spec()),
        "class_names": list(pipe.class_names) if getattr(pipe, "num_classes", 0) else [],
        "num_classes": getattr(pipe, "num_classes", 0),
        "source_checkpoint": str(pipe.path) if pipe.path is not None else "",
        "source_step": pipe.step if pipe.step is not None else "",
        "ema": "true" if ema else "false",
        "inference_mode": "eval",
    }
    if getattr(pipe, "label_prior", None) is not None:  # self-conditioned: draw y by these shares to sample the data
        meta["label_prior"] = [round(float(p), 8) for p in pipe.label_prior]
    if getattr(pipe, "nz", None) is not None:  # models that generate from a latent z
        meta["latent_size"] = int(pipe.nz)
        meta["latent_distribution"] = str(getattr(pipe, "z_dist", "normal"))
    if any(_spatial_axes(s) for s in pipe.input_specs()):
        meta["spatial_multiple"] = _multiple(pipe)
    if getattr(pipe, "mode", None) is not None:
        meta["default_inference_mode"] = str(pipe.mode)
    if getattr(pipe, "direction", None) is not None:
        meta["direction"] = str(pipe.direction)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


def _differs_by_mode(net: nn.Module) -> bool:
    """Whether eval mode changes what ``net`` computes: it has batch norm, or dropout with p > 0."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) or (isinstance(m, nn.Dropout) and m.p > 0)
               for m in net.modules())


def mode_note(pipe: Pipeline, net: nn.Module | None = None) -> str | None:
    """The one line an export prints about the inference mode of a pipeline that has modes (translation
    networks; None for the others). ``net``: the exported network (default: the pipeline's generator)."""
    mode = getattr(pipe, "mode", None)
    if mode is None:
        return None
    if not _differs_by_mode(net if net is not None else pipe.generator()):
        return ("Exported in eval mode, which equals the reference inference mode for this network (it has no "
                "batch norm and no dropout).")
    reference = ("the reference inference mode (dropout on, each image normalised with its own batch statistics) "
                 "cannot be reproduced by an eval-mode file")
    if mode == "eval":
        return (f"Exported in eval mode (running batch-norm statistics, no dropout), this run's default inference "
                f"mode; {reference}.")
    return (f"Exported in eval mode (running batch-norm statistics, no dropout), not this run's default: "
            f"{reference}, so the file's outputs match `ganforge translate --mode eval`.")


