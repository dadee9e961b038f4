"""Export a trained generator as one file that runs without ganforge: ONNX, or a torch.export program (.pt2).

    from ganforge.export import export, load_onnx
    export("runs/demo", "onnx", "dcgan.onnx")          # -> {"path", "bytes", "seconds", "max_abs_diff", ...}
    export("runs/e2f", "pt2", "e2f.pt2", ema=False)
    session = load_onnx("dcgan.onnx")                  # an onnxruntime.InferenceSession, or one GanforgeError

What a file computes is its pipeline's tensor signature (``input_specs()`` -> ``output_spec()``, see
:mod:`ganforge.pipelines`): noise models take z float32 [N, nz] (and y int64 [N], class labels 0..K-1,
for conditional ones) and give images float32 [N, C, H, W] in [-1, 1]; translation models take A
float32 [N, C, H, W] in [-1, 1], H and W multiples of 2^downs, and give B [N, C', H, W] in [-1, 1]; toy
models give points [N, dim]. The batch axis is dynamic, and so are the spatial axes of translation
networks (a ``Dim`` times 2^downs, so only multiples pass). The network runs in eval mode: batch norm
uses its running statistics and dropout is off. pix2pix's reference inference mode (dropout on, each
image normalised with its own batch statistics) cannot be reproduced by an eval-mode file.

Every file is checked before it is kept: it is written under a temporary name, run (onnxruntime for
ONNX, ``torch.export.load`` for .pt2) on fixed inputs at batch 1 and 5 (and at a second, non-square
size for translation networks), and compared with PyTorch eager. A difference beyond ``TOLERANCE``
(max abs, outputs in [-1, 1]; scaled by the largest output for unbounded ones) removes the file and
raises a GanforgeError naming the difference; otherwise it is renamed to ``out``. An existing ``out``
is replaced only with ``force=True``.

Metadata: ONNX files carry it in ``metadata_props`` (onnxruntime: ``get_modelmeta().custom_metadata_map``),
.pt2 files as the extra file ``ganforge.json``; both hold the same string -> string mapping (values
that are lists or mappings are JSON): format, ganforge version, model, pipeline kind, inputs and output
(name, shape with -1 for free axes, dtype, value range, dynamic axes), latent size and distribution,
classes, spatial multiple, source checkpoint and step, EMA or not, inference mode, direction.

A pipeline kind is exported with nothing added when its ``forward(net, inputs)`` can be traced by
``torch.export`` and its signature is stated; it may define ``export_forward(net, inputs)`` for a
traceable variant, ``multiple`` (the factor spatial sides must be a multiple of) when it has dynamic
spatial axes, ``mode`` when it has inference modes, and a settable ``direction`` (choosing the generator
and the signature) when it has several generators.

Safety: ONNX files hold no code. ``torch.export.load`` unpickles some parts of a .pt2 archive (tensor
subclasses, opaque objects, legacy payloads, and sample inputs that fail ``weights_only``);
:func:`load_pt2` refuses archives that hold any of these before loading, so it never unpickles code.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import GanforgeError
from .io import write_atomic
from .pipelines import Pipeline, load
from .pipelines.base import TensorSpec
from .version import __version__

FORMATS = ("onnx", "pt2")
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
TOLERANCE = 1e-4  # max abs difference from PyTorch eager, for outputs in [-1, 1]
CHECK_BATCHES = (1, 5)
META_FORMAT = "ganforge-export"
PT2_META_FILE = "ganforge.json"
ONNX_LIMIT = 1536 * 1024 * 1024  # bytes of weights beyond which ONNX needs external data files
INSTALL_HINT = "pip install 'ganforge[export]'"
_AXIS_NAMES = {2: "height", 3: "width"}


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
    if pipe.samples_from_noise and pipe.num_classes:
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
        "class_names": list(pipe.class_names) if pipe.num_classes else [],
        "num_classes": pipe.num_classes,
        "source_checkpoint": str(pipe.path) if pipe.path is not None else "",
        "source_step": pipe.step if pipe.step is not None else "",
        "ema": "true" if ema else "false",
        "inference_mode": "eval",
    }
    if pipe.samples_from_noise:
        meta["latent_size"] = int(getattr(pipe, "nz", 0) or 0)
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


# ---------------------------------------------------------------------------------------------- writing


@contextlib.contextmanager
def _eval(net: nn.Module):
    """``net`` in eval mode, its modules' training flags restored afterwards."""
    flags = {m: m.training for m in net.modules()}
    net.eval()
    try:
        yield net
    finally:
        for m, training in flags.items():
            m.training = training


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(e).__name__}: {line[:200]}" if line else type(e).__name__


