"""CycleGAN through the shared trainer: the reference's losses computed by hand, G before D, the image
pool, bit-exact resume with the pools as task state, DDP with four networks, the pictures, the inference
object in both directions, and the CLI (train, translate, --from-reference, info)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import ganforge
from conftest import train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.cli import main
from ganforge.data.unaligned import load_unaligned
from ganforge.models.resnet import ResnetGenerator, reference_resnet_key_map
from ganforge.pipelines import CycleGANPipeline
from ganforge.tasks.cyclegan import CycleGANTask, ImagePool
from ganforge.train.run import build_run, build_task
from ganforge.train.trainer import Trainer

NETS = {"netG": "resnet_1blocks", "ngf": 4, "ndf": 8, "netD": "n_layers", "n_layers_D": 2}
LOSS_KEYS = {"loss_D_A", "loss_D_B", "loss_G_A", "loss_G_B", "loss_cycle_A", "loss_cycle_B", "loss_idt_A",
             "loss_idt_B"}


def cg_config(root, **overrides):
    values = {"model": "cyclegan", "data": "fashion2edges", "data_root": str(root), "image_size": 32, "steps": 4,
              "batch_size": 2, "log_every": 1, "sample_every": 2, "ckpt_every": 2, "n_samples": 4,
              "progress": False, "device": "cpu", "model_options": dict(NETS)}
    values.update(overrides)
    return ganforge.resolve_config(flags=values)


def weights(run, which="latest"):
    return load_file(str(resolve_checkpoint(run, which) / "weights.safetensors"))


def _task(**task_options):
    cfg = ganforge.resolve_config(flags={"model": "cyclegan", "task_options": task_options})
    return build_task(cfg, {**NETS, "image_size": 32, "input_nc": 1, "output_nc": 1})


def _step_tensors(task):
    torch.manual_seed(0)
    A, B = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    batch = {"A": A, "B": B}
    batch.update(task.forward(batch, task.nets))
    return batch


def test_lsgan_losses_are_the_reference_s_computed_by_hand():
    task = _task()  # lsgan, lambda_A = lambda_B = 10, identity 0.5
    n = task.nets
    batch = _step_tensors(task)
    A, B = batch["A"], batch["B"]
    phases = {p.name: p for p in task.phases()}
    g_loss, logs = task.loss(phases["G"], batch, n)
    assert set(logs) == LOSS_KEYS - {"loss_D_A", "loss_D_B"}

    def mse(x, target):  # the reference's lsgan: nn.MSELoss against a tensor of the target label
        return F.mse_loss(x, torch.full_like(x, target))

    fake_B, fake_A = n["G_A"](A), n["G_B"](B)
    expected = {
        "loss_G_A": mse(n["D_A"](fake_B), 1.0),
        "loss_G_B": mse(n["D_B"](fake_A), 1.0),
        "loss_cycle_A": 10 * (n["G_B"](fake_B) - A).abs().mean(),
        "loss_cycle_B": 10 * (n["G_A"](fake_A) - B).abs().mean(),
        "loss_idt_A": 10 * 0.5 * (n["G_A"](B) - B).abs().mean(),
        "loss_idt_B": 10 * 0.5 * (n["G_B"](A) - A).abs().mean(),
    }
    for k, v in expected.items():
        assert logs[k].item() == pytest.approx(v.item(), rel=1e-5), k
    assert g_loss.item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-5)

    d_loss, d_logs = task.loss(phases["D"], batch, n)  # the pools are empty: they return the new fakes
    d_A = 0.5 * (mse(n["D_A"](B), 1.0) + mse(n["D_A"](fake_B), 0.0))
    d_B = 0.5 * (mse(n["D_B"](A), 1.0) + mse(n["D_B"](fake_A), 0.0))
    assert d_logs["loss_D_A"].item() == pytest.approx(d_A.item(), rel=1e-5)
    assert d_logs["loss_D_B"].item() == pytest.approx(d_B.item(), rel=1e-5)
    assert d_loss.item() == pytest.approx(d_A.item() + d_B.item(), rel=1e-5)
    assert len(task.fake_B_pool) == len(task.fake_A_pool) == 2


def test_vanilla_and_hinge_losses_and_the_gan_alone_switch():
    bce = F.binary_cross_entropy_with_logits
    task = _task(loss="vanilla", lambda_A=5.0, lambda_B=0.0, lambda_identity=0.0, pool_size=0)
    n = task.nets
    batch = _step_tensors(task)
    assert "rec_B" not in batch and "rec_A" in batch  # no reconstruction when its cycle weight is 0
    phases = {p.name: p for p in task.phases()}
    g_loss, logs = task.loss(phases["G"], batch, n)
    assert set(logs) == {"loss_G_A", "loss_G_B", "loss_cycle_A"}
    f = n["D_A"](batch["fake_B"])
    assert logs["loss_G_A"].item() == pytest.approx(bce(f, torch.ones_like(f)).item(), rel=1e-5)
    assert logs["loss_cycle_A"].item() == pytest.approx(5 * (batch["rec_A"] - batch["A"]).abs().mean().item(),
                                                        rel=1e-5)
    _, d_logs = task.loss(phases["D"], batch, n)
    r = n["D_A"](batch["B"])
    expected = 0.5 * (bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    assert d_logs["loss_D_A"].item() == pytest.approx(expected.item(), rel=1e-5)
    hinge = _task(loss="hinge", pool_size=0)
    batch = _step_tensors(hinge)
    _, d_logs = hinge.loss({p.name: p for p in hinge.phases()}["D"], batch, hinge.nets)
    r, f = hinge.nets["D_A"](batch["B"]), hinge.nets["D_A"](batch["fake_B"])
    expected = 0.5 * (F.relu(1 - r).mean() + F.relu(1 + f).mean())
    assert d_logs["loss_D_A"].item() == pytest.approx(expected.item(), rel=1e-5)
    alone = _task(lambda_A=0.0, lambda_B=0.0, lambda_identity=0.5)
    batch = _step_tensors(alone)
    _, logs = alone.loss(alone.phases()[0], batch, alone.nets)
    assert set(logs) == {"loss_G_A", "loss_G_B"}  # "GAN alone": no cycle, and identity weighs lambda * 0.5 = 0


def test_bad_options_are_one_sentence():
    with pytest.raises(ganforge.GanforgeError, match="lsgan, vanilla and hinge, not 'wgan-gp'"):
        _task(loss="wgan-gp")
    with pytest.raises(ganforge.GanforgeError, match="pool_size must be zero"):
        _task(pool_size=-1)
    cfg = ganforge.resolve_config(flags={"model": "cyclegan"})
    with pytest.raises(ganforge.GanforgeError, match="needs domains with equal channels \\(A has 1, B 3\\)"):
        build_task(cfg, {**NETS, "image_size": 32, "input_nc": 1, "output_nc": 3})
    cfg = ganforge.resolve_config(flags={"model": "cyclegan", "task_options": {"lambda_identity": 0}})
    assert build_task(cfg, {**NETS, "image_size": 32, "input_nc": 1, "output_nc": 3}).nets["G_A"].output_nc == 3
    cfg = ganforge.resolve_config(flags={"model": "cyclegan", "phase_optimizers": {"D": "lbfgs"}})
    with pytest.raises(ganforge.GanforgeError, match="choose another optimizer for phase D"):
        build_task(cfg, {**NETS, "image_size": 32, "input_nc": 1, "output_nc": 1})


def test_the_image_pool_fills_then_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.arange(2.0).view(2, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 2  # filling: stored and returned
    returned_old, swaps = 0, 0
    for step in range(400):
        new = torch.full((1, 1, 1, 1), 100.0 + step)
        before = [x.clone() for x in pool.images]
        out = pool.query(new)
        if step == 0:
            assert torch.equal(out, new) and len(pool) == 3  # the third image still fills the pool
            continue
        if float(out) != float(new):
            returned_old += 1
            assert any(torch.equal(out[0], b) for b in before)
            assert any(torch.equal(new[0], x) for x in pool.images)  # the new one took its place
        else:
            assert all(torch.equal(a, b) for a, b in zip(before, pool.images, strict=True))
        swaps += 1
    assert len(pool) == 3 and 0.4 < returned_old / swaps < 0.6
    saved = pool.state_dict()
    assert saved["count"] == 3 and saved["images"].shape == (3, 1, 1, 1)
    copy = ImagePool(3)
    copy.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(copy.images, pool.images, strict=True))
    with pytest.raises(ganforge.GanforgeError, match="pool_size is 5"):
        ImagePool(5).load_state_dict(saved)
    off = ImagePool(0)
    x = torch.rand(4, 1, 2, 2)
    assert torch.equal(off.query(x), x) and len(off) == 0


def test_training_logs_every_loss_runs_g_before_d_and_draws_the_pictures(idx_root, tmp_path, monkeypatch):
    order = []
    original = CycleGANTask.loss

    def loss(self, phase, batch, nets):
        order.append(phase.name)
        return original(self, phase, batch, nets)

    monkeypatch.setattr(CycleGANTask, "loss", loss)
    calls = []
    forward = ResnetGenerator.forward
    monkeypatch.setattr(ResnetGenerator, "forward", lambda self, x: calls.append(1) or forward(self, x))
    per_step = {}
    step = Trainer.train_step

    def counted(self):
        before = len(calls)
        logs = step(self)
        per_step[self.step] = len(calls) - before
        return logs

    monkeypatch.setattr(Trainer, "train_step", counted)
    run = tmp_path / "run"
    ganforge.train(cg_config(idx_root), run)
    assert order == ["G", "D"] * 4
    assert per_step == {1: 6, 2: 6, 3: 6, 4: 6}  # 4 in the shared forward + 2 identity
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert LOSS_KEYS <= set(rows[-1])
    meta = json.loads((run / "config.json").read_text())
    assert meta["model_options"]["input_nc"] == meta["model_options"]["output_nc"] == 1
    assert meta["dataset"]["name"] == "fashion2edges" and meta["dataset"]["size"] == 128  # max(|A|, |B|)
    state = torch.load(run / "checkpoints/step_00000004/state.pt", weights_only=True)
    assert state["batches_seen"] == 4 and list(state["optim"]) == ["G", "D"]
    assert state["task"][0]["fake_B_pool"]["count"] == 8  # 4 steps of 2 fakes, pool of 50
    with Image.open(run / "samples.png") as im:  # 4 rows of six columns under a header strip
        assert im.width > 1.2 * im.height
    assert (run / "real_samples.png").is_file() and (run / "progress.gif").is_file()
    assert (run / "losses.png").is_file()
    with pytest.raises(ganforge.GanforgeError, match="eval_every is for models that sample from noise"):
        build_run(cg_config(idx_root, eval_every=2), tmp_path / "eval")


def test_resume_is_bit_identical_with_the_pools_partly_and_fully_filled(idx_root, tmp_path, monkeypatch):
    cfg = cg_config(idx_root, steps=8, batch_size=1, ckpt_every=1, sample_every=0, keep_ckpts=10,
                    task_options={"pool_size": 3})
    ganforge.train(cfg, tmp_path / "straight")
    full = weights(tmp_path / "straight")
    for stop, count in ((2, 2), (4, 3)):  # two fakes in a pool of three; then a full pool
        cut = tmp_path / f"cut{stop}"
        train_interrupted(cfg, cut, stop, monkeypatch)
        state = torch.load(cut / f"checkpoints/step_{stop:08d}/state.pt", weights_only=True)
        assert state["task"][0]["fake_A_pool"]["count"] == count
        ganforge.resume(cut)
        resumed = weights(cut)
        different = [k for k in full if not torch.equal(full[k], resumed[k])]
        assert not different, f"stopped at {stop}: {different[:3]}"
    # the same resume with the pools' state dropped continues differently
    lost = tmp_path / "lost"
    train_interrupted(cfg, lost, 4, monkeypatch)
    monkeypatch.setattr(CycleGANTask, "load_state_dict", lambda self, state: None)
    ganforge.resume(lost)
    forgot = weights(lost)
    assert any(not torch.equal(full[k], forgot[k]) for k in full if k.startswith("D_"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg, run_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), GANFORGE_OFFLINE="1")
    torch.set_num_threads(1)
    result = ganforge.train(cfg, run_dir)
    state = {f"{n}.{k}": v.detach().clone() for n, net in result.nets.items() for k, v in net.state_dict().items()}
    torch.save(state, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_cpu_processes_train_four_networks_to_identical_weights(idx_root, tmp_path):
    cfg = cg_config(idx_root, steps=3, ckpt_every=0, sample_every=0, task_options={"pool_size": 3})
    run = tmp_path / "run"
    mp.start_processes(_ddp_worker, args=(2, _free_port(), cfg, str(run), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert {k.split(".")[0] for k in a} == {"G_A", "G_B", "D_A", "D_B"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(cfg.seed)  # the run's initial weights
    init = ganforge.build_model("cyclegan", {**NETS, "image_size": 32, "input_nc": 1, "output_nc": 1})
    for name, key in (("G_A", "stem.conv.weight"), ("G_B", "head.conv.weight"), ("D_A", "model.0.weight"),
                      ("D_B", "model.0.weight")):  # every network moved
        assert not torch.equal(init[name].state_dict()[key], a[f"{name}.{key}"]), name
    state = torch.load(run / "checkpoints/step_00000003/state.pt", weights_only=True)
    assert len(state["task"]) == 2 and all(t["fake_B_pool"]["count"] == 3 for t in state["task"])
    assert not torch.equal(state["task"][0]["fake_B_pool"]["images"], state["task"][1]["fake_B_pool"]["images"])


def _reference_state(G: ResnetGenerator) -> dict[str, torch.Tensor]:
    """G's weights under the reference's key names (the numbering is checked against a reference-layout module
    in tests/models/test_cyclegan_nets.py)."""
    reverse = {v: k for k, v in reference_resnet_key_map(G.n_blocks).items()}
    return {f"{reverse[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v.clone() for k, v in G.state_dict().items()}


def test_cli_trains_translates_both_directions_and_loads_reference_generators(idx_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "cyclegan", "--data", "fashion2edges", "--data-root", str(idx_root), "--out", str(run),
                 "--steps", "2", "--batch-size", "2", "image_size=32", "model.netG=resnet_1blocks", "model.ngf=4",
                 "model.ndf=8", "model.netD=n_layers", "model.n_layers_D=2", "n_samples=4", "--no-progress"]) == 0
    model = ganforge.load(run)
    assert isinstance(model, CycleGANPipeline) and model.direction == "AtoB" and model.multiple == 4
    assert [s.name for s in model.input_specs()] == ["A"] and model.output_spec().name == "B"
    x = model.example_inputs(2)
    with torch.no_grad():
        assert torch.equal(model.forward(model.generator(), x), model.nets["G_A"](x["A"]))
        model.direction = "BtoA"
        assert [s.name for s in model.input_specs()] == ["B"] and model.generator() is model.nets["G_B"]
        y = model.example_inputs(2)
        assert torch.equal(model.forward(model.generator(), y), model.nets["G_B"](y["B"]))

    for direction in ("AtoB", "BtoA"):
        out = tmp_path / f"out_{direction}"
        assert main(["translate", str(run), "--split", "test", "--n", "8", "--direction", direction,
                     "--out", str(out), "--no-fid"]) == 0
        record = json.loads((out / "translate.json").read_text())
        assert record["translator"]["direction"] == direction and record["n"] == 8
        assert 0 <= record["scores"]["l1"] <= 255 and 0 <= record["cycle"]["ssim"] <= 1  # targets: the pairs
        assert len(list(out.glob("*.png"))) == 9 and (out / "comparison.png").is_file()
    printed = capsys.readouterr().out
    assert '"cycle"' in printed
    test = load_unaligned("fashion2edges", str(idx_root), "test", load_size=32, crop_size=32, flip=False)
    with Image.open(tmp_path / "out_BtoA" / f"{test.names_B[0]}.png") as im:  # G_B of the first edge map
        assert np.array_equal(np.asarray(im), model.translate(test.B[:1], direction="BtoA")[0, 0].numpy())

    files = tmp_path / "files"
    files.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 22), dtype=np.uint8)).save(files / "odd.png")
    assert main(["translate", str(run), str(files), "--out", str(tmp_path / "o")]) == 0
    with Image.open(tmp_path / "o/odd.png") as im:
        assert im.size == (22, 30)  # padded to multiples of 4 and cropped back

    refs = tmp_path / "refs"
    refs.mkdir()
    torch.save(_reference_state(model.nets["G_A"]), refs / "latest_net_G_A.pth")
    torch.save({f"module.{k}": v for k, v in _reference_state(model.nets["G_B"]).items()},
               refs / "latest_net_G_B.pth")
    out = tmp_path / "ref"
    assert main(["translate", "--from-reference", str(refs / "latest_net_G_A.pth"), "--netG", "resnet_1blocks",
                 str(files), "--out", str(out)]) == 0
    record = json.loads((out / "translate.json").read_text())
    assert record["translator"]["found_G_B"].endswith("latest_net_G_B.pth") and "cycle" in record
    with Image.open(out / "odd.png") as a, Image.open(tmp_path / "o/odd.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # the reference files hold the run's generators
    capsys.readouterr()
    assert main(["translate", "--from-reference", str(refs / "latest_net_G_B.pth"), "--netG", "resnet_1blocks",
                 "--direction", "AtoB", str(files), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no G_A" in err and len(err.splitlines()) == 1
    assert main(["translate", "--from-reference", str(refs / "latest_net_G_B.pth"), "--netG", "resnet_1blocks",
                 str(files), "--out", str(tmp_path / "b_only")]) == 0
    assert json.loads((tmp_path / "b_only/translate.json").read_text())["translator"]["direction"] == "BtoA"


def test_info_prints_every_network(capsys):
    assert main(["info", "cyclegan"]) == 0
    assert json.loads(capsys.readouterr().out) == {"G_A": 11378179, "G_B": 11378179, "D_A": 2764737,
                                                   "D_B": 2764737}


def test_presets_hold_the_reference_recipe_and_the_cpu_run(idx_root, tmp_path):
    cfg = ganforge.resolve_config("cyclegan-horse2zebra")
    assert (cfg.model, cfg.batch_size, cfg.epochs, cfg.lr_schedule, cfg.lr_decay_start) == (
        "cyclegan", 1, 200, "linear", 0.5)
    assert (cfg.data.name, cfg.data.load_size, cfg.data.image_size, cfg.data.flip) == ("horse2zebra", 286, 256, True)
    assert cfg.model_options["netG"] == "resnet_9blocks" and cfg.task_options["pool_size"] == 50
    with pytest.raises(ganforge.GanforgeError, match="GANFORGE_OFFLINE=1 forbids downloading it"):
        build_run(cfg, tmp_path / "h2z")
    assert not (tmp_path / "h2z").exists()
    cpu = ganforge.resolve_config("cyclegan-fashion2edges", overrides=[f"data_root={idx_root}", "steps=1",
                                                                       "progress=false", "sample_every=0"])
    assert cpu.data.name == "fashion2edges" and cpu.model == "cyclegan"
    assert ganforge.train(cpu, tmp_path / "cpu").step == 1
