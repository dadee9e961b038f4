"""The runs a studio may read, what each one is doing, and the training processes it started.

Only the run folders given on the command line and those under the runs root can be named; a run is
named by its id (the folder's name, or its path below the runs root, e.g. ``demo`` or ``toy/ring``).
Ids with ``..``, a leading ``/`` or a backslash are refused before any file is touched. Training runs in
its own process, ``python -m ganforge train ...``; stopping sends SIGINT, which ganforge answers with a
checkpoint of the step reached.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..api import plan_resume
from ..checkpoint import holds_run, list_checkpoints
from ..config import TrainConfig, preset_names, resolve_config
from ..errors import GanforgeError
from ..families import MODELS, family_of
from ..viz import read_metrics

ACTIVE_SECONDS = 30  # a run whose metrics.jsonl changed this recently, by a process of another, counts as active
# The TrainConfig fields a run started here may set: the loop's own values, checked by the config code as the
# command line's key=value settings are. What to train (model, data, model and task options) is the preset's.
SETTABLE = tuple(f.name for f in dataclasses.fields(TrainConfig)
                 if f.name not in ("model", "progress") and f.default_factory is dataclasses.MISSING)
# an absolute path where a message quotes one (at the start, after a space, quote, bracket or =), not a URL and
# not the rest of a relative path, for :meth:`RunIndex.public`
_ABSOLUTE = re.compile(r"(?:^|(?<=[\s'\"(\[=]))/(?:[^\s'\"/:,()]+/)*([^\s'\"/:,()]+)")


class StudioError(GanforgeError):
    """A request the studio refuses: one sentence, and the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_relative(value: str, what: str) -> PurePosixPath:
    """``value`` as a relative path without ``..``: absolute paths and parent steps are refused."""
    text = str(value)
    if not text or "\\" in text or "\x00" in text:
        raise StudioError(f"{what} {text!r} is not a valid name.")
    p = PurePosixPath(text)
    if p.is_absolute() or text.startswith("~") or any(part == ".." for part in p.parts):
        raise StudioError(f"{what} {text!r} is refused: absolute paths and '..' are not allowed; give a run's "
                          "name as the runs list shows it.", 403)
    return p


@dataclass
class Process:
    """A training process started by this studio."""

    popen: subprocess.Popen
    log: Path
    command: list[str]
    started: float


