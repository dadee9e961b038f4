"""The trainer's events and its stop request: what subscribers are told, stopping from a subscriber,
another thread or a signal (with a checkpoint of the step reached and the final pictures), the
handlers put back afterwards, and the task's end-of-training hook."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config
from ganforge.checkpoint import list_checkpoints, resolve_checkpoint
from ganforge.cli import main as cli_main
from ganforge.errors import GanforgeError
from ganforge.train import stop as stop_module
from ganforge.train.events import Events
from ganforge.train.run import build_run

FINAL_PICTURES = ("samples.png", "progress.gif", "losses.png")


def _fit(cfg, run_dir, *callbacks, resume=False):
    run = build_run(cfg, run_dir, resume=resume)
    for c in callbacks:
        run.trainer.events.add_callback(c)
    try:
        return run, run.fit()
    finally:
        run.close()


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_step(self, step):
        self.calls.append(("on_step", step))

    def on_log(self, row):
        self.calls.append(("on_log", dict(row)))

    def on_sample(self, path, step):
        self.calls.append(("on_sample", path, step))

    def on_checkpoint(self, path, step):
        self.calls.append(("on_checkpoint", path, step))

    def on_end(self, summary):
        self.calls.append(("on_end", summary))

    def of(self, name: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == name]


def test_subscribe_add_callback_and_remove():
    events, seen = Events(), []
    off = events.subscribe("on_log", lambda row: seen.append(("fn", row["step"])))

    class Half:
        def on_log(self, row):
            seen.append(("obj", row["step"]))

        def on_sample(self, path, step):
            seen.append(("sample", step))

    remove = events.add_callback(Half())
    assert events.wanted("on_log") and events.wanted("on_sample") and not events.wanted("on_step")
    events.emit("on_log", {"step": 1})
    events.emit("on_sample", Path("x.png"), 1)
    off()
    events.emit("on_log", {"step": 2})
    remove()
    events.emit("on_log", {"step": 3})
    assert seen == [("fn", 1), ("obj", 1), ("sample", 1), ("obj", 2)]
    assert not events.wanted("on_log")
    with pytest.raises(ValueError, match="unknown training event 'on_epoch'"):
        events.subscribe("on_epoch", print)
    with pytest.raises(ValueError, match="has none of the event methods"):
        events.add_callback(object())


def test_subscribers_hear_every_row_picture_checkpoint_and_the_end(idx_root, tmp_path):
    run_dir, rec = tmp_path / "run", Recorder()
    _, result = _fit(tiny_config(idx_root, steps=6, keep_ckpts=2), run_dir, rec)
    assert result.step == 6 and result.stopped_by is None
    assert rec.of("on_step") == [(s,) for s in range(1, 7)]
    assert [row for (row,) in rec.of("on_log")] == _rows(run_dir)  # the file is a subscriber of the same rows
    assert [(p.name, s) for p, s in rec.of("on_sample")] == [(f"step_{s:08d}.png", s) for s in (0, 3, 6)]
    assert [(p.name, s) for p, s in rec.of("on_checkpoint")] == [("step_00000003", 3), ("step_00000006", 6)]
    (summary,) = [s for (s,) in rec.of("on_end")]
    assert summary == {"run_dir": run_dir, "step": 6, "total_steps": 6, "stopped_by": None,
                       "checkpoint": run_dir / "checkpoints/step_00000006"}
    assert rec.calls[-1][0] == "on_end" and all((run_dir / n).is_file() for n in FINAL_PICTURES)


def test_ganforge_train_subscribes_the_events_it_is_given(idx_root, tmp_path):
    seen, threads = [], []

    def checkpoint(path, step):
        seen.append((path.name, step))
        threads.append(torch.get_num_threads())

    ganforge.train(tiny_config(idx_root, steps=6, keep_ckpts=2, threads=1), tmp_path / "run",
                   events={"on_checkpoint": checkpoint})
    assert seen == [("step_00000003", 3), ("step_00000006", 6)] and threads == [1, 1]
    with pytest.raises(GanforgeError, match="Unknown training event 'on_epoch'; the events are on_step, "):
        ganforge.train(tiny_config(idx_root, steps=2), tmp_path / "other", events={"on_epoch": print})
    assert not (tmp_path / "other").exists()


class StopAt:
    """Requests a stop when step ``at`` is done (``how``: "request" from the subscriber, or a signal)."""

    def __init__(self, trainer, at: int, how: str = "request", times: int = 1) -> None:
        self.trainer, self.at, self.how, self.times = trainer, at, how, times

    def on_step(self, step):
        if step != self.at:
            return
        if self.how == "request":
            self.trainer.request_stop()
        else:
            for _ in range(self.times):
                os.kill(os.getpid(), getattr(signal, self.how))


def test_a_stop_request_checkpoints_the_step_reached_and_resume_is_bit_identical(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=7, ckpt_every=3, log_every=2, sample_every=3)
    ganforge.train(cfg, tmp_path / "full")
    run = build_run(cfg, tmp_path / "cut")
    rec = Recorder()
    run.trainer.events.add_callback(StopAt(run.trainer, 4))
    run.trainer.events.add_callback(rec)
    result = run.fit()
    assert (result.step, result.stopped_by) == (4, "request")
    assert result.checkpoint == tmp_path / "cut/checkpoints/step_00000004"
    assert [p.name for p in list_checkpoints(tmp_path / "cut/checkpoints")] == ["step_00000003", "step_00000004"]
    assert [r["step"] for r in _rows(tmp_path / "cut")] == [2, 4]
    assert all((tmp_path / "cut" / n).is_file() for n in FINAL_PICTURES)
    assert (tmp_path / "cut/samples/step_00000004.png").is_file()  # the final pictures are of step 4
    assert rec.of("on_end")[0][0]["stopped_by"] == "request"

    assert ganforge.resume(tmp_path / "cut").step == 7
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "cut") / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_stop_request_from_another_thread_ends_the_run(idx_root, tmp_path):
    run = build_run(tiny_config(idx_root, steps=100_000, log_every=1000, sample_every=0, ckpt_every=0), tmp_path / "r")
    reached = threading.Event()
    run.trainer.events.subscribe("on_step", lambda step: reached.set() if step >= 3 else None)

    def stopper():
        reached.wait(60)
        run.trainer.request_stop()

    thread = threading.Thread(target=stopper)
    thread.start()
    result = run.fit()
    thread.join()
    assert result.stopped_by == "request" and 3 <= result.step < 100_000
    assert [int(p.name[5:]) for p in list_checkpoints(tmp_path / "r/checkpoints")] == [result.step]
    assert _rows(tmp_path / "r")[-1]["step"] == result.step


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_fit_stops_cleanly_and_the_handlers_are_put_back(idx_root, tmp_path, name, capfd):
    sig = getattr(signal, name)
    before = signal.getsignal(sig)
    run = build_run(tiny_config(idx_root, steps=50, ckpt_every=0), tmp_path / "r")
    run.trainer.events.add_callback(StopAt(run.trainer, 3, name, times=2))  # twice at once: counts once
    result = run.fit()
    assert (result.step, result.stopped_by) == (3, name)
    assert [p.name for p in list_checkpoints(tmp_path / "r/checkpoints")] == ["step_00000003"]
    assert signal.getsignal(sig) is before
    assert capfd.readouterr().err.count("ganforge: stopping after this step") == 1


def test_a_second_signal_a_while_later_quits_at_once(idx_root, tmp_path, monkeypatch):
    monkeypatch.setattr(stop_module, "REPEAT_SECONDS", -1.0)  # every later signal is "a while later"
    before = signal.getsignal(signal.SIGINT)
    run = build_run(tiny_config(idx_root, steps=50, ckpt_every=0), tmp_path / "r")
    run.trainer.events.add_callback(StopAt(run.trainer, 2, "SIGINT", times=2))
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    assert signal.getsignal(signal.SIGINT) is before
    assert not (tmp_path / "r/checkpoints").exists()


def test_the_toy_task_plots_its_divergences_at_the_end(tmp_path):
    out = tmp_path / "toy"
    code = cli_main(["train", "toy", "--data", "mixture1d", "--steps", "60", "--batch-size", "64", "--out", str(out),
                     "--no-progress", "sample_every=30", "ckpt_every=0", "log_every=10",
                     "model.g_hidden=[16]", "model.d_hidden=[16]"])
    assert code == 0
    assert (out / "divergence.png").is_file()
    assert [json.loads(line)["step"] for line in (out / "toy_metrics.jsonl").read_text().splitlines()] == [0, 30, 60]
