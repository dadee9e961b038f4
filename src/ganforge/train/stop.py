"""Ending a run early and cleanly: a stop request, set by code or by Ctrl-C / SIGTERM.

``trainer.request_stop()`` may be called from any thread (a studio's button, a subscriber of the
training events): the run ends after the step in progress, with a checkpoint of that step and the final
pictures, and ``trainer.stopped_by`` says why ("request", "SIGINT" or "SIGTERM"; "time" when the trainer
itself asked because the run's ``max_minutes`` had passed). While ``fit`` runs in
the main thread, SIGINT and SIGTERM make the same request; the handlers in place before are restored
when ``fit`` returns. A second signal more than a second after the first raises KeyboardInterrupt at
once (the last complete checkpoint is kept; checkpoints are written atomically). Signals closer together
count once: under torchrun a Ctrl-C reaches every rank twice, from the terminal and from the launcher.

With several processes the ranks must stop at the same step: each step every rank contributes its
request to an all-reduce (maximum) on gloo (the default group, or a side group beside NCCL), started
without waiting and read one step
later, so a request made on any rank stops all of them at the same step, one step after it is seen, and
no step waits on another rank.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from .distributed import DistInfo

# stop codes 1 to 4; under DDP the largest code of any rank wins. "time": the run's max_minutes have passed (the
# trainer asks, each rank by its own clock; the first rank over the budget stops them all at the same step)
REASONS = ("time", "request", "SIGINT", "SIGTERM")
REPEAT_SECONDS = 1.0  # a second signal later than this after the first quits at once
NOTICE = b"ganforge: stopping after this step with a checkpoint (press Ctrl-C again to quit at once)\n"


class StopRequest:
    """The stop request of one training run (see the module docstring)."""

    def __init__(self, info: DistInfo) -> None:
        self.code = 0  # 0: no request, else 1 + REASONS.index(reason); one int store, safe from any thread
        self.info = info
        self._first_signal: float | None = None
        self._group = None
        if info.enabled:
            # CPU tensors need gloo: the default group when it is gloo (a second group made after a torchrun
            # restart could meet the first attempt's addresses in the store); a gloo side group beside NCCL
            self._group = dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        self._buffer = torch.zeros(1, dtype=torch.int32)
        self._pending = None

    def request(self, reason: str = "request") -> None:
        """Ask the run to stop after the current step; the first reason given is kept."""
        if reason not in REASONS:
            raise ValueError(f"unknown stop reason {reason!r}; the reasons are: {', '.join(REASONS)}")
        if not self.code:
            self.code = 1 + REASONS.index(reason)

    def agreed(self) -> str | None:
        """Called once per step on every rank: the reason to stop now, the same on every rank, or None."""
        if self._group is None:
            return REASONS[self.code - 1] if self.code else None
        if self._pending is not None:
            self._pending.wait()
            self._pending = None
            code = int(self._buffer[0])
            if code:
                return REASONS[code - 1]
        self._buffer[0] = self.code
        self._pending = dist.all_reduce(self._buffer, op=dist.ReduceOp.MAX, group=self._group, async_op=True)
        return None

    def finish(self) -> None:
        """Wait for the last exchange (every rank started the same ones) once the loop has ended."""
        if self._pending is not None:
            self._pending.wait()
            self._pending = None

    @contextmanager
    def signals(self, announce: bool) -> Iterator[None]:
        """SIGINT and SIGTERM request a stop inside this block (main thread only; elsewhere it does nothing);
        ``announce`` writes one line to stderr at the first signal."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame) -> None:
            now = time.monotonic()
            if self._first_signal is not None and now - self._first_signal > REPEAT_SECONDS:
                raise KeyboardInterrupt
            if self._first_signal is None:
                self._first_signal = now
                if announce:
                    os.write(2, NOTICE)  # not print(): the signal may arrive inside a write to sys.stderr
            self.request(signal.Signals(signum).name)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
