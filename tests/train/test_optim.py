"""Optimisers per phase: which one a phase gets, with which arguments, the errors for bad choices, and
bit-identical resume of each optimiser's state."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config, train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.config import TRAINING_OPTIMIZERS
from ganforge.tasks import Phase
from ganforge.train.optim import CLASSES, build_optimizer, optimizer_name
from ganforge.train.run import build_run

MLP = {"model": "gan", "model_options": {"nz": 8, "g_hidden": [32], "d_hidden": [32]}}


def _params() -> list[torch.nn.Parameter]:
    return list(torch.nn.Linear(3, 2).parameters())


def test_every_configurable_name_has_an_optimizer_class():
    assert tuple(CLASSES) == TRAINING_OPTIMIZERS


def test_the_config_per_phase_beats_the_task_which_beats_the_default():
    cfg = ganforge.resolve_config(overrides=["optimizer=sgd", "optimizer.D=rmsprop"])
    assert optimizer_name(Phase("D", ("D",), lr=1e-3, optimizer="adamw"), cfg) == "rmsprop"
    assert optimizer_name(Phase("G", ("G",), lr=1e-3, optimizer="adamw"), cfg) == "adamw"
    assert optimizer_name(Phase("G", ("G",), lr=1e-3), cfg) == "sgd"
    assert optimizer_name(Phase("G", ("G",), lr=1e-3), ganforge.resolve_config()) == "adam"


def test_arguments_come_from_the_phase_the_config_and_the_phase_options():
    cfg = ganforge.resolve_config(overrides=["momentum=0.8", "weight_decay=0.01", "lbfgs_max_iter=7"])
    phase = Phase("D", ("D",), lr=0.003, betas=(0.1, 0.95))

    def built(name: str, **options):
        p = Phase(phase.name, phase.nets, phase.lr, phase.betas, optimizer=name,
                  optimizer_options=tuple(options.items()))
        opt = build_optimizer(p, _params(), cfg)
        assert type(opt) is CLASSES[name]
        return opt.param_groups[0]

    adam = built("adam")
    assert (adam["lr"], adam["betas"], adam["weight_decay"]) == (0.003, (0.1, 0.95), 0.01)
    assert built("adamw")["betas"] == (0.1, 0.95)
    sgd = built("sgd")
    assert (sgd["lr"], sgd["momentum"], sgd["weight_decay"]) == (0.003, 0.8, 0.01)
    rms = built("rmsprop")
    assert (rms["alpha"], rms["momentum"]) == (0.95, 0.8)  # alpha is the phase's beta2
    assert built("sgd", momentum=0.5, nesterov=True)["nesterov"] is True  # the phase's options win
    assert built("sgd", momentum=0.5)["momentum"] == 0.5
    cfg.weight_decay = 0.0
    lbfgs = built("lbfgs")
    assert (lbfgs["lr"], lbfgs["max_iter"]) == (0.003, 7)


@pytest.mark.parametrize("phase, overrides, message", [
    (Phase("D", ("D",), lr=1e-3, optimizer="adagrad"), [],
     "Unknown optimizer 'adagrad' for phase D; choose one of: adam, adamw, sgd, rmsprop, lbfgs."),
    (Phase("D", ("D",), lr=1e-3, optimizer="lbfgs"), ["precision=fp16"],
     "L-BFGS (phase D) cannot run with precision fp16, because the fp16 gradient scaler cannot scale its "
     "repeated loss evaluations; use fp32 or bf16."),
    (Phase("G", ("G",), lr=1e-3, optimizer="lbfgs"), ["weight_decay=0.1"],
     "L-BFGS (phase G) has no weight decay; set weight_decay=0 or choose another optimizer for phase G."),
])
def test_bad_optimizer_choices_are_one_sentence(phase, overrides, message):
    with pytest.raises(ganforge.GanforgeError) as e:
        build_optimizer(phase, _params(), ganforge.resolve_config(overrides=overrides))
    assert str(e.value) == message


def test_a_phase_option_the_optimizer_lacks_is_named():
    phase = Phase("D", ("D",), lr=1e-3, optimizer="sgd", optimizer_options=(("betas", (0.5, 0.9)),))
    with pytest.raises(ganforge.GanforgeError, match=r"^Phase D's optimizer option 'betas' is not an argument of "
                                                     r"SGD; its arguments are: lr, momentum, .*\.$"):
        build_optimizer(phase, _params(), ganforge.resolve_config())


def test_a_run_trains_each_phase_with_its_optimizer(idx_root, tmp_path):
    cfg = tiny_config(idx_root, **MLP, optimizer="adamw", momentum=0.9, weight_decay=0.01,
                      phase_optimizers={"D": "sgd"})
    run = build_run(cfg, tmp_path / "r", write=False)
    D, G = run.trainer.optimizers["D"], run.trainer.optimizers["G"]
    assert type(D) is torch.optim.SGD and D.param_groups[0]["momentum"] == 0.9
    assert type(G) is torch.optim.AdamW and G.param_groups[0]["weight_decay"] == 0.01
    assert [p for g in D.param_groups for p in g["params"]] == list(run.task.nets["D"].parameters())


def test_a_phase_optimizer_must_name_a_phase(idx_root, tmp_path):
    cfg = tiny_config(idx_root, **MLP, phase_optimizers={"C": "sgd"})
    with pytest.raises(ganforge.GanforgeError, match=r"^optimizer\.C names no phase of gan's task; its phases are: "
                                                     r"D, G\.$"):
        build_run(cfg, tmp_path / "r", write=False)


def test_lbfgs_is_refused_for_a_phase_whose_network_runs_once_per_step(idx_root, tmp_path):
    cfg = ganforge.resolve_config(flags={
        "model": "pix2pix", "data": "edges2fashion", "data_root": str(idx_root), "image_size": 32, "batch_size": 2,
        "steps": 1, "progress": False, "model_options": {"netG": "unet_32", "ngf": 4, "ndf": 4, "n_layers_D": 1}},
        overrides=["optimizer.G=lbfgs"])
    with pytest.raises(ganforge.GanforgeError, match=r"^L-BFGS re-evaluates the loss, but phase G trains G, "):
        build_run(cfg, tmp_path / "r", write=False)
    cfg.phase_optimizers = {"D": "lbfgs"}  # D only reads the detached fake: fine
    assert isinstance(build_run(cfg, tmp_path / "r", write=False).trainer.optimizers["D"], torch.optim.LBFGS)


def _assert_same(a, b, where="state"):
    """Equal nested containers of tensors and numbers, tensors bit for bit."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("settings, state_key", [
    ({"optimizer": "sgd", "momentum": 0.9}, "momentum_buffer"),
    ({"optimizer": "rmsprop", "momentum": 0.5}, "square_avg"),
    ({"optimizer": "adamw", "weight_decay": 0.05}, "exp_avg"),
    ({"optimizer": "lbfgs", "lbfgs_max_iter": 3, "lr_d": 0.05, "lr_g": 0.05}, "old_dirs"),
])
def test_resume_is_bit_identical_with_every_optimizer(idx_root, tmp_path, monkeypatch, settings, state_key):
    cfg = tiny_config(idx_root, steps=7, ckpt_every=3, **MLP, **settings)
    full = ganforge.train(cfg, tmp_path / "full")
    train_interrupted(cfg, tmp_path / "cut", 4, monkeypatch)  # dies after the step-3 checkpoint
    assert ganforge.resume(tmp_path / "cut").step == full.step == 7

    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "weights.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "cut") / "weights.safetensors"))
    at_3 = load_file(str(resolve_checkpoint(tmp_path / "cut", "3") / "weights.safetensors"))
    _assert_same(a, b, "weights")
    assert any(not torch.equal(a[k], at_3[k]) for k in a)  # the steps after the resume point did train
    sa = torch.load(tmp_path / "full/checkpoints/step_00000007/state.pt", weights_only=True)
    sb = torch.load(tmp_path / "cut/checkpoints/step_00000007/state.pt", weights_only=True)
    _assert_same(sa["optim"], sb["optim"], "optim")
    for phase in ("D", "G"):
        assert any(state_key in s for s in sa["optim"][phase]["state"].values()), phase
