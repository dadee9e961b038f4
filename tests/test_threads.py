"""The thread policy: a run records its CPU thread count, a resume continues with it (bit-identical
whatever the load), and every entry point that computes goes through the one policy function."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config
from ganforge import threads
from ganforge.checkpoint import list_checkpoints, resolve_checkpoint
from ganforge.cli import main
from ganforge.train.trainer import Trainer


def weights(run_dir):
    return load_file(str(resolve_checkpoint(run_dir) / "weights.safetensors"))


def meta_threads(run_dir):
    return json.loads((resolve_checkpoint(run_dir) / "meta.json").read_text())["config"]["threads"]


@pytest.fixture
def busy_machine(monkeypatch):
    """No OMP_NUM_THREADS, and other programs leave one core free: auto would choose 1 thread."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: 1)


@pytest.fixture
def step_threads(monkeypatch):
    """The torch thread count at every training step."""
    seen = []
    step = Trainer.train_step

    def counted(self):
        seen.append(torch.get_num_threads())
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", counted)
    return seen


def test_resume_continues_with_the_recorded_thread_count(idx_root, tmp_path, monkeypatch, capsys, step_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: 2)
    ganforge.train(tiny_config(idx_root, steps=6, threads=2), tmp_path / "full")
    ganforge.train(tiny_config(idx_root, steps=3, threads=2), tmp_path / "cut")
    assert json.loads((tmp_path / "cut/config.json").read_text())["config"]["threads"] == 2
    assert meta_threads(tmp_path / "cut") == 2
    step_threads.clear()
    capsys.readouterr()

    monkeypatch.setattr(threads, "free_cores", lambda: 1)  # the process's own choice would now be 1 thread
    assert threads.choose_threads().threads == 1
    assert ganforge.resume(tmp_path / "cut", {"steps": 6}).step == 6
    assert step_threads == [2, 2, 2]
    err = capsys.readouterr().err
    assert "continuing with the 2 CPU threads this run recorded, so that it stays bit-identical, though 1 core " \
           "is free now" in err and len(err.strip().splitlines()) == 1
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert meta_threads(tmp_path / "cut") == 2
    assert json.loads((tmp_path / "cut/config.json").read_text())["config"]["threads"] == 2
    assert torch.get_num_threads() == 2  # the conftest's count, restored after the run


def test_a_new_run_records_the_count_that_auto_chose(idx_root, tmp_path, busy_machine, capsys, step_threads,
                                                       monkeypatch):
    monkeypatch.setattr(threads, "cpu_cores", lambda: 2)
    ganforge.train(tiny_config(idx_root, steps=2, device="cpu"), tmp_path / "r")
    assert step_threads == [1, 1]
    assert json.loads((tmp_path / "r/config.json").read_text())["config"]["threads"] == 1
    assert meta_threads(tmp_path / "r") == 1
    assert "training with 1 CPU thread: other programs keep 1 of the 2 cores busy" in capsys.readouterr().err


def test_threads_given_on_resume_are_allowed_and_said_not_bit_identical(idx_root, tmp_path, busy_machine, capsys,
                                                                         step_threads):
    ganforge.train(tiny_config(idx_root, steps=2, threads=2), tmp_path / "r")
    step_threads.clear()
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "r"), "--steps", "3", "--threads", "1", "--no-progress"]) == 0
    assert step_threads == [1]
    err = capsys.readouterr().err
    assert "threads 1 (was 2)" in err
    assert "continuing with --threads 1, not the 2 CPU threads this run recorded: the continuation will not be " \
           "bit-identical to an uninterrupted run." in err
    assert meta_threads(tmp_path / "r") == 1  # the count the continuation used


def test_a_run_of_an_older_version_without_a_count_resumes_with_auto(idx_root, tmp_path, busy_machine, step_threads):
    run = tmp_path / "old"
    ganforge.train(tiny_config(idx_root, steps=2, threads=2), run)
    for path in (run / "config.json", list_checkpoints(run / "checkpoints")[-1] / "meta.json"):
        saved = json.loads(path.read_text())
        del saved["config"]["threads"], saved["config"]["sync_bn"]
        path.write_text(json.dumps(saved))
    step_threads.clear()
    assert ganforge.resume(run, {"steps": 3}).step == 3
    assert step_threads == [1]
    assert meta_threads(run) == 1  # recorded from now on


def test_policy_rules_and_the_restored_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    torch.set_num_threads(2)
    assert (threads.choose_threads(None).threads, threads.choose_threads(None).why) == (1, "auto")
    assert threads.choose_threads("3").threads == 3 and threads.choose_threads("3", 3).note is None
    assert (threads.choose_threads(None, 2).threads, threads.choose_threads(None, 2).why) == (2, "recorded")
    assert threads.choose_threads(None, "x").why == "auto"  # an unreadable record: as none
    with threads.use_threads(3) as n:
        assert n == 3 == torch.get_num_threads()
        assert threads.choose_threads().threads == 3  # work inside an entry point keeps its count
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose_threads().why == "environment"
    with pytest.raises(ganforge.GanforgeError, match="--threads must be a positive number of CPU threads or auto"):
        threads.choose_threads("0")


# ----------------------------------------------------------------------------- every entry point
class Reached(Exception):
    """Raised by the recording policy: the entry point got to the policy before any work."""


