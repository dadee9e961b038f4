"""The run's own subscribers of the training events (:mod:`ganforge.train.events`): metrics.jsonl,
TensorBoard and the progress bar. The trainer adds them on the main process when ``fit`` starts and
closes them when it ends, however it ends."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..viz import read_metrics


class MetricsFile:
    """Appends every logged row to ``path`` as one JSON line, flushed at once (a killed run keeps its rows).

    On resume from ``step`` the rows written after that step (by the run that was cut) are dropped first,
    so the file holds each step once."""

    def __init__(self, path: Path, resumed_at: int | None = None) -> None:
        self.path = Path(path)
        if resumed_at is not None:
            rows = [r for r in read_metrics(self.path) if r.get("step", 0) <= resumed_at]
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
            tmp.replace(self.path)
        self._file = open(self.path, "a")

    def on_log(self, row: dict) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoard:
    """Scalars of every logged row and every sample picture, in ``log_dir`` (``RUN/tb``)."""

    def __init__(self, log_dir: Path, resumed_at: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = resumed_at + 1 if resumed_at is not None else None  # drop what the cut run wrote after it
        self.writer = SummaryWriter(str(log_dir), purge_step=purge)

    def on_log(self, row: dict) -> None:
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)):  # numbers only: a health row holds a list
                self.writer.add_scalar(k, v, row["step"])

    def on_sample(self, path: Path, step: int) -> None:
        with Image.open(path) as im:
            self.writer.add_image("samples", np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class ProgressBar:
    """A tqdm bar over the steps, showing the latest value of each logged number (losses, evaluations) and,
    while the latest ``health`` row lists a warning or an error, their kinds (``doctor=d_wins``); with a time
    budget, its minutes (``max_minutes=7.5``: the bar may end before its last step)."""

    def __init__(self, total: int, initial: int, max_minutes: float | None = None) -> None:
        import warnings

        from tqdm import TqdmWarning

        with warnings.catch_warnings():  # a notebook without ipywidgets: tqdm.auto warns, then uses the text bar
            warnings.simplefilter("ignore", TqdmWarning)
            from tqdm.auto import tqdm  # the widget bar in Jupyter, the text bar in a terminal

        self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, unit="step", mininterval=1.0)
        self.shown: dict[str, str] = {"max_minutes": f"{max_minutes:g}"} if max_minutes else {}
        if self.shown:
            self.bar.set_postfix(self.shown, refresh=False)

    def on_step(self, step: int) -> None:
        self.bar.update(step - self.bar.n)

    def on_log(self, row: dict) -> None:
        self.shown.update({k: f"{v:.3g}" for k, v in row.items()
                           if k not in ("step", "lr_g_factor") and isinstance(v, (int, float))})
        if isinstance(row.get("health"), list):  # the newest health row replaces the flag; an empty one clears it
            kinds = [h.get("kind", "?") for h in row["health"] if h.get("severity") in ("warning", "error")]
            self.shown.pop("doctor", None)
            if kinds:
                self.shown["doctor"] = ",".join(dict.fromkeys(kinds))
        self.bar.set_postfix(self.shown, refresh=False)

    def close(self) -> None:
        self.bar.close()


LONG_RUN_SECONDS = 30 * 60  # a run estimated to take longer than this says so early
ESTIMATE_AFTER = (50, 15.0)  # steps or seconds after the first step, whichever comes first


def duration_text(seconds: float) -> str:
    """3725 -> '1 h 2 min', 150 -> '2 min 30 s'."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"


def _write_above_bar(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)  # above a progress bar in progress, if any


class DurationNotice:
    """One line on stderr, early in a run, when its steps at the speed measured so far will take more than
    LONG_RUN_SECONDS: how long, and how to stop or shorten it (the progress bar's ETA keeps counting).
    ``budget_s``: the run's time budget (max_minutes) in seconds; a run whose budget is shorter than
    LONG_RUN_SECONDS says nothing, and one whose steps outlast a longer budget says when the budget ends it."""

    def __init__(self, total: int, initial: int, device: str, write=None, budget_s: float | None = None) -> None:
        self.total, self.device, self.budget_s = total, device, budget_s
        self.start: tuple[int, float] | None = None  # (step, time) after the first step (warm-up excluded)
        self.done = initial >= total or (budget_s is not None and budget_s <= LONG_RUN_SECONDS)
        self.write = write or _write_above_bar

    def on_step(self, step: int) -> None:
        if self.done:
            return
        now = time.perf_counter()
        if self.start is None:
            self.start = (step, now)
            return
        steps, elapsed = step - self.start[0], now - self.start[1]
        if steps < ESTIMATE_AFTER[0] and elapsed < ESTIMATE_AFTER[1]:
            return
        self.done = True
        left = (self.total - step) * elapsed / max(steps, 1)
        if left > LONG_RUN_SECONDS:
            budget = (f" (max_minutes ends the run after {duration_text(self.budget_s)})"
                      if self.budget_s is not None and self.budget_s < left else "")
            self.write(f"ganforge: at {steps / elapsed:.3g} steps/s on {self.device}, the {self.total - step:,} "
                       f"steps left take about {duration_text(left)}{budget}; Ctrl-C stops with a checkpoint "
                       "(continue with --resume), or give --steps N for a shorter run.")

    def close(self) -> None:
        pass
