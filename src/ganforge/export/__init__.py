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
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GanforgeError
from ..families import family_of, load
from ..io import write_atomic
from ..pipelines import Pipeline
from ..threads import applies_threads
from .files import (
    META_FORMAT,
    PT2_META_FILE,
    SUFFIXES,
    _onnx_modules,
    load_onnx,
    load_pt2,
    read_metadata,
)
from .signature import (
    _AXIS_NAMES,
    _dynamic_shapes,
    _Signature,
    _spatial_axes,
    _trace_inputs,
    check_cases,
    inputs_at,
    metadata,
    mode_note,
)

FORMATS = ("onnx", "pt2")
TOLERANCE = 1e-4  # max abs difference from PyTorch eager, for outputs in [-1, 1]
ONNX_LIMIT = 1536 * 1024 * 1024  # bytes of weights beyond which ONNX needs external data files


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
    if not family_of(pipe).can("cycle"):
        raise GanforgeError(f"{pipe.source!r} is a {pipe.name} model with one generator; --direction applies to "
                            "models that translate both ways (such as cyclegan).")
    pipe.direction = direction
    return pipe


@applies_threads
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


@applies_threads
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
