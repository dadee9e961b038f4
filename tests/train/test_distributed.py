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
from conftest import tiny_config, use_step_clock
from ganforge.checkpoint import list_checkpoints
from ganforge.train.run import build_run


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


def test_lbfgs_takes_the_same_steps_on_every_rank(idx_root, tmp_path):
    # several loss evaluations per step, each averaged over the ranks by the closure; the ranks stay identical
    cfg = tiny_config(idx_root, steps=3, optimizer="lbfgs", lbfgs_max_iter=4, lr_g=0.05, lr_d=0.05, model="gan",
                      model_options={"nz": 8, "g_hidden": [16], "d_hidden": [16], "dropout": 0.0})
    mp.start_processes(_worker, args=(2, _free_port(), cfg, str(tmp_path / "run"), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(tmp_path / "run/checkpoints/step_00000003/state.pt", weights_only=True)
    assert all(s["func_evals"] > 3 for p in ("D", "G") for s in state["optim"][p]["state"].values())


def _stop_worker(rank: int, world: int, port: int, cfg, run_dir: str, out_dir: str, how: str = "request") -> None:
    """Trains ``cfg`` on one rank and records where it ended; ``how`` ends it: "request" (rank 0 asks after
    step 2) or "budget" (only rank 1's clock moves, a minute per step, toward cfg.max_minutes)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), GANFORGE_OFFLINE="1")
    torch.set_num_threads(1)
    if how == "budget":
        use_step_clock(60.0 if rank == 1 else 0.0)  # only rank 1's minutes pass: a slower machine
    run = build_run(cfg, run_dir)
    if how == "request" and rank == 0:  # only rank 0 asks; on_step is emitted on rank 0 only
        run.trainer.events.subscribe("on_step", lambda step: run.trainer.request_stop() if step == 2 else None)
    try:
        result = run.fit()
    finally:
        run.close()
    torch.save({"step": result.step, "stopped_by": result.stopped_by}, os.path.join(out_dir, f"stop{rank}.pt"))


def test_a_stop_request_on_one_rank_stops_every_rank_at_the_same_step(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=50, ckpt_every=0, sample_every=0)
    run = tmp_path / "run"
    mp.start_processes(_stop_worker, args=(2, _free_port(), cfg, str(run), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    ends = [torch.load(tmp_path / f"stop{r}.pt", weights_only=True) for r in (0, 1)]
    # asked after step 2; the ranks agree on it one step later
    assert ends == [{"step": 3, "stopped_by": "request"}] * 2
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000003"]


def test_the_time_budget_of_one_rank_stops_every_rank_at_the_same_step(idx_root, tmp_path):
    cfg = tiny_config(idx_root, steps=50, ckpt_every=0, sample_every=0, max_minutes=2.5)
    run = tmp_path / "run"
    mp.start_processes(_stop_worker, args=(2, _free_port(), cfg, str(run), str(tmp_path), "budget"), nprocs=2,
                       join=True, start_method="spawn")
    ends = [torch.load(tmp_path / f"stop{r}.pt", weights_only=True) for r in (0, 1)]
    # rank 1 is past its 2.5 minutes after step 3; the ranks agree on it one step later
    assert ends == [{"step": 4, "stopped_by": "time"}] * 2
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000004"]


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


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _torchrun(run, idx_root, steps, *extra):
    """torchrun of a small CLI run in the background; its output goes to RUN.log (a pipe nobody reads
    while waiting would fill up and block it)."""
    env = {**os.environ, "GANFORGE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    log = open(f"{run}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
         *extra, "-m", "ganforge", "train", "dcgan", "--data", "fashion-mnist", "--data-root", str(idx_root),
         "--out", str(run), "--steps", str(steps), "--batch-size", "8", "--no-progress", "ckpt_every=4",
         "log_every=1", "sample_every=0", "model.ngf=8", "model.ndf=8", "model.nz=16"],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def test_torchrun_restarts_a_killed_worker_and_the_run_resumes_by_itself(idx_root, tmp_path):
    """torchrun --max-restarts 3: a worker killed mid-run; the restarted workers find the run's latest
    checkpoint and continue from it, ending with the weights of an uninterrupted run."""
    import signal
    import time

    steps = 16
    straight = _torchrun(tmp_path / "straight", idx_root, steps)
    assert straight.wait(timeout=300) == 0, (tmp_path / "straight.log").read_text()[-2000:]

    run = tmp_path / "run"
    proc = _torchrun(run, idx_root, steps, "--max-restarts", "3")
    try:
        deadline = time.time() + 240
        killed = False
        while time.time() < deadline and proc.poll() is None and not killed:
            rows = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
            if len(rows) >= 6 and list_checkpoints(run / "checkpoints"):  # past the checkpoint of step 4
                workers = sorted(_children(proc.pid))
                if len(workers) == 2:
                    os.kill(workers[-1], signal.SIGKILL)
                    killed = True
            time.sleep(0.05)
        assert killed, "the run ended before a worker could be killed"
        code = proc.wait(timeout=300)
    finally:  # never leave the launcher or its workers behind
        if proc.poll() is None:
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
    log = (tmp_path / "run.log").read_text()
    assert code == 0, log[-3000:]
    assert "SIGKILL" in log or "Signals.SIGKILL" in log or "exitcode: -9" in log, log[-3000:]  # torchrun saw it
    a = load_file(str(list_checkpoints(tmp_path / "straight/checkpoints")[-1] / "weights.safetensors"))
    b = load_file(str(list_checkpoints(run / "checkpoints")[-1] / "weights.safetensors"))
    assert list_checkpoints(run / "checkpoints")[-1].name == f"step_{steps:08d}"
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
