"""Which floating-point precision a run trains in: one policy, applied where every run is built (build_run).

``precision=auto`` (the CPU presets') takes bf16 autocast only where the hardware computes in bf16:

* a CPU with AVX-512 BF16 or AMX instructions (Zen 4 and later, Sapphire Rapids and later). There the demo's
  step ran 1.2-1.5x faster in bf16 than in fp32 (benchmarks/README.md);
* nowhere else. A CPU without them (AVX2 only, or ARM) emulates bf16 through fp32 conversions. The demo's
  step there ran 12.6x slower in bf16 than in fp32 (1,385 against 110 images/s, 2 threads; benchmarks/README.md).
  GPUs also get fp32 under ``auto``: no GPU has measured the presets in bf16 yet.

``auto`` is resolved when the run is built. The run records the precision it used (config.json, checkpoints),
so a resume continues in that precision.
"""

from __future__ import annotations

import warnings

import torch


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX tiles; PyTorch's own CPU probe)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The concrete precision (fp32, bf16 or fp16) for ``precision`` on ``device``: ``auto`` as the module says;
    the others as given, with a warning for bf16 on a CPU that would emulate it."""
    native = device.type == "cpu" and cpu_has_native_bf16()
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and device.type == "cpu" and not native:
        warnings.warn("ganforge: this CPU has no AVX-512 BF16 or AMX instructions, so bf16 is emulated and trains "
                      "many times slower than fp32 (12.6x for the demo's step on such a machine); use "
                      "precision=auto or fp32 here.", stacklevel=2)
    return precision