def _tracing(pipe: Pipeline):
    """The tracing context: for networks with spatial axes, sizes are reasoned about size-obliviously. A Dim
    times ``multiple`` is a "phantom" root that torch.export otherwise takes to be at least 2 and guards
    (``side // multiple != 1``), which would refuse sides of one multiple (256 for unet_256). The parity
    check runs at one multiple, so a wrong assumption would fail there."""
    if not any(_spatial_axes(s) for s in pipe.input_specs()):
        return contextlib.nullcontext()
    try:
        from torch.fx.experimental import _config as fx_config

        return fx_config.patch(backed_size_oblivious=True)
    except (ImportError, AttributeError):  # another torch: sides of one multiple may be refused by the check
        return contextlib.nullcontext()


def _export_program(module: _Signature, args: tuple[torch.Tensor, ...], dynamic, what: str):
    try:
        return torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)
    except GanforgeError:
        raise
    except Exception as e:
        raise GanforgeError(f"torch.export could not trace {what} ({_first_line(e)}).") from None


def _write_pt2(module: _Signature, args, dynamic, meta: dict[str, str], path: Path, what: str) -> None:
    program = _export_program(module, args, dynamic, what)
    torch.export.save(program, str(path), extra_files={PT2_META_FILE: json.dumps(meta)})


def _write_onnx(module: _Signature, args, dynamic, meta: dict[str, str], path: Path, what: str,
                pipe: Pipeline) -> None:
    _onnx_modules()
    weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    if weights > ONNX_LIMIT:
        raise GanforgeError(f"{what} has {weights / 2**30:.1f} GiB of weights, more than one ONNX file holds; "
                            "export it as pt2.")
    specs = pipe.input_specs()
    try:
        program = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=dynamic,
                                    input_names=[s.name for s in specs], output_names=[pipe.output_spec().name],
                                    optimize=True, verbose=False)
    except GanforgeError:
        raise
    except Exception as e:
        raise GanforgeError(f"The ONNX exporter could not convert {what} ({_first_line(e)}).") from None
    rename: dict[str, str] = {}
    for value, spec in zip(program.model.graph.inputs, specs, strict=True):
        for axis in spec.dynamic:
            dim = value.shape[axis] if value.shape is not None else None
            old = getattr(dim, "value", None)
            if isinstance(old, str) and old not in rename:
                rename[old] = "batch" if axis == 0 else _AXIS_NAMES.get(axis, f"axis{axis}")
    if rename:
        program.rename_axes(rename)
    program.model.metadata_props.update(meta)
    program.save(str(path), external_data=False)


# ---------------------------------------------------------------------------------------------- checking


