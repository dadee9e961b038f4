"""max_minutes: a time budget beside the steps. The run ends at the first step past the budget with a checkpoint
of that step and its pictures (stopped_by "time"), the command line says so and exits 0, a resumed run has the
budget again and ends bit-identical to the uninterrupted run, and a bad budget is one sentence."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config, use_step_clock
from ganforge.checkpoint import list_checkpoints, resolve_checkpoint
from ganforge.cli import main as cli_main
from ganforge.errors import GanforgeError
from ganforge.train import logs


@pytest.fixture
def step_clock(monkeypatch):
    """Each training step takes a minute by the trainer's clock."""
    return use_step_clock(60.0, monkeypatch.setattr)


def _cli_args(idx_root, cfg_steps: int, *more: str) -> list[str]:
    """``ganforge train`` arguments for the run :func:`tiny_config` builds with these steps (no pictures between)."""
    return ["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root), "--steps", str(cfg_steps),
            "--batch-size", "16", "--no-progress", "log_every=2", "sample_every=0", "ckpt_every=0", "n_samples=16",
            "model.ngf=8", "model.ndf=8", "model.nz=16", *more]


def test_the_budget_ends_the_run_with_a_checkpoint_and_resume_is_bit_identical(idx_root, tmp_path, step_clock,
                                                                                capsys):
    cfg = tiny_config(idx_root, steps=7, ckpt_every=0, log_every=2, sample_every=0)
    ganforge.train(cfg, tmp_path / "full")
    # 2.5 minutes: steps 1 and 2 end at 1 and 2 minutes, step 3 at 3, past the budget
    assert cli_main(_cli_args(idx_root, 7, "--max-minutes", "2.5", "--out", str(tmp_path / "cut"))) == 0
    out = capsys.readouterr().out
    assert "Trained to step 3, where the time budget (max_minutes) ran out" in out
    assert f"ganforge train --resume {tmp_path / 'cut'}" in out
    assert [p.name for p in list_checkpoints(tmp_path / "cut/checkpoints")] == ["step_00000003"]
    assert (tmp_path / "cut/samples.png").is_file()
    saved = json.loads((tmp_path / "cut/config.json").read_text())["config"]
    assert saved["max_minutes"] == 2.5 and saved["steps"] == 7

    # the budget again: steps 4, 5, 6 (3 minutes), then 7 ends the run at its steps before the next check
    result = ganforge.resume(tmp_path / "cut", {"max_minutes": 4})
    assert (result.step, result.stopped_by) == (7, None)
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "cut") / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_gets_its_budget_again(idx_root, tmp_path, step_clock):
    cfg = tiny_config(idx_root, steps=9, ckpt_every=0, sample_every=0, max_minutes=1.5)
    first = ganforge.train(cfg, tmp_path / "r")
    assert (first.step, first.stopped_by) == (2, "time")
    second = ganforge.resume(tmp_path / "r")
    assert (second.step, second.stopped_by) == (4, "time")
    rows = [json.loads(line) for line in (tmp_path / "r/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss_D" in r][-2:] == [2, 4]  # the step where each part ended is logged


@pytest.mark.parametrize("bad", ["0", "-1", "inf", "nan"])
def test_a_bad_budget_is_one_sentence_and_writes_nothing(idx_root, tmp_path, bad, capsys):
    code = cli_main(_cli_args(idx_root, 6, "--max-minutes", bad, "--out", str(tmp_path / "r")))
    err = capsys.readouterr().err
    assert code != 0 and "max_minutes must be positive" in err and bad in err.lower()
    assert not (tmp_path / "r").exists()
    with pytest.raises(GanforgeError, match="max_minutes must be a number"):
        tiny_config(idx_root, max_minutes="soon")


def test_the_long_run_notice_knows_the_budget(monkeypatch):
    said = []
    clock = iter([0.0, 20.0])  # 20 s a step
    monkeypatch.setattr(logs.time, "perf_counter", lambda: next(clock))
    notice = logs.DurationNotice(total=10_000, initial=0, device="cpu", write=said.append, budget_s=3600)
    notice.on_step(1)
    notice.on_step(2)
    assert len(said) == 1 and "(max_minutes ends the run after 1 h 0 min)" in said[0]
    short = logs.DurationNotice(total=10_000, initial=0, device="cpu", write=said.append, budget_s=600)
    assert short.done  # a budget under the half hour: nothing to warn about


def test_the_progress_bar_shows_the_budget(capsys):
    bar = logs.ProgressBar(total=100, initial=0, max_minutes=7.5)
    bar.on_log({"step": 2, "loss_D": 1.25})
    assert bar.bar.postfix == "max_minutes=7.5, loss_D=1.25"
    bar.close()
    plain = logs.ProgressBar(total=100, initial=0)
    assert not plain.bar.postfix
    plain.close()
