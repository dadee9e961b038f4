"""The training loop, shared by every model. It owns *how*: devices, precision, DDP, optimiser steps,
EMA, checkpoints and resume. The task says *what* each phase computes.

Its seams: the optimiser of each phase comes from :mod:`ganforge.train.optim`; everything the loop
reports (log rows, sample pictures, checkpoints, the end) is an event of ``trainer.events``
(:mod:`ganforge.train.events`), to which metrics.jsonl, TensorBoard and the progress bar subscribe
like any caller's code; ``trainer.request_stop()`` and Ctrl-C / SIGTERM end a run cleanly
(:mod:`ganforge.train.stop`); the task's own state (``Task.state_dict``) is saved in every checkpoint
and given back on resume, and ``Task.on_end`` runs once the run is finished. Build a trainer with
:func:`ganforge.train.run.build_run`, never by hand.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from ..checkpoint import Checkpoint, list_checkpoints, load_state_into, save_checkpoint
from ..config import TrainConfig, check_sync_bn
from ..data import BatchStream
from ..errors import GanforgeError
from ..metrics.evaluation import better
from ..tasks import Phase, Task
from ..viz import plot_losses, save_gif, to_uint8
from .distributed import DistInfo, all_gather_object, convert_sync_bn, sync_buffers, wrap_ddp
from .ema import EMA, has_batchnorm, recompute_batchnorm
from .events import Events
from .logs import DurationNotice, MetricsFile, ProgressBar, TensorBoard
from .optim import build_optimizer, check_phase_names, lr_factor, needs_closure
from .rng import rng_state, set_rng_state, to_cpu
from .stop import StopRequest

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """Runs ``task`` for ``total_steps`` steps. One step = every phase in order, each ``repeat`` times.

    ``fit()`` trains to the end or to a stop request (``request_stop()``, Ctrl-C, SIGTERM; then
    ``stopped_by`` says which); ``train_step()`` is one step alone (benchmarks); ``events`` takes
    subscribers; ``save()`` writes a checkpoint of the current step."""

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
        ema: dict[str, EMA] | None = None,
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
        self.events = Events()
        self.stopped_by: str | None = None  # why fit() ended before total_steps: time | request | SIGINT | SIGTERM
        self.last_checkpoint: Path | None = resume.path if resume is not None else None  # the newest step checkpoint
        self._rows: list[dict[str, Any]] = []  # rows given to log() while an on_log emit is in progress
        # more fields of each log row of the loop: (step) -> dict, merged into the row (the doctor's probe)
        self.row_fields: list[Callable[[int], dict[str, Any]]] = []

        if cfg.precision == "auto":
            raise GanforgeError("precision auto is resolved by build_run (train/precision.py); build the trainer "
                                "through it.")
        if cfg.precision == "fp16" and device.type != "cuda":
            raise GanforgeError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU.")
        if cfg.sync_bn:
            check_sync_bn(device.type)  # device=auto that found no GPU
        check_phase_names(self.phases, cfg)
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in self.raw.values():
            net.to(device=device, memory_format=memory_format)
        self.ema = dict(ema or {})  # the EMA copies build_run made, which the inference object generates with
        self._ema_stats_step = -1  # the step whose EMA batch-norm statistics were last re-estimated
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
            if name in trained and self.dist.enabled and cfg.sync_bn:  # after the EMA copies: they keep BatchNorm
                net = self.raw[name] = convert_sync_bn(net)
            w = net
            if name in trained and self.dist.enabled:
                w = wrap_ddp(net, device)
            if cfg.compile:
                w = torch.compile(w)
            self.wrapped[name] = w

        self.optimizers = {
            p.name: build_optimizer(p, [q for n in p.nets for q in self.raw[n].parameters()], cfg)
            for p in self.phases
        }
        self.closure_phases = {k for k, o in self.optimizers.items() if needs_closure(o)}
        for p in self.phases:
            shared = set(p.nets) & set(task.shared_forward)
            if p.name in self.closure_phases and shared:
                raise GanforgeError(f"L-BFGS re-evaluates the loss, but phase {p.name} trains "
                                    f"{', '.join(sorted(shared))}, whose forward the task runs once per step for "
                                    f"every phase; choose another optimizer for phase {p.name}.")
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
        self.stop = StopRequest(self.dist)

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
        if "task" in state:  # one per rank; on another number of processes, rank r takes r modulo the count
            tasks = state["task"]
            self.task.load_state_dict(tasks[self.dist.rank % len(tasks)])

    def _state(self) -> dict[str, Any]:
        """What state.pt holds; "rng" and "task" are lists with one entry per rank."""
        return {
            "step": self.step,
            "batches_seen": self.batches_seen,
            "best": self.best,
            "optim": {k: o.state_dict() for k, o in self.optimizers.items()},
            "sched": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": all_gather_object(rng_state(self.device), self.dist),
            "task": all_gather_object(to_cpu(self.task.state_dict()), self.dist),
        }

    def save(self, name: str | None = None) -> Path | None:
        """Write a checkpoint of the current step (rank 0 writes; every rank contributes its RNG and task
        state) and emit on_checkpoint. ``name`` ("best") writes a named checkpoint outside the rotation of
        the step checkpoints."""
        self.refresh_ema_statistics()
        self._check_finite()
        state = self._state()
        if name is None:
            self._saved_step = self.step
        if not self.is_main:
            return None
        path = save_checkpoint(
            self.ckpt_dir, self.step, self.raw, {n: e.module for n, e in self.ema.items()},
            meta={**self.meta, "config": self.cfg.to_dict(), **({"best": self.best} if name else {})},
            state=state, keep=None if name else self.cfg.keep_ckpts, name=name,
        )
        if name is None:
            self.last_checkpoint = path
        self.events.emit("on_checkpoint", path, self.step)
        return path

    def refresh_ema_statistics(self) -> None:
        """Re-estimate the batch-norm statistics of the EMA networks for their averaged weights
        (``ema_bn_batches`` batches of the task's inputs, drawn from a generator seeded by the step, so
        the training's random streams are untouched); once per step, before pictures, evaluations and
        checkpoints."""
        n = self.cfg.ema_bn_batches
        if not n or self._ema_stats_step == self.step:
            return
        self._ema_stats_step = self.step
        size = self.stream.batch_size
        for e in self.ema.values():
            if not has_batchnorm(e.module):
                continue
            seed = self.cfg.seed + 1_000_003 + self.step
            inputs = self.task.fixed_inputs(n * size, seed)
            count = min(len(v) for v in inputs.values())
            order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))  # classes mixed per batch
            batches = ({k: v[order[i:i + size]].to(self.device) for k, v in inputs.items()}
                       for i in range(0, count, size))
            recompute_batchnorm(e.module, lambda net, b: self.task.generate(net, b), batches)

    def _last_good(self) -> str:
        """Where a run that failed can be continued from, in words."""
        last = list_checkpoints(self.ckpt_dir)
        return (f"the last good checkpoint is {last[-1]} (step {int(last[-1].name[5:])})" if last
                else "no checkpoint had been written yet")

    def _check_finite(self) -> None:
        """A checkpoint is only "good" if its weights are finite: refuse to write NaN/Inf weights (every
        rank holds the same weights under DDP, so every rank refuses alike)."""
        groups = [("", self.raw), ("EMA ", {n: e.module for n, e in self.ema.items()})]
        for prefix, nets in groups:
            for net_name, net in nets.items():
                for k, v in net.state_dict().items():
                    if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                        raise GanforgeError(
                            f"The weights of {prefix}{net_name} hold NaN or infinite values at step {self.step} "
                            f"({k}); no checkpoint was written and {self._last_good()}. Try a lower learning rate, "
                            "fp32 precision or another loss.")

    def evaluate(self) -> None:
        """Run the evaluator on the sample network (rank 0), log it, and keep checkpoints/best."""
        result = None
        if self.is_main:
            self.refresh_ema_statistics()
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
            self.log({"step": self.step, **{f"eval_{k}": v for k, v in result.items()
                                            if isinstance(v, (int, float)) and k != "value"}})
        if improved:
            self.save("best")

    def log(self, row: dict[str, Any]) -> None:
        """Send ``row`` ({"step": int, ...}) to every on_log subscriber: metrics.jsonl appends it, TensorBoard
        and the progress bar show its numbers. Main process only. Given from an on_log subscriber (the doctor's
        health rows), it follows the row being sent, once every subscriber has seen that one."""
        self._rows.append(row)
        if len(self._rows) > 1:  # an emit is in progress: the loop below sends it next
            return
        try:
            while self._rows:
                self.events.emit("on_log", self._rows[0])
                self._rows.pop(0)
        finally:
            self._rows.clear()

    # ------------------------------------------------------------------ stopping
    def request_stop(self, reason: str = "request") -> None:
        """End ``fit`` after the current step, with a checkpoint of that step and the final pictures.

        Safe to call from any thread or from an event subscriber; ``reason`` (request | SIGINT | SIGTERM)
        becomes ``stopped_by``. Under torchrun a request on any rank stops every rank at the same step."""
        self.stop.request(reason)

    # ------------------------------------------------------------------ pictures
    def sample_net(self) -> nn.Module:
        """The network the pictures come from: the EMA copy when there is one."""
        name = self.task.sample_net
        return self.ema[name].module if name in self.ema else self.raw[name]

    def write_samples(self) -> Path:
        """The task's picture of the fixed inputs at this step -> samples/step_N.png; emits on_sample."""
        self.refresh_ema_statistics()
        net = self.sample_net()
        was_training = net.training
        net.eval()
        path = self.samples_dir / f"step_{self.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            self.task.render_samples(net, self.fixed, path, self.step)
        net.train(was_training)
        self.events.emit("on_sample", path, self.step)
        return path

    def write_final_pictures(self) -> None:
        """samples.png (the last step's grid), progress.gif (every grid so far) and losses.png."""
        final = self.samples_dir / f"step_{self.step:08d}.png"
        if not final.exists():
            self.write_samples()
        shutil.copyfile(final, self.run_dir / "samples.png")
        frames = sorted(self.samples_dir.glob("step_*.png"))
        if frames:
            save_gif(frames, self.run_dir / "progress.gif", captions=[f"step {int(f.stem[5:])}" for f in frames])
        plot_losses(self.metrics_path, self.run_dir / "losses.png", **self.task.plot_labels(self.meta.get("model", "")))

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

    def _closure_update(self, phase: Phase, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                        view: dict[str, nn.Module]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One ``opt.step(closure)`` (L-BFGS): the closure zeroes the gradients, computes the task's loss
        under autocast and backpropagates. Returns the last evaluation's (loss, logs). Under DDP the closure
        returns the loss averaged over ranks, so that every rank's L-BFGS takes the same decisions."""
        last: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None

        def closure() -> torch.Tensor:
            nonlocal last
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                loss, logs = self.task.loss(phase, batch, view)
            loss.backward()
            last = (loss.detach(), logs)
            value = loss.detach().float().clone()
            if self.dist.enabled:
                torch_dist.all_reduce(value)
                value /= self.dist.world_size
            return value

        opt.step(closure)
        return last

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
            closure = phase.name in self.closure_phases
            for _ in range(phase.repeat):
                if phase.new_batch or batch is None:
                    batch = self._to_device(self.stream.batch(self.batches_seen))
                    self.batches_seen += 1
                if closure:
                    loss, phase_logs = self._closure_update(phase, opt, batch, view)
                else:
                    opt.zero_grad(set_to_none=True)
                    with self.autocast():
                        loss, phase_logs = self.task.loss(phase, batch, view)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                self.task.after_update(phase, self.raw)
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
            raise GanforgeError(
                f"The loss became NaN or infinite at step {self.step} ({bad}); training stopped and "
                f"{self._last_good()}. "
                "Try a lower learning rate, fp32 precision or another loss."
            )
        return logs

    def _outputs(self, resumed: bool) -> Iterator[Any]:
        """metrics.jsonl, TensorBoard and the progress bar (main process), each opened when it is yielded."""
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        at = self.step if resumed else None
        yield MetricsFile(self.metrics_path, at)
        yield TensorBoard(self.run_dir / "tb", at)
        yield DurationNotice(self.total_steps, self.step, str(self.device), budget_s=self.budget_s)
        if self.cfg.progress:
            yield ProgressBar(self.total_steps, self.step, self.cfg.max_minutes)

    @property
    def budget_s(self) -> float | None:
        """The run's time budget (``max_minutes``) in seconds, or None."""
        return self.cfg.max_minutes * 60 if self.cfg.max_minutes else None

    def fit(self, resumed: bool = False) -> dict[str, nn.Module]:
        """Train until ``total_steps`` or a stop request; returns the raw networks (and writes everything to
        run_dir). After a stop, ``stopped_by`` says why and the checkpoint of the step reached is written."""
        with self.stop.signals(announce=self.is_main), ExitStack() as outputs:
            for o in self._outputs(resumed):  # subscribed now; unsubscribed and closed however fit ends
                outputs.callback(o.close)
                outputs.callback(self.events.add_callback(o))
            self._loop()
            if self._saved_step != self.step:
                self.save()
            if self.is_main:
                self.write_final_pictures()
                self.task.on_end(self.run_dir)
                self.events.emit("on_end", {
                    "run_dir": self.run_dir, "step": self.step, "total_steps": self.total_steps,
                    "stopped_by": self.stopped_by, "checkpoint": self.last_checkpoint})
        return self.raw

    def _loop(self) -> None:
        cfg = self.cfg
        self.stopped_by = None
        if self.is_main and self.step == 0:
            self.task.render_real(self.stream.batch(0), self.run_dir / "real_samples.png", cfg.n_samples)
            self.write_samples()
        images_per_step = self.stream.batch_size * self.dist.world_size
        acc: dict[str, torch.Tensor] = {}
        n_acc = 0
        t0, steps0 = time.perf_counter(), self.step
        deadline = t0 + self.budget_s if self.budget_s is not None else math.inf
        stop = self.stop.agreed()
        while self.step < self.total_steps and stop is None:
            logs = self.train_step()
            if time.perf_counter() >= deadline:
                self.stop.request("time")
            for k, v in logs.items():
                acc[k] = acc[k] + v.float() if k in acc else v.float().clone()
            n_acc += 1
            if self.events.wanted("on_step"):
                self.events.emit("on_step", self.step)
            stop = self.stop.agreed()
            if self.step % cfg.log_every == 0 or self.step == self.total_steps or stop is not None:
                if self.is_main:  # the other ranks skip the row and its device-to-host copies
                    dt = time.perf_counter() - t0
                    row = {"step": self.step, **{k: round(float(v) / n_acc, 6) for k, v in acc.items()},
                           "img_per_s": round(images_per_step * (self.step - steps0) / max(dt, 1e-9), 2),
                           "lr_g_factor": round(lr_factor(self.step, self.total_steps, cfg.lr_schedule,
                                                          cfg.lr_decay_start), 6)}
                    for fields in self.row_fields:
                        row.update(fields(self.step))
                    self.log(row)
                acc, n_acc = {}, 0
                t0, steps0 = time.perf_counter(), self.step
            if self.is_main and cfg.sample_every and self.step % cfg.sample_every == 0:
                self.write_samples()
            if self.evaluator and cfg.eval_every and (self.step % cfg.eval_every == 0
                                                      or self.step == self.total_steps):
                self.evaluate()
            if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < self.total_steps:
                self.save()
        self.stop.finish()
        if stop is not None and self.step < self.total_steps:
            self.stopped_by = stop
