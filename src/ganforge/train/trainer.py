"""The training loop, shared by every model. It owns *how*: devices, precision, DDP, optimiser steps,
EMA, logging, samples, checkpoints and resume. The task says *what* each phase computes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import TrainConfig
from ..data import BatchStream
from ..errors import GanforgeError
from ..metrics.evaluation import better
from ..tasks import Phase, Task
from ..viz import plot_losses, read_metrics, save_gif, to_uint8
from .checkpoint import Checkpoint, list_checkpoints, load_state_into, save_checkpoint
from .distributed import DistInfo, all_gather_object, sync_buffers, wrap_ddp
from .ema import EMA

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def lr_factor(step: int, total: int, schedule: str, decay_start: float) -> float:
    """Multiplier of the base learning rate at ``step``: 1, or 1 then linear decay to 0 at ``total``."""
    if schedule == "constant":
        return 1.0
    start = int(total * decay_start)
    if step < start:
        return 1.0
    return max(0.0, (total - step) / max(1, total - start))


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class Trainer:
    """Runs ``task`` for ``total_steps`` steps. One step = every phase in order, each ``repeat`` times."""

    def __init__(
        self,
        task: Task,
        cfg: TrainConfig,
        stream: BatchStream,
        run_dir: Path,
        meta: dict[str, Any],
        total_steps: int,
        device: torch.device,
        dist: DistInfo | None = None,
        resume: Checkpoint | None = None,
        evaluator: Callable[[Callable[[int, int], torch.Tensor]], dict[str, Any]] | None = None,
    ) -> None:
        self.task, self.cfg, self.stream, self.meta = task, cfg, stream, meta
        self.run_dir = Path(run_dir)
        self.total_steps = total_steps
        self.device = device
        self.dist = dist or DistInfo()
        self.phases: list[Phase] = task.phases()
        self.raw: dict[str, nn.Module] = task.nets
        self.step = 0
        self.batches_seen = 0
        self.evaluator = evaluator
        self.best: dict[str, Any] = {}  # {"name", "value", "step"} of the best evaluation so far

        if cfg.precision == "fp16" and device.type != "cuda":
            raise GanforgeError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU.")
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in self.raw.values():
            net.to(device=device, memory_format=memory_format)
        self.ema = {n: EMA(self.raw[n], cfg.ema_decay) for n in task.ema_nets} if cfg.ema_decay > 0 else {}
        state = None
        if resume is not None:
            for name, net in self.raw.items():
                load_state_into(net, resume.weights.get(name, {}), name, resume.path)
            for name, e in self.ema.items():
                load_state_into(e.module, resume.weights.get(f"ema.{name}", {}), f"EMA {name}", resume.path)
            state = resume.state()

        trained = {n for p in self.phases for n in p.nets}
        self.wrapped: dict[str, nn.Module] = {}
        for name, net in self.raw.items():
            w = net
            if name in trained and self.dist.enabled:
                w = wrap_ddp(net, device)
            if cfg.compile:
                w = torch.compile(w)
            self.wrapped[name] = w

        self.optimizers = {
            p.name: torch.optim.Adam([q for n in p.nets for q in self.raw[n].parameters()], lr=p.lr, betas=p.betas)
            for p in self.phases
        }
        self.schedulers = {
            k: torch.optim.lr_scheduler.LambdaLR(
                o, lambda s: lr_factor(s, total_steps, cfg.lr_schedule, cfg.lr_decay_start))
            for k, o in self.optimizers.items()
        }
        fp16 = cfg.precision == "fp16"
        self.scalers = {k: torch.amp.GradScaler(device.type, enabled=fp16) for k in self.optimizers}
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=_DTYPES[cfg.precision]))
            if cfg.precision in _DTYPES else nullcontext
        )
        if state is not None:
            self._load_state(state)
        self._saved_step = self.step if resume is not None else -1

        self.is_main = self.dist.is_main
        self.samples_dir = self.run_dir / "samples"
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.fixed = {k: v.to(device) for k, v in task.fixed_inputs(cfg.n_samples, cfg.seed).items()}
        self.writer = None

    # ------------------------------------------------------------------ state
    def _load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.batches_seen = int(state["batches_seen"])
        self.best = dict(state.get("best") or {})
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optim"][k])
            self.schedulers[k].load_state_dict(state["sched"][k])
            self.scalers[k].load_state_dict(state["scaler"][k])
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank], self.device)
        else:  # resumed on another number of processes: fresh but reproducible noise streams
            torch.manual_seed(self.cfg.seed + 7919 * self.step + self.dist.rank)

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "batches_seen": self.batches_seen,
            "best": self.best,
            "optim": {k: o.state_dict() for k, o in self.optimizers.items()},
            "sched": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": all_gather_object(rng_state(self.device), self.dist),
        }

    def save(self, name: str | None = None) -> Path | None:
        """Write a checkpoint of the current step (rank 0 writes; every rank contributes its RNG).

        ``name`` ("best") writes a named checkpoint outside the rotation of the step checkpoints."""
        state = self._state()
        if name is None:
            self._saved_step = self.step
        if not self.is_main:
            return None
        return save_checkpoint(
            self.ckpt_dir, self.step, self.raw, {n: e.module for n, e in self.ema.items()},
            meta={**self.meta, "config": self.cfg.to_dict(), **({"best": self.best} if name else {})},
            state=state, keep=None if name else self.cfg.keep_ckpts, name=name,
        )

    def evaluate(self) -> None:
        """Run the evaluator on the sample network (rank 0), log it, and keep checkpoints/best."""
        result = None
        if self.is_main:
            net = self.sample_net()
            was_training = net.training
            net.eval()
            inputs = self.task.fixed_inputs(self.cfg.eval_n, self.cfg.seed + 1)

            def sample(start: int, count: int) -> torch.Tensor:
                chunk = {k: v[start:start + count].to(self.device) for k, v in inputs.items()}
                with torch.no_grad():
                    return to_uint8(self.task.generate(net, chunk))

            result = self.evaluator(sample)
            net.train(was_training)
        result = all_gather_object(result, self.dist)[0]
        improved = better(result["name"], result["value"], self.best.get("value"))
        if improved:
            self.best = {"name": result["name"], "value": result["value"], "step": self.step}
        if self.is_main:
            row = {"step": self.step, **{f"eval_{k}": v for k, v in result.items()
                                         if isinstance(v, (int, float)) and k != "value"}}
            self._log(row)
        if improved:
            self.save("best")

    # ------------------------------------------------------------------ pictures
    def sample_net(self) -> nn.Module:
        """The network the pictures come from: the EMA copy when there is one."""
        name = self.task.sample_net
        return self.ema[name].module if name in self.ema else self.raw[name]

    def write_samples(self) -> Path:
        """The task's picture of the fixed inputs at this step -> samples/step_N.png (and TensorBoard)."""
        net = self.sample_net()
        was_training = net.training
        net.eval()
        path = self.samples_dir / f"step_{self.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            self.task.render_samples(net, self.fixed, path, self.step)
        net.train(was_training)
        if self.writer is not None:
            with Image.open(path) as im:
                self.writer.add_image("samples", np.asarray(im.convert("RGB")), self.step, dataformats="HWC")
        return path

    # ------------------------------------------------------------------ loop
    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in batch.items():
            v = v.to(self.device, non_blocking=True)
            if v.dtype == torch.uint8:  # images: uint8 [0, 255] -> float [-1, 1]
                v = v.float().div_(127.5).sub_(1.0)
                if self.cfg.channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def _open_logs(self, resumed: bool) -> None:
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resumed:  # drop rows written after the checkpoint we resume from
            rows = [r for r in read_metrics(self.metrics_path) if r.get("step", 0) <= self.step]
            tmp = self.metrics_path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
            tmp.replace(self.metrics_path)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step + 1 if resumed else None)
        self._metrics_file = open(self.metrics_path, "a")

    def _log(self, row: dict[str, float]) -> None:
        if not self.is_main:
            return
        self._metrics_file.write(json.dumps(row) + "\n")
        self._metrics_file.flush()
        for k, v in row.items():
            if k != "step":
                self.writer.add_scalar(k, v, row["step"])

    def train_step(self) -> dict[str, torch.Tensor]:
        """Run every phase once (each ``repeat`` times); return the step's detached logs."""
        logs: dict[str, torch.Tensor] = {}
        losses = []
        batch = None
        shared = self.task.shared_forward
        if shared:  # one forward of these networks per step, reused (and backpropagated) by the phases
            batch = self._to_device(self.stream.batch(self.batches_seen))
            self.batches_seen += 1
            for name, net in self.raw.items():
                net.requires_grad_(name in shared)
            view = {n: (self.wrapped[n] if n in shared else self.raw[n]) for n in self.raw}
            with self.autocast():
                batch.update(self.task.forward(batch, view))
        for phase in self.phases:
            for name, net in self.raw.items():
                net.requires_grad_(name in phase.nets)
            view = {n: (self.wrapped[n] if n in phase.nets else self.raw[n]) for n in self.raw}
            opt, scaler = self.optimizers[phase.name], self.scalers[phase.name]
            for _ in range(phase.repeat):
                if phase.new_batch or batch is None:
                    batch = self._to_device(self.stream.batch(self.batches_seen))
                    self.batches_seen += 1
                opt.zero_grad(set_to_none=True)
                with self.autocast():
                    loss, phase_logs = self.task.loss(phase, batch, view)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                losses.append(loss.detach())
            for k, v in phase_logs.items():
                logs[k] = v
        sync_buffers(self.raw, self.dist)
        for e_name, e in self.ema.items():
            e.update(self.raw[e_name], self.step - self.cfg.ema_start, copy_only=self.step < self.cfg.ema_start)
        for s in self.schedulers.values():
            s.step()
        self.step += 1
        finite = torch.isfinite(torch.stack([x.float() for x in losses])).all()
        if not bool(finite):
            bad = ", ".join(f"{k}={float(v):.4g}" for k, v in logs.items())
            last = list_checkpoints(self.ckpt_dir)
            where = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint had been written yet"
            raise GanforgeError(
                f"The loss became NaN or infinite at step {self.step} ({bad}); training stopped and {where}. "
                "Try a lower learning rate, fp32 precision or another loss."
            )
        return logs

    def fit(self, resumed: bool = False) -> dict[str, nn.Module]:
        """Train until ``total_steps``; returns the raw networks (and writes everything to run_dir)."""
        cfg = self.cfg
        self._open_logs(resumed)
        from tqdm import tqdm

        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (cfg.progress and self.is_main),
                   dynamic_ncols=True, unit="step", mininterval=1.0)
        if self.is_main and self.step == 0:
            self.task.render_real(self.stream.batch(0), self.run_dir / "real_samples.png", cfg.n_samples)
            self.write_samples()
        images_per_step = self.stream.batch_size * self.dist.world_size
        acc: dict[str, torch.Tensor] = {}
        n_acc = 0
        t0, steps0 = time.perf_counter(), self.step
        try:
            while self.step < self.total_steps:
                logs = self.train_step()
                for k, v in logs.items():
                    acc[k] = acc[k] + v.float() if k in acc else v.float().clone()
                n_acc += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    dt = time.perf_counter() - t0
                    row = {"step": self.step, **{k: round(float(v) / n_acc, 6) for k, v in acc.items()},
                           "img_per_s": round(images_per_step * (self.step - steps0) / max(dt, 1e-9), 2),
                           "lr_g_factor": round(lr_factor(self.step, self.total_steps, cfg.lr_schedule,
                                                          cfg.lr_decay_start), 6)}
                    self._log(row)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k not in ("step", "lr_g_factor")},
                                    refresh=False)
                    acc, n_acc = {}, 0
                    t0, steps0 = time.perf_counter(), self.step
                if self.is_main and cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.write_samples()
                if self.evaluator and cfg.eval_every and (self.step % cfg.eval_every == 0
                                                          or self.step == self.total_steps):
                    self.evaluate()
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < self.total_steps:
                    self.save()
        finally:
            bar.close()
            if self.is_main:
                self._metrics_file.close()
        if self._saved_step != self.step:
            self.save()
        if self.is_main:
            self.finish()
        return self.raw

    def finish(self) -> None:
        """Final grid, progress GIF and loss curve."""
        final = self.samples_dir / f"step_{self.step:08d}.png"
        if not final.exists():
            self.write_samples()
        shutil.copyfile(final, self.run_dir / "samples.png")
        frames = sorted(self.samples_dir.glob("step_*.png"))
        if frames:
            save_gif(frames, self.run_dir / "progress.gif", captions=[f"step {int(f.stem[5:])}" for f in frames])
        plot_losses(self.metrics_path, self.run_dir / "losses.png", title=self.meta.get("model", ""))
        if self.writer is not None:
            self.writer.close()

