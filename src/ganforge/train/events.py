"""What a training run tells its listeners: five events, and subscribers that anyone can add.

The trainer emits, on the main process (rank 0) only:

    on_step(step)               after every training step; keep it cheap (the progress bar ticks here)
    on_log(row)                 a metrics row {"step": int, "loss_D": float, ...}: every ``log_every``
                                steps, at the last step, at a stop, and after each evaluation
    on_sample(path, step)       the sample picture of ``step`` was written to ``path`` (PNG)
    on_checkpoint(path, step)   the checkpoint folder ``path`` (step_N or best) of ``step`` was written
    on_end(summary)             training ended, after the final checkpoint, pictures and the task's
                                on_end: {"run_dir", "step", "total_steps", "stopped_by", "checkpoint"}

Subscribe a function to one event, or an object to every event it has a method for; both return a
function that removes what they added::

    run = build_run(cfg, "runs/demo")
    unsubscribe = run.trainer.events.subscribe("on_log", lambda row: print(row["step"], row["loss_G"]))

    class StopWhenGood:
        def on_log(self, row):
            if row.get("loss_G", 1e9) < 0.7:
                run.trainer.request_stop()

    run.trainer.events.add_callback(StopWhenGood())
    run.fit()

Subscribers run in the training thread, in the order they were added; an exception in one ends training
like any other. metrics.jsonl, TensorBoard and the progress bar are subscribers too
(:mod:`ganforge.train.logs`). ``trainer.request_stop()`` (from a subscriber or another thread) ends the
run after the current step, with a checkpoint and the final pictures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EVENTS = ("on_step", "on_log", "on_sample", "on_checkpoint", "on_end")


class Events:
    """Subscribers of the training events, by event name."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENTS}

    def _check(self, name: str) -> None:
        if name not in self._subscribers:
            raise ValueError(f"unknown training event {name!r}; the events are: {', '.join(EVENTS)}")

    def subscribe(self, name: str, fn: Callable[..., Any]) -> Callable[[], None]:
        """Call ``fn`` at every ``name`` event; returns a function that unsubscribes it."""
        self._check(name)
        # lists are replaced, never changed in place, so that emit() can iterate without a copy
        self._subscribers[name] = [*self._subscribers[name], fn]

        def unsubscribe() -> None:  # this subscription only (the same function may be subscribed twice)
            subscribers = self._subscribers[name]
            for i, f in enumerate(subscribers):
                if f is fn:
                    self._subscribers[name] = subscribers[:i] + subscribers[i + 1:]
                    return

        return unsubscribe

    def add_callback(self, obj: object) -> Callable[[], None]:
        """Subscribe each method of ``obj`` named like an event; returns a function that removes them all."""
        removers = [self.subscribe(name, getattr(obj, name)) for name in EVENTS if callable(getattr(obj, name, None))]
        if not removers:
            raise ValueError(f"{type(obj).__name__} has none of the event methods {', '.join(EVENTS)}")

        def remove() -> None:
            for r in removers:
                r()

        return remove

    def wanted(self, name: str) -> bool:
        """Whether anyone listens to ``name`` (the trainer skips building what nobody reads)."""
        return bool(self._subscribers[name])

    def emit(self, name: str, *args: Any) -> None:
        """Call every subscriber of ``name`` with ``args``."""
        for fn in self._subscribers[name]:
            fn(*args)