def _run_file(fmt: str, path: Path):
    """A function inputs (tuple of CPU tensors) -> output tensor running the file at ``path``."""
    if fmt == "onnx":
        _onnx_modules()
        session = load_onnx(path)
        names = [i.name for i in session.get_inputs()]

        def run_onnx(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
            feed = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
            return torch.from_numpy(np.asarray(session.run(None, feed)[0]))

        return run_onnx
    program, _ = load_pt2(path)
    module = program.module()

    def run_pt2(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run_pt2


def _compare(fmt: str, path: Path, pipe: Pipeline, net: nn.Module, after: str = "; it was not kept",
             seed: int = 0) -> dict[str, Any]:
    """Run the file and PyTorch eager on :func:`check_cases`; raise one sentence (ending in ``after``) when they
    differ."""
    run = _run_file(fmt, path)
    out_spec = pipe.output_spec()
    cases = []
    for n, size in check_cases(pipe):
        inputs = inputs_at(pipe, n, seed, size)
        ordered = tuple(inputs[s.name] for s in pipe.input_specs())
        with torch.no_grad(), _eval(net):
            expected = pipe.forward(net, inputs).float().cpu()
        where = f"batch {n}" + (f" at {size[0]}x{size[1]}" if size else "")
        try:
            got = run(ordered)
        except GanforgeError:
            raise
        except Exception as e:
            raise GanforgeError(f"The exported {fmt} file failed to run on {where} ({_first_line(e)}){after}.") \
                from None
        if tuple(got.shape) != tuple(expected.shape):
            raise GanforgeError(f"The exported {fmt} file gives shape {list(got.shape)} on {where} where PyTorch "
                                f"gives {list(expected.shape)}{after}.")
        scale = max(abs(out_spec.range[0]), abs(out_spec.range[1])) if out_spec.range else \
            max(1.0, float(expected.abs().max()))
        tolerance = TOLERANCE * scale
        diff = float((got.float() - expected).abs().max()) if expected.numel() else 0.0
        if not diff <= tolerance:  # NaN fails too
            raise GanforgeError(f"The exported {fmt} file differs from PyTorch by {diff:.3g} (max abs, {where}), "
                                f"beyond the tolerance {tolerance:.3g}{after}.")
        cases.append({"batch": n, "size": list(size) if size else None, "max_abs_diff": diff,
                      "tolerance": tolerance})
    return {"max_abs_diff": max(c["max_abs_diff"] for c in cases), "cases": cases}


# ---------------------------------------------------------------------------------------------- the API


def _format(fmt: str | None, out: Path) -> str:
    by_suffix = next((f for f, s in SUFFIXES.items() if out.suffix.lower() == s), None)
    if fmt is None:
        if by_suffix is None:
            raise GanforgeError(f"Give --format onnx or pt2 (or an --out ending in .onnx or .pt2), got {str(out)!r}.")
        return by_suffix
    if fmt not in FORMATS:
        raise GanforgeError(f"Unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    if by_suffix is not None and by_suffix != fmt:
        raise GanforgeError(f"--out {str(out)!r} ends in {out.suffix} but the format is {fmt}; "
                            f"name it {out.with_suffix(SUFFIXES[fmt]).name} or choose --format {by_suffix}.")
    return fmt


def _with_direction(pipe: Pipeline, direction: str | None) -> Pipeline:
    """``pipe`` set to translate in ``direction`` (its ``direction`` attribute checks the name)."""
    if direction is None:
        return pipe
    if not hasattr(pipe, "direction"):
        raise GanforgeError(f"{pipe.source!r} is a {pipe.name} model with one generator; --direction applies to "
                            "models that translate both ways (such as cyclegan).")
    pipe.direction = direction
    return pipe


def export(source: str | Path | Pipeline, fmt: str | None, out: str | Path, ema: bool | None = None,
           ckpt: str = "latest", direction: str | None = None, force: bool = False) -> dict[str, Any]:
    """Export the generator of ``source`` (a run folder, a checkpoint folder, or a pipeline object) to ``out``.

    ``fmt``: "onnx" or "pt2" (None: from the suffix of ``out``); ``ema``: the EMA weights (None: when the
    checkpoint has them); ``ckpt``: latest | best | STEP of a run folder; ``direction``: for models with
    several generators. The file is checked against PyTorch before it is kept (module docstring).

    Returns {"path", "format", "bytes", "seconds" (export and check), "max_abs_diff", "tolerance",
    "cases" (one per check), "model", "step", "ema", "inference_mode", "notes" (lines to show the user),
    "metadata"}."""
    out = Path(out)
    if out.is_dir():
        raise GanforgeError(f"--out {str(out)!r} is a folder; give a file name such as "
                            f"{out / ('model' + SUFFIXES.get(fmt or '', '.onnx'))}.")
    fmt = _format(fmt, out)
    if out.exists() and not force:
        raise GanforgeError(f"{str(out)!r} already exists; pass --force to replace it, or choose another --out.")
    if fmt == "onnx":
        _onnx_modules()  # before loading anything: a missing extra is one sentence, at once
    start = time.perf_counter()
    pipe = source if isinstance(source, Pipeline) else load(source, ckpt, "cpu")
    pipe = _with_direction(pipe, direction)
    used_ema = pipe.uses_ema(ema)
    net = pipe.generator(ema)
    if any(t.device.type != "cpu" for t in net.state_dict().values()):
        raise GanforgeError(f"Export runs on the CPU, but {pipe.source!r} is on {pipe.device}; load it with "
                            "device='cpu' or call .to('cpu') first.")
    what = f"the {pipe.name} generator"
    meta = metadata(pipe, used_ema)
    module = _Signature(pipe, net)
    args = _trace_inputs(pipe)
    dynamic = _dynamic_shapes(pipe)
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}

    def write_and_check(tmp: Path) -> None:
        with torch.no_grad(), _eval(module), _tracing(pipe), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporters' notes; the parity check below is what counts
            if fmt == "onnx":
                _write_onnx(module, args, dynamic, meta, tmp, what, pipe)
            else:
                _write_pt2(module, args, dynamic, meta, tmp, what)
        result.update(_compare(fmt, tmp, pipe, net))
        result["bytes"] = tmp.stat().st_size

    try:
        write_atomic(out, write_and_check)
    finally:
        _remove_leftovers(out)
    note = mode_note(pipe, net)
    return {"path": str(out), "format": fmt, "bytes": result["bytes"], "seconds": time.perf_counter() - start,
            "max_abs_diff": result["max_abs_diff"], "tolerance": max(c["tolerance"] for c in result["cases"]),
            "cases": result["cases"], "model": pipe.name, "step": pipe.step, "ema": used_ema,
            "inference_mode": "eval", "notes": [note] if note else [], "metadata": meta}


def _remove_leftovers(out: Path) -> None:
    """Remove side files a failed ONNX save may leave beside the temporary file (external data)."""
    for p in out.parent.glob(f".{out.name}.{os.getpid()}.tmp*"):
        with contextlib.suppress(OSError):
            p.unlink()


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


def check(path: str | Path, source: str | Path | Pipeline | None = None, ckpt: str | None = None) -> dict[str, Any]:
    """Run the parity check of an exported file again, against ``source`` (default: the checkpoint the file
    records, with the EMA choice and direction it records). Returns {"path", "format", "max_abs_diff",
    "tolerance", "cases", "model", "step", "ema"}; a difference beyond the tolerance is one GanforgeError
    sentence (the file is left as it is)."""
    p = Path(path)
    if not p.is_file():
        raise GanforgeError(f"No exported file at {str(p)!r}.")
    fmt, meta = read_metadata(p)
    if meta.get("format") != META_FORMAT:
        raise GanforgeError(f"{str(p)!r} was not written by ganforge export (it has no ganforge metadata), so "
                            "there is nothing to check it against.")
    if source is None:
        source = meta.get("source_checkpoint") or None
        if source is None:
            raise GanforgeError(f"{str(p)!r} records no checkpoint; give the run folder or checkpoint to check it "
                                "against.")
    if ckpt is None:
        step = str(meta.get("source_step", ""))
        ckpt = step if step.isdigit() else "latest"
    pipe = source if isinstance(source, Pipeline) else load(source, ckpt, "cpu")
    pipe = _with_direction(pipe, meta.get("direction") or None)
    if pipe.name != meta.get("model"):
        raise GanforgeError(f"{str(p)!r} holds a {meta.get('model')} generator but {pipe.source!r} is a {pipe.name} "
                            "model.")
    ema = meta.get("ema") == "true"
    start = time.perf_counter()
    result = _compare(fmt, p, pipe, pipe.generator(ema), after="")
    return {"path": str(p), "format": fmt, **result, "seconds": time.perf_counter() - start,
            "tolerance": max(c["tolerance"] for c in result["cases"]), "model": pipe.name, "step": pipe.step,
            "ema": ema}


__all__ = ["FORMATS", "TOLERANCE", "check", "check_cases", "export", "inputs_at", "load_onnx", "load_pt2",
           "metadata", "mode_note", "read_metadata"]
