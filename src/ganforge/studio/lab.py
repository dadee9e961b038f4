"""GAN Lab: a toy GAN trained live, one step (or one D / G update) at a time.

The run is ganforge's own toy run (``ganforge.families.toy.toy_config`` + ``build_run``: the toy model, the toy
task and the shared trainer), never written to a run folder; a frame is the toy task's own
``render_samples``, the picture ``ganforge toy`` writes every ``sample_every`` steps (D's heat map or
curve, G's manifold or z -> x arrows, samples, gradient arrows, with the divergence estimates in the
title). "Step D" / "step G" run the trainer's step with only that phase. Changing the loss, k or a
learning rate builds the run again with the new settings and carries G's and D's weights over (the
optimisers start afresh); changing the data starts from new networks.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.toy import TOY
from ..families.toy import toy_config
from ..threads import use_threads
from .runs import StudioError

LAB_LOSSES = ("minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp")  # the losses the page offers
MAX_STEPS_PER_CALL = 200
MAX_D_STEPS = 20  # k: D updates per step (each step of the lab is one request)
MAX_POINTS = 5000


class Lab:
    """One live toy run (the studio serves one person; requests are serialised by ``lock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="ganforge-lab-")
        self.dir = Path(self._dir.name)
        self.settings: dict[str, Any] = {}
        self.run = None
        self.updates = {"D": 0, "G": 0}
        self.last_logs: dict[str, float] = {}
        self.frame_numbers: dict[str, float] = {}

    # ------------------------------------------------------------------ building
    def configure(self, data: str = "ring2d", loss: str = "nonsaturating", k: int = 1, lr_g: float = 2e-4,
                  lr_d: float = 2e-3, seed: int = 0, points: list | None = None) -> dict[str, Any]:
        """(Re)build the run; keeps the networks' weights when only the game's settings change. The settings
        are checked by the configuration code of ``ganforge toy`` (``toy_config``, then the task's options)."""
        if data == "points":
            root = self._write_points(points)
        elif data in TOY.names():
            root = None  # (toy_config would also read a file of points named by a path: not from a browser)
        else:
            raise StudioError(f"Unknown toy data {data!r}; choose one of: {', '.join(TOY.names())}, or points.")
        if isinstance(k, int) and k > MAX_D_STEPS:
            raise StudioError(f"k (D updates per G update) is at most {MAX_D_STEPS} in GAN Lab, got {k}.")
        flags = {"loss": loss, "d_steps": k, "lr_g": lr_g, "lr_d": lr_d, "seed": seed,
                 "data_root": str(root) if root else None}
        cfg = toy_config(data, flags)
        cfg = dataclasses.replace(cfg, sample_every=0, log_every=10**9, steps=10**9)
        new = {"data": data, "lr_g": cfg.lr_g, "lr_d": cfg.lr_d, "seed": cfg.seed,
               "points": root is not None and json.dumps(points)}
        keep = self.run is not None and all(self.settings.get(key) == new[key] for key in ("data", "seed", "points"))
        from ..train.run import build_run

        old = self.run
        torch.manual_seed(cfg.seed)
        self.run = build_run(cfg, self.dir / "run", write=False, evaluate=False)  # checks the task's options
        new.update(loss=self.run.task.options.loss, k=self.run.task.options.d_steps)
        if keep and old is not None:
            for name, net in self.run.trainer.raw.items():
                net.load_state_dict(old.trainer.raw[name].state_dict())
            self.run.trainer.step = old.trainer.step
        else:
            self.updates = {"D": 0, "G": 0}
            self.last_logs, self.frame_numbers = {}, {}
        self.settings = new
        return self.state()

    def _write_points(self, points: list | None) -> Path:
        if not isinstance(points, list) or not 2 <= len(points) <= MAX_POINTS:
            raise StudioError(f"Click at least 2 (and at most {MAX_POINTS}) points onto the canvas first.")
        try:
            arr = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise StudioError("The points must be numbers: [x, y] pairs (2-D) or [x] (1-D).") from None
        if arr.ndim != 2 or arr.shape[1] not in (1, 2) or not np.isfinite(arr).all():
            raise StudioError("The points must be [x, y] pairs (2-D) or [x] values (1-D), all finite.")
        path = self.dir / "points.npy"
        np.save(path, arr.astype(np.float32))
        return path

    # ------------------------------------------------------------------ stepping
    def step(self, what: str = "both", n: int = 1) -> dict[str, Any]:
        """``n`` training steps (both: k D updates then one G update), or ``n`` updates of D or G alone."""
        if self.run is None:
            self.configure()
        if what not in ("both", "D", "G"):
            raise StudioError(f"Step what? Use both, D or G, not {what!r}.")
        if not 1 <= n <= MAX_STEPS_PER_CALL:
            raise StudioError(f"Steps per call must be between 1 and {MAX_STEPS_PER_CALL}, got {n}.")
        trainer = self.run.trainer
        phases = trainer.phases
        if what != "both":
            trainer.phases = [dataclasses.replace(p, repeat=1) for p in phases if p.name == what]
        try:
            with use_threads(1), warnings.catch_warnings():  # as train_toy: networks this small run fastest on 1
                # a phase stepped alone leaves the other's optimiser unstepped while its (constant) schedule advances
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                for _ in range(n):
                    logs = trainer.train_step()
                    self.last_logs.update({k: round(float(v), 5) for k, v in logs.items()})
                    for p in trainer.phases:
                        self.updates[p.name] += p.repeat
        finally:
            trainer.phases = phases
        return self.state()

    def frame(self) -> bytes:
        """The toy task's frame of the current networks (PNG bytes), as ``ganforge toy`` draws it."""
        if self.run is None:
            self.configure()
        trainer, task = self.run.trainer, self.run.task
        path = self.dir / "run" / "samples" / "frame.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = path.parent.parent / "toy_metrics.jsonl"
        net = trainer.sample_net()
        was = net.training
        net.eval()
        try:
            with use_threads(1), torch.no_grad():
                task.render_samples(net, trainer.fixed, path, trainer.step)
        finally:
            net.train(was)
        lines = metrics.read_text().splitlines() if metrics.is_file() else []
        if lines:
            self.frame_numbers = json.loads(lines[-1])
            metrics.unlink()  # one line per frame is all the lab needs
        return path.read_bytes()

    def state(self) -> dict[str, Any]:
        s = {k: v for k, v in self.settings.items() if k != "points"}
        return {**s, "step": self.run.trainer.step if self.run else 0, "updates": dict(self.updates),
                "logs": dict(self.last_logs), "frame": dict(self.frame_numbers),
                "dim": self.run.task.dim if self.run else None,
                "datasets": {name: TOY.get(name).dim for name in TOY.names()}, "losses": list(LAB_LOSSES)}

    def close(self) -> None:
        self._dir.cleanup()
