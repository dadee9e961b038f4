"""The GAN doctor during training: the rules of :mod:`.rules` over the rows logged so far, at a fixed interval.

:func:`watch` subscribes a :class:`HealthWatcher` to a trainer's on_log event (``ganforge.train`` and
``ganforge.resume`` do it on the main process when ``health_every`` is above 0). It keeps the rows it is sent;
at every training row whose step is a multiple of ``health_every * log_every`` it applies the rules, and when
the findings (their kinds and severities) differ from the last ones written it logs a health row through
``trainer.log``, which metrics.jsonl appends and the progress bar shows::

    {"step": 500, "health": [{"kind": "d_wins", "severity": "error", "message": "...", "fix": "..."}]}

An empty ``health`` list says that the problems written before have cleared. The watcher reads numbers only:
no tensor, no random number, so a run trains the same with it or without it. The sample checks are not run
here (they load a checkpoint); ``ganforge doctor RUN`` runs them after training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..viz import read_metrics
from .findings import Finding, fold_consequences
from .probes import Probe
from .rules import RULES, is_training_row

HEALTH_KEYS = ("kind", "severity", "message", "fix")


def health_entries(findings: list[Finding]) -> list[dict[str, Any]]:
    """The warnings and errors of ``findings`` as the entries of a health row, most serious first."""
    return [{"kind": f.code, "severity": f.severity, "message": f.sentence, "fix": f.fix}
            for f in findings if f.severity in ("error", "warning")]


def _signature(entries: list[dict[str, Any]]) -> frozenset[tuple[str, str]]:
    return frozenset((e.get("kind", ""), e.get("severity", "")) for e in entries)


class HealthWatcher:
    """Applies the doctor's rules to the rows logged so far, every ``every``-th log interval.

    rows: the run's rows before this process started training (a resumed run's metrics.jsonl up to its step);
    config: the run's config as config.json holds it (``{"config": {...}}``); log_every: the trainer's;
    log: where a health row goes (``trainer.log``)."""

    def __init__(self, rows: list[dict], config: dict, every: int, log_every: int,
                 log: Callable[[dict], None]) -> None:
        self.config, self.interval, self.log = config, every * log_every, log
        self.rows = [r for r in rows if "health" not in r]
        written = [r["health"] for r in rows if isinstance(r.get("health"), list)]
        self.current = _signature(written[-1]) if written else frozenset()

    def on_log(self, row: dict) -> None:
        if "health" in row:
            return  # our own row, coming back through the trainer
        self.rows.append(row)
        step = row.get("step")
        if not isinstance(step, int) or step % self.interval or not is_training_row(row):
            return
        entries = health_entries(fold_consequences([f for rule in RULES for f in rule(self.rows, self.config)]))
        if _signature(entries) != self.current:
            self.current = _signature(entries)
            self.log({"step": step, "health": entries})


def watch(trainer: Any) -> Callable[[], None] | None:
    """Subscribe a :class:`HealthWatcher` and a :class:`~.probes.Probe` (its measurements) to ``trainer`` (a
    :class:`ganforge.train.trainer.Trainer` before its
    ``fit``); returns the function that unsubscribes it, or None when ``health_every`` is 0 or this is not the
    main process. A resumed trainer's watcher starts from the rows metrics.jsonl holds up to its step."""
    cfg = trainer.cfg
    if not cfg.health_every or not trainer.is_main:
        return None
    rows = [r for r in read_metrics(Path(trainer.metrics_path)) if r.get("step", 0) <= trainer.step] \
        if trainer.step else []
    config = {**trainer.meta, "config": cfg.to_dict()}  # what config.json holds (the dataset's size with it)
    watcher = HealthWatcher(rows, config, cfg.health_every, cfg.log_every, trainer.log)
    probe = Probe(trainer, cfg.health_every)
    trainer.row_fields.append(probe.fields)
    stop = trainer.events.subscribe("on_log", watcher.on_log)

    def unsubscribe() -> None:
        stop()
        trainer.row_fields.remove(probe.fields)

    return unsubscribe
