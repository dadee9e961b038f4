"""DDP on the CPU (gloo): two processes end with identical weights; torchrun drives the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

import ganforge
from conftest import tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg, run_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), GANFORGE_OFFLINE="1")
    torch.set_num_threads(1)
    result = ganforge.train(cfg, run_dir)
    state = {f"{n}.{k}": v.detach().clone() for n, net in result.nets.items() for k, v in net.state_dict().items()}
    torch.save(state, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_cpu_processes_end_with_identical_weights(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=4, ema_decay=0.9)
    run = tmp_path / "run"
    mp.start_processes(_worker, args=(2, _free_port(), cfg, str(run), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # only rank 0 wrote the run; its checkpoint holds the same weights
    saved = load_file(str(run / "checkpoints/step_00000004/weights.safetensors"))
    assert all(torch.equal(saved[k], a[k]) for k in a)
    state = torch.load(run / "checkpoints/step_00000004/state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["cpu"], state["rng"][1]["cpu"])
    cfg_json = (run / "config.json").read_text()
    assert '"world_size": 2' in cfg_json
    # the weights moved (gradients were applied, not just broadcast)
    init = ganforge.build_model("dcgan", {"image_size": 28, "channels": 1, "ngf": 8, "ndf": 8, "nz": 16})
    assert not torch.equal(init["G"].main[0].weight, a["G.main.0.weight"])


def test_torchrun_runs_the_cli(idx_root, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "GANFORGE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
         "-m", "ganforge", "train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root),
         "--out", str(run), "--steps", "3", "--batch-size", "8", "--no-progress",
         "model.ngf=8", "model.ndf=8", "model.nz=16"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "checkpoints/step_00000003/weights.safetensors").is_file()
    assert ganforge.load(run).sample(2).shape == (2, 28, 28, 1)
