"""How many CPU threads PyTorch uses: one policy (:func:`choose_threads`), applied by every entry point
that computes through :func:`use_threads` (or the ``threads=`` keyword that :func:`applies_threads` adds).

PyTorch starts one intra-op thread per core. When another program keeps a core busy, those threads wait
for each other at every operation: on a 2-core machine with one busy core, a DCGAN step ran 9-14x slower
with 2 threads than with 1. The thread count also changes the floats: a CPU reduction split over another
number of threads adds in another order, so the weights of a run depend on it. The policy, first rule
that applies:

1. ``--threads N`` (``threads=N``): N. For a resumed run that recorded another count this is allowed, and
   said: the continuation is then not bit-identical to an uninterrupted run.
2. The count a run recorded (a resumed run): it continues with it, whatever the load, so that it stays
   bit-identical; said on stderr when other programs leave another number of cores free now.
3. Inside another entry point that already chose (a tool that calls another, the studio's requests):
   its count.
4. ``OMP_NUM_THREADS`` in the environment (torchrun sets it): PyTorch's count from it.
5. ``auto``: the cores that other programs leave free (their CPU use over a quarter of a second), at
   least one. A training run records the count it used (``threads`` in config.json and checkpoints).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .errors import GanforgeError


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


SAMPLE_SECONDS = 0.25  # how long the CPU use of the other programs is watched before training starts
FRESH_SECONDS = 10.0  # a measurement of the free cores this recent is used again (tools called in a loop)


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


_measured: tuple = ()  # (when, how: the functions that measured, free cores) of the last measurement


def free_cores() -> int | None:
    """Cores not kept busy by other programs (at least one), or None where that cannot be known; a
    measurement of the last FRESH_SECONDS is used again."""
    global _measured
    how = (busy_cores, cpu_cores)
    if _measured and _measured[1] == how and time.monotonic() - _measured[0] < FRESH_SECONDS:
        return _measured[2]
    busy = busy_cores()
    cores = cpu_cores()
    free = None if busy is None else max(1, min(cores, int(cores - busy + 0.5)))
    _measured = (time.monotonic(), how, free)
    return free


def parse_threads(text: str | int | None) -> int | None:
    """``--threads``: a positive number, ``auto`` or None (auto)."""
    if text is None or text == "auto":
        return None
    try:
        n = int(text)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(text, bool) or (isinstance(text, float) and text != n):
        raise GanforgeError(f"--threads must be a positive number of CPU threads or auto, got {text!r}.")
    return n


@dataclass(frozen=True)
class ThreadChoice:
    threads: int  # the intra-op thread count to use
    why: str  # given | recorded | inherited | environment | auto | default (nothing known: PyTorch's own)
    note: str | None = None  # one line for stderr about the choice, or None


_active: int | None = None  # the count of the entry point running now (torch's count is per process, too)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def choose_threads(requested: str | int | None = None, recorded: int | None = None) -> ThreadChoice:
    """The policy: the thread count for ``requested`` (``--threads``: a number, auto or None) and the count
    that the run being continued ``recorded`` (None: a new run, or a run of an older version)."""
    n = parse_threads(requested)
    if recorded is not None and (isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < 1):
        recorded = None  # an unreadable record: as an older run without one
    if n is not None:
        note = None
        if recorded is not None and recorded != n:
            note = (f"continuing with --threads {n}, not the {_plural(recorded, 'CPU thread')} this run recorded: "
                    "the continuation will not be bit-identical to an uninterrupted run.")
        return ThreadChoice(n, "given", note)
    if recorded is not None:
        free = free_cores()
        note = None
        if free is not None and free != recorded:
            note = (f"continuing with the {_plural(recorded, 'CPU thread')} this run recorded, so that it stays "
                    f"bit-identical, though {_plural(free, 'core')} {'is' if free == 1 else 'are'} free now "
                    "(--threads N to choose; the continuation is then not bit-identical).")
        return ThreadChoice(recorded, "recorded", note)
    if _active is not None:
        return ThreadChoice(_active, "inherited")
    if os.environ.get("OMP_NUM_THREADS"):
        return ThreadChoice(torch.get_num_threads(), "environment")
    free = free_cores()
    if free is None:
        return ThreadChoice(torch.get_num_threads(), "default")
    n = min(free, torch.get_num_threads())
    cores = cpu_cores()
    note = None
    if n < cores:
        note = (f"training with {_plural(n, 'CPU thread')}: other programs keep {cores - n} of the {cores} cores "
                "busy (--threads N to choose; the run records the count, and a resume continues with it).")
    return ThreadChoice(n, "auto", note)


@contextmanager
def use_threads(requested: str | int | None = None, recorded: int | None = None,
                announce: bool = False) -> Iterator[int]:
    """Run the body with the thread count of :func:`choose_threads` (yielded), then restore torch's count.
    ``announce``: print the choice's note on stderr (training on the CPU, the main process)."""
    global _active
    choice = choose_threads(requested, recorded)
    if announce and choice.note:
        print(f"ganforge: {choice.note}", file=sys.stderr)
    before, outer = torch.get_num_threads(), _active
    if choice.threads != before:
        torch.set_num_threads(choice.threads)
    _active = choice.threads
    try:
        yield choice.threads
    finally:
        _active = outer
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def applies_threads(fn):
    """Give the API function ``fn`` a keyword ``threads=`` (None: auto; see :func:`choose_threads`) and
    run it under :func:`use_threads`."""
    @functools.wraps(fn)
    def run(*args, threads: str | int | None = None, **kwargs):
        with use_threads(threads):
            return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    at = len(params) - (params and params[-1].kind is inspect.Parameter.VAR_KEYWORD)
    params.insert(at, inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation="str | int | None"))
    run.__signature__ = sig.replace(parameters=params)
    return run


def add_threads_option(parser) -> None:
    """``--threads N|auto`` on an argparse parser (every command that computes)."""
    parser.add_argument("--threads", metavar="N|auto", help="CPU threads for PyTorch (default auto: the cores that "
                        "other programs leave free, or what a resumed run recorded; OMP_NUM_THREADS is respected)")


__all__ = ["ThreadChoice", "add_threads_option", "applies_threads", "choose_threads", "cpu_cores", "free_cores",
           "parse_threads", "use_threads"]
