"""How many CPU threads PyTorch uses: ``--threads N``, or a choice made from what the machine has free.

PyTorch starts one intra-op thread per core. When another program keeps a core busy, those threads wait
for each other at every operation: on a 2-core machine with one busy core, a DCGAN step ran 9-14x slower
with 2 threads than with 1. ``auto`` takes the cores left free by the other programs (their CPU use over a
quarter of a second before training starts), at least one; an ``OMP_NUM_THREADS`` set in the environment
(torchrun sets it) is respected.
"""

from __future__ import annotations

import os
import time

import torch

from .errors import GanforgeError


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


SAMPLE_SECONDS = 0.25  # how long the CPU use of the other programs is watched before training starts


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """How many cores other programs keep busy now: the machine's non-idle CPU time over ``seconds``
    (Linux /proc/stat; this process sleeps meanwhile), else the 1-minute load average, else None. The
    load average lags by minutes (a job that just ended still counts), so it is only the fallback."""
    def times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    first = times()
    if first is not None:
        time.sleep(seconds)
        second = times()
        if second is not None and second[0] > first[0]:
            total, idle = second[0] - first[0], second[1] - first[1]
            return (os.cpu_count() or 1) * (total - idle) / total
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def free_cores() -> int | None:
    """Cores not kept busy by other programs (at least one), or None where that cannot be known."""
    busy = busy_cores()
    if busy is None:
        return None
    cores = cpu_cores()
    return max(1, min(cores, int(cores - busy + 0.5)))


def parse_threads(text: str | int | None) -> int | None:
    """``--threads``: a positive number, ``auto`` or None (auto)."""
    if text is None or text == "auto":
        return None
    try:
        n = int(text)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise GanforgeError(f"--threads must be a positive number of CPU threads or auto, got {text!r}.")
    return n


def set_threads(requested: str | int | None) -> tuple[int, str]:
    """Set torch's intra-op threads; returns (threads, why): "given", "environment", "auto" or "default"."""
    n = parse_threads(requested)
    if n is not None:
        torch.set_num_threads(n)
        return n, "given"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "environment"
    free = free_cores()
    if free is None:
        return torch.get_num_threads(), "default"
    if free < torch.get_num_threads():
        torch.set_num_threads(free)
    return torch.get_num_threads(), "auto"


def add_threads_option(parser) -> None:
    """``--threads N|auto`` on an argparse parser (the commands that run networks on the CPU)."""
    parser.add_argument("--threads", metavar="N|auto", help="CPU threads for PyTorch (default auto: the cores that "
                        "other programs leave free; OMP_NUM_THREADS is respected)")


__all__ = ["add_threads_option", "cpu_cores", "free_cores", "parse_threads", "set_threads"]