class RunIndex:
    """The runs this studio may read (given folders and the runs root, two levels deep) and its processes."""

    def __init__(self, runs: list[str | Path] = (), runs_root: str | Path | None = None) -> None:
        self.given: dict[str, Path] = {}
        for r in runs:
            p = Path(r).expanduser().resolve()
            if not p.is_dir():
                raise GanforgeError(f"No run folder at {str(r)!r}.")
            name, i = p.name, 2
            while name in self.given:
                name, i = f"{p.name}-{i}", i + 1
            self.given[name] = p
        self.root = Path(runs_root).expanduser().resolve() if runs_root is not None else None
        self.processes: dict[str, Process] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ naming
    def ids(self) -> dict[str, Path]:
        out = dict(self.given)
        if self.root is not None and self.root.is_dir():
            for child in sorted(self.root.iterdir()):
                if not child.is_dir() or child.name.startswith("."):
                    continue
                if holds_run(child):
                    out.setdefault(child.name, child)
                else:
                    for sub in sorted(child.iterdir()):
                        if sub.is_dir() and holds_run(sub):
                            out.setdefault(f"{child.name}/{sub.name}", sub)
        for name in self.processes:  # a run just started has no files yet
            if self.root is not None:
                out.setdefault(name, self.root / name)
        return out

    def path(self, run_id: str) -> Path:
        """The folder of run ``run_id``; anything not in the list is refused."""
        check_relative(run_id, "Run")
        runs = self.ids()
        if run_id not in runs:
            raise StudioError(f"No run {run_id!r} here; the runs are: {', '.join(runs) or 'none'}.", 404)
        return runs[run_id]

    def public(self, text: str) -> str:
        """``text`` as the browser may see it: run folders named by the runs' ids, paths below the runs root
        relative to it, any other absolute path shortened to its last part (".../name")."""
        given = sorted(self.given.items(), key=lambda item: -len(str(item[1])))
        for run_id, folder in given:
            text = re.sub(re.escape(str(folder)) + r"(?![\w-]|\.\w)", lambda _, run_id=run_id: run_id, text)
        if self.root is not None:
            text = text.replace(f"{self.root}/", "").replace(str(self.root), "the runs root")
        return _ABSOLUTE.sub(lambda m: f".../{m.group(1)}", text)

    # ------------------------------------------------------------------ what a run is doing
    def running(self, run_id: str) -> bool:
        p = self.processes.get(run_id)
        return p is not None and p.popen.poll() is None

    def summary(self, run_id: str) -> dict[str, Any]:
        """Status, model, progress, the newest metrics row, images/s, ETA, evaluation and best checkpoint."""
        path = self.path(run_id)
        cfg = _read_json(path / "config.json")
        model = cfg.get("model")
        family = family_of(model) if model in MODELS else None
        rows = read_metrics(path / "metrics.jsonl") if (path / "metrics.jsonl").is_file() else []
        steps = [int(c.name[5:]) for c in list_checkpoints(path / "checkpoints")]
        total = cfg.get("total_steps")
        step = max([r.get("step", 0) for r in rows] + steps + [0])
        last = next((r for r in reversed(rows) if "img_per_s" in r), {})
        evals = {k: v for r in rows for k, v in r.items() if k.startswith("eval_")}
        proc = self.processes.get(run_id)
        if self.running(run_id):
            status = "running"
        elif proc is not None and proc.popen.returncode not in (0, 130, 143, -2, -15):
            status = "failed"
        elif total and step >= total:
            status = "finished"
        elif proc is None and _recent(path / "metrics.jsonl"):
            status = "active"  # written to by a process this studio did not start
        elif steps:
            status = "stopped"
        else:
            status = "new"
        ips = last.get("img_per_s")
        batch = (cfg.get("config") or {}).get("batch_size")
        eta = None
        if status in ("running", "active") and ips and batch and total:
            eta = round((total - step) * batch / ips, 1)
        best = (_read_json(path / "checkpoints" / "best" / "meta.json").get("best")
                if (path / "checkpoints" / "best").is_dir() else None)
        # what the page offers: a finished run continues to a number of steps the user gives (beyond the last
        # checkpoint's); a stopped or failed one resumes from its last checkpoint
        offer = None
        if steps and status == "finished":
            offer = {"action": "continue", "min_steps": max(steps) + 1}
        elif steps and status in ("stopped", "failed"):
            offer = {"action": "resume", "min_steps": None}
        return {"id": run_id, "status": status, "model": model, "offers": sorted(family.offers) if family else [],
                "step": step, "total_steps": total, "checkpoints": steps, "has_best": best is not None, "offer": offer,
                "best": best, "last": rows[-1] if rows else None, "img_per_s": ips, "eta_s": eta, "eval": evals,
                "has_samples": bool(_newest_sample(path)), "exit_code": proc.popen.returncode if proc else None}

    def newest_sample(self, run_id: str) -> Path:
        found = _newest_sample(self.path(run_id))
        if found is None:
            raise StudioError(f"Run {run_id!r} has no sample picture yet.", 404)
        return found

    # ------------------------------------------------------------------ training processes
    def _spawn(self, run_id: str, args: list[str], log: Path) -> Process:
        with self._lock:
            if self.running(run_id):
                raise StudioError(f"Run {run_id!r} is already training.", 409)
            log.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "ganforge", "train", *args]
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            with open(log, "ab") as out:
                popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
            proc = Process(popen, log, command, time.time())
            self.processes[run_id] = proc
            return proc

    def start(self, preset: str, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Start ``ganforge train --config PRESET --out ROOT/NAME key=value...`` in its own process, after the
        configuration code has checked the settings as it checks the command line's."""
        if self.root is None:
            raise StudioError("This studio has no runs root to start runs in; start it with --runs-root DIR.")
        if preset not in preset_names():
            raise StudioError(f"Unknown preset {preset!r}; choose one of: {', '.join(preset_names())}.")
        p = check_relative(name, "Run name")
        if len(p.parts) != 1 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise StudioError(f"Run name {name!r} must be one plain folder name (letters, digits, - _ .).")
        out = self.root / name
        if out.exists() and any(out.iterdir()):
            raise StudioError(f"A run {name!r} exists already; resume it or choose another name.", 409)
        overrides = _overrides(settings)
        resolve_config(preset, overrides=overrides)  # a bad value: the command line's sentence, before any process
        args = ["--config", preset, "--out", str(out), "--no-progress", *overrides]
        proc = self._spawn(name, args, self.root / ".studio" / f"{name}.log")
        return {"id": name, "command": ["python", *proc.command[1:]], "pid": proc.popen.pid}

    def resume(self, run_id: str, steps: Any = None) -> dict[str, Any]:
        """``ganforge train --resume RUN [steps=N]`` in its own process, after the checks ``--resume`` makes (a
        finished run needs steps beyond the step it reached), so a refused resume starts nothing."""
        path = self.path(run_id)
        if self.running(run_id):
            raise StudioError(f"Run {run_id!r} is already training.", 409)
        overrides = _overrides({"steps": steps})
        plan_resume(path, overrides=overrides)
        args = ["--resume", str(path), "--no-progress", *overrides]
        log = (self.root / ".studio" / f"{run_id.replace('/', '_')}.log") if self.root else path / "studio.log"
        proc = self._spawn(run_id, args, log)
        return {"id": run_id, "command": ["python", *proc.command[1:]], "pid": proc.popen.pid}

    def stop(self, run_id: str) -> dict[str, Any]:
        """SIGINT to a training process this studio started: it stops after the step with a checkpoint."""
        self.path(run_id)
        if not self.running(run_id):
            raise StudioError(f"Run {run_id!r} is not training in a process this studio started, so it cannot "
                              "stop it (stop it where it was started, with Ctrl-C).", 409)
        self.processes[run_id].popen.send_signal(signal.SIGINT)
        return {"id": run_id, "signal": "SIGINT"}

    def log_tail(self, run_id: str, chars: int = 4000) -> str:
        proc = self.processes.get(run_id)
        if proc is None or not proc.log.is_file():
            return ""
        return proc.log.read_text(errors="replace")[-chars:]

    def close(self, timeout: float = 20.0) -> None:
        """Stop every training process still running (cleanly: SIGINT, then wait)."""
        for proc in self.processes.values():
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGINT)
        for proc in self.processes.values():
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()


def _overrides(settings: dict[str, Any]) -> list[str]:
    """The settings as the command line's ``key=value`` words (empty values left out); only the
    :data:`SETTABLE` fields may be set. Their values are checked where the command line's are."""
    out = []
    for key, value in settings.items():
        if value is None or value == "":
            continue
        if key not in SETTABLE:
            raise StudioError(f"Unknown training setting {key!r}; the studio sets: {', '.join(SETTABLE)}.")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            text = str(value)
        else:
            text = json.dumps(value)
        out.append(f"{key}={text}")
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _recent(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < ACTIVE_SECONDS
    except OSError:
        return False


def _newest_sample(path: Path) -> Path | None:
    frames = sorted((path / "samples").glob("step_*.png")) if (path / "samples").is_dir() else []
    if frames:
        return frames[-1]
    return path / "samples.png" if (path / "samples.png").is_file() else None
