"""The GAN doctor during training: health rows in metrics.jsonl when the findings change, the progress bar's flag,
the marks on losses.png, health_every=0, and a resumed run that trains and watches exactly as an uninterrupted one.

The rule is replaced by one that fires at a known step (the real rules are tested on hand-made rows in
test_doctor.py), so each test knows where its health rows must be."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config, train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.doctor import (
    Finding,
    live,  # the module (ganforge.doctor is also the function on the package face)
)
from ganforge.doctor.live import HealthWatcher
from ganforge.doctor.rules import RULES, training_rows
from ganforge.train.logs import ProgressBar
from ganforge.viz import health_onsets, read_metrics


def d_wins_from_4_to_7(rows: list[dict], config: dict) -> list[Finding]:
    """A d_wins error while the newest training row's step is 4 to 7; nothing before or after."""
    last = int(training_rows(rows)[-1]["step"])
    if 4 <= last < 8:
        return [Finding("error", "d_wins", "D wins (test).", {"steps": [4, last]}, "loss=nonsaturating")]
    return []


@pytest.fixture
def fires_at_4(monkeypatch):
    monkeypatch.setattr(live, "RULES", (d_wins_from_4_to_7,))


def config(idx_root, **overrides):
    values = {"steps": 8, "log_every": 1, "health_every": 2, "sample_every": 0, "ckpt_every": 3}
    values.update(overrides)
    return tiny_config(idx_root, **values)


def health_rows(run) -> list[dict]:
    return [r for r in read_metrics(run / "metrics.jsonl") if "health" in r]


EXPECTED = [{"step": 4, "health": [{"kind": "d_wins", "severity": "error", "message": "D wins (test).",
                                    "fix": "loss=nonsaturating"}]},
            {"step": 8, "health": []}]


def test_a_health_row_is_written_when_a_finding_begins_and_when_it_clears(idx_root, tmp_path, fires_at_4,
                                                                         monkeypatch):
    shown = []  # (step, whether a health row, the progress bar's doctor flag) after each row the bar was sent
    original = ProgressBar.on_log

    def on_log(self, row):
        original(self, row)
        shown.append((row["step"], "health" in row, self.shown.get("doctor")))

    monkeypatch.setattr(ProgressBar, "on_log", on_log)
    ganforge.train(config(idx_root, progress=True), tmp_path / "run")
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert health_rows(tmp_path / "run") == EXPECTED  # checked at 2, 4, 6, 8; written at 4 and 8 only
    i = rows.index(EXPECTED[0])
    assert rows[i - 1]["step"] == 4 and "loss_D" in rows[i - 1]  # after the training row it judged
    assert [r["step"] for r in rows if "loss_D" in r] == list(range(1, 9))  # the training rows are all there
    # the flag appears with the health row of step 4 and goes with the one of step 8
    flags = {step: flag for step, _, flag in shown}
    assert [flags[s] for s in range(1, 9)] == [None, None, None, "d_wins", "d_wins", "d_wins", "d_wins", None]
    assert [(s, f) for s, health, f in shown if health] == [(4, "d_wins"), (8, None)]
    # losses.png is drawn with the health rows in the file, and marks d_wins at step 4
    assert health_onsets(rows) == [(4, "d_wins", "error")]
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0
    # the rules after training read through the health rows
    without = [r for r in rows if "health" not in r]
    assert [f.to_dict() for rule in RULES for f in rule(rows, {})] == \
        [f.to_dict() for rule in RULES for f in rule(without, {})]


def test_the_progress_bar_shows_warnings_and_errors_only_and_numbers_as_before():
    bar = ProgressBar(10, 0)
    try:
        bar.on_log({"step": 1, "loss_D": 1.23456, "lr_g_factor": 1.0})
        bar.on_log({"step": 2, "health": [{"kind": "d_wins", "severity": "warning"},
                                          {"kind": "divergence", "severity": "error"},
                                          {"kind": "healthy", "severity": "info"}]})
        assert bar.shown == {"loss_D": "1.23", "doctor": "d_wins,divergence"}
        assert "doctor=d_wins,divergence" in str(bar.bar.postfix)
        bar.on_log({"step": 3, "health": []})
        assert bar.shown == {"loss_D": "1.23"}
    finally:
        bar.close()


def test_health_every_0_writes_no_health_row(idx_root, tmp_path, fires_at_4):
    ganforge.train(config(idx_root, health_every=0, steps=4), tmp_path / "run")
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 4 and health_rows(tmp_path / "run") == []


def test_a_resumed_run_continues_watching_and_trains_bit_identically(idx_root, tmp_path, fires_at_4, monkeypatch):
    cfg = config(idx_root)
    ganforge.train(cfg, tmp_path / "straight")
    train_interrupted(cfg, tmp_path / "resumed", stop_at=6, monkeypatch=monkeypatch)
    assert health_rows(tmp_path / "resumed") == EXPECTED[:1]  # d_wins active when the process died
    ganforge.resume(tmp_path / "resumed")
    # the watcher starts from the rows so far: d_wins is not written again, and its clearing at 8 is
    assert health_rows(tmp_path / "resumed") == EXPECTED
    a, b = (load_file(str(resolve_checkpoint(tmp_path / r) / "weights.safetensors")) for r in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [[(r["step"], r["loss_D"], r["loss_G"]) for r in read_metrics(tmp_path / run / "metrics.jsonl")
               if "loss_D" in r] for run in ("straight", "resumed")]
    assert losses[0] == losses[1]


def test_the_watcher_writes_only_changes_and_ignores_eval_and_health_rows():
    written = []
    watcher = HealthWatcher([{"step": 3, "health": [{"kind": "d_wins", "severity": "error"}]}], {}, 1, 1,
                            written.append)
    rules_seen = []

    def rule(rows, cfg):
        rules_seen.append(rows[-1]["step"])
        return d_wins_from_4_to_7(rows, cfg)

    live_rules = live.RULES
    live.RULES = (rule,)
    try:
        for step in (4, 5):  # d_wins was already the last health row's finding: nothing new
            watcher.on_log({"step": step, "loss_D": 1.0, "loss_G": 1.0})
        watcher.on_log({"step": 5, "eval_fid": 30.0})  # an evaluation row: kept, but no check
        watcher.on_log({"step": 5, "health": []})  # a health row: ignored
        watcher.on_log({"step": 8, "loss_D": 1.0, "loss_G": 1.0})
    finally:
        live.RULES = live_rules
    assert rules_seen == [4, 5, 8]
    assert written == [{"step": 8, "health": []}]
    assert [r["step"] for r in watcher.rows] == [4, 5, 5, 8]