@pytest.fixture
def tiny_run(idx_root, tmp_path):
    run = tmp_path / "run"
    ganforge.train(tiny_config(idx_root, steps=2, threads=2), run)
    assert main(["latent", "interpolate", str(run), "--seeds", "1,2", "--steps", "2", "--out",
                 str(tmp_path / "rec")]) == 0
    return run


def test_every_entry_point_goes_through_the_one_thread_policy(idx_root, tmp_path, monkeypatch, tiny_run):
    calls = []

    def policy(requested=None, recorded=None):
        calls.append((requested, recorded))
        raise Reached

    monkeypatch.setattr(threads, "choose_threads", policy)
    run, out = str(tiny_run), str(tmp_path / "out")
    (tmp_path / "style.png").write_bytes((tmp_path / "run/samples.png").read_bytes())
    style = str(tmp_path / "style.png")
    commands = {
        "train": ["train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root), "--out", out],
        "resume": ["train", "--resume", run, "--steps", "4"],
        "toy": ["toy", "--data", "ring2d", "--steps", "2", "--out", out],
        "sample": ["sample", run, "--out", f"{out}.png"],
        "eval": ["eval", run, "--n", "10"],
        "translate": ["translate", run, style, "--out", out],
        "stylize": ["stylize", "--content", "none", style, "--out", f"{out}.png", "--size", "16"],
        "stylize --model": ["stylize", "--model", run, style, "--out", f"{out}.png"],
        "latent interpolate": ["latent", "interpolate", run, "--seeds", "1,2", "--out", out],
        "latent arithmetic": ["latent", "arithmetic", run, "--expr", "a - b", "--group", "a=seeds:1",
                              "--group", "b=seeds:2", "--out", out],
        "latent sweep": ["latent", "sweep", run, "--dim", "1", "--seeds", "0", "--out", out],
        "latent truncate": ["latent", "truncate", run, "--out", out],
        "latent project": ["latent", "project", run, style, "--out", out],
        "latent regenerate": ["latent", "regenerate", str(tmp_path / "rec/interpolate.json"), "--out", out],
        "export": ["export", run, "--out", f"{out}.onnx"],
        "doctor": ["doctor", run],
        "studio": ["studio", "--runs-root", str(tmp_path / "runs"), "--port", "7999"],
    }
    for name, argv in commands.items():
        calls.clear()
        with pytest.raises(Reached):
            main([*argv, "--threads", "3"])
        assert calls == [(3 if argv[0] in ("train", "toy") else "3", 2 if name == "resume" else None)], name

    from ganforge import export as gexport
    from ganforge import latent
    from ganforge.api import toy_config, train_toy
    from ganforge.studio.lab import Lab

    model = ganforge.load(tiny_run)
    functions = {
        "ganforge.train": lambda: ganforge.train(tiny_config(idx_root, threads=3), tmp_path / "api"),
        "ganforge.resume": lambda: ganforge.resume(tiny_run, {"steps": 4, "threads": 3}),
        "ganforge.evaluate": lambda: ganforge.evaluate(tiny_run, threads=3),
        "ganforge.stylize": lambda: ganforge.stylize(None, [style], threads=3),
        "latent.interpolate": lambda: latent.interpolate(model, [1, 2], threads=3),
        "latent.interpolate_classes": lambda: latent.interpolate_classes(model, [0, 1], threads=3),
        "latent.arithmetic": lambda: latent.arithmetic(model, "a", {"a": "seeds:1"}, threads=3),
        "latent.sweep_dimension": lambda: latent.sweep_dimension(model, 1, threads=3),
        "latent.sweep_pca": lambda: latent.sweep_pca(model, threads=3),
        "latent.truncation": lambda: latent.truncation(model, threads=3),
        "latent.project": lambda: latent.project(model, style, threads=3),
        "latent.regenerate": lambda: latent.regenerate(tmp_path / "rec/interpolate.json", threads=3),
        "ganforge.translate": lambda: ganforge.translate(tiny_run, style, tmp_path / "tr", threads=3),
        "export.export": lambda: gexport.export(tiny_run, None, tmp_path / "g.onnx", threads=3),
        "export.check": lambda: gexport.check(tmp_path / "g.onnx", threads=3),
        "model.sample": lambda: model.sample(2, threads=3),  # what notebooks call on a loaded model
        "ganforge.doctor": lambda: ganforge.doctor(tiny_run, threads=3),
    }
    for name, call in functions.items():
        calls.clear()
        with pytest.raises(Reached):
            call()
        assert calls == [(3, 2 if name == "ganforge.resume" else None)], name
    from ganforge import CycleGANPipeline, StylizationPipeline, TranslationPipeline

    for method in (TranslationPipeline.translate, CycleGANPipeline.translate, CycleGANPipeline.cycle,
                   StylizationPipeline.stylize):  # the same wrapper, so the same policy, on every model's verb
        assert "threads" in inspect.signature(method).parameters and method.__wrapped__ is not method
    calls.clear()
    with pytest.raises(Reached):  # toy runs: one thread unless asked (networks this small run fastest so)
        train_toy(toy_config("ring2d", {"steps": 2}), tmp_path / "toy")
    assert calls == [(1, None)]
    calls.clear()
    with pytest.raises(Reached):  # the studio's GAN Lab steps
        Lab().step()
    assert calls == [(1, None)]
