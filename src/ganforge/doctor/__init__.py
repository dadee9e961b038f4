"""The GAN doctor, after training: what is wrong with a run, in plain words, with the evidence and the fix.

    findings = diagnose("runs/fmnist")     # the rules over metrics.jsonl, then a batch of samples
    print(report(findings))

The rules (:mod:`.rules`, :mod:`.probe_rules`) read the run's metrics.jsonl (training rows, with the ``probe`` field
of :mod:`.probes`: weight and gradient norms, D on held-out reals, toy modes, translation outputs) and config.json;
the sample checks (:mod:`.samples`) load the latest checkpoint and draw a fixed batch. A cause folds its symptoms
into its evidence (:func:`.findings.fold_consequences`). A healthy run gets one "info" finding that says what was
checked. :func:`monitor_view` is what the studio's monitor shows: the rules' findings with their evidence plots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import GanforgeError
from ..threads import applies_threads
from ..viz import read_metrics
from .findings import SEVERITIES, Finding, fold_consequences
from .plots import evidence_plot
from .rules import RULES, training_rows
from .samples import check_samples

__all__ = ["Finding", "diagnose", "monitor_view", "report", "to_json"]

CHECKED = ("divergence (losses, weight and gradient norms), D winning, stalled FID/KID/IS, D overfitting (held-out "
           "reals, r_t), toy modes covered, translation (identity map, constant output, blur)")
SAMPLE_CHECKS = "constant or noise images, mode collapse"


def _read_run(run_dir: Path) -> tuple[list[dict], dict]:
    if not run_dir.is_dir() or not ((run_dir / "metrics.jsonl").is_file() or (run_dir / "config.json").is_file()):
        raise GanforgeError(f"{str(run_dir)!r} is not a run folder (no metrics.jsonl or config.json in it); "
                            f"give the folder that `ganforge train --out` wrote.")
    config: dict = {}
    if (run_dir / "config.json").is_file():
        try:
            config = json.loads((run_dir / "config.json").read_text())
        except ValueError:
            raise GanforgeError(f"{str(run_dir / 'config.json')!r} is not valid JSON.") from None
    return read_metrics(run_dir / "metrics.jsonl"), config


@applies_threads
def diagnose(run_dir: str | Path, samples: bool = True) -> list[Finding]:
    """Findings for the run in ``run_dir``, most serious first; one "info" finding when nothing is wrong.

    ``samples``: also load the latest checkpoint and check 256 samples (seed 0) for constant or noise images and
    mode collapse (models that sample from noise only; skipped when the run has no checkpoint).
    ``threads``: CPU threads (None: the one thread policy of :mod:`ganforge.threads`)."""
    run_dir = Path(run_dir).expanduser()
    rows, config = _read_run(run_dir)
    findings = [f for rule in RULES for f in rule(rows, config)]
    train = training_rows(rows)
    checked = CHECKED
    if samples and (run_dir / "checkpoints").is_dir():
        findings += check_samples(run_dir, config, int(train[-1]["step"]) if train else None)
        checked += ", " + SAMPLE_CHECKS
    findings = fold_consequences(findings)
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))  # stable: a cause stays before its symptoms
    if not any(f.severity != "info" for f in findings):
        steps = [int(train[0]["step"]), int(train[-1]["step"])] if train else []
        findings = findings + [Finding("info", "healthy", f"No problem found; checked: {checked}.",
                                       {"steps": steps, "rows": len(train)} if steps else {"rows": 0}, "")]
    return findings


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, (dict, list)) \
        else str(value)


def report(findings: list[Finding]) -> str:
    """A short text table: one block per finding with its severity, sentence, evidence and fix."""
    lines = []
    for f in findings:
        lines.append(f"{f.severity.upper():8} {f.code}: {f.sentence}")
        if f.evidence:
            lines.append("         evidence: " + ", ".join(f"{k}={_number(v)}" for k, v in f.evidence.items()))
        if f.fix:
            lines.append(f"         fix: {f.fix}")
    return "\n".join(lines)


def to_json(run_dir: str | Path, findings: list[Finding]) -> dict[str, Any]:
    """The machine-readable form of issue 25: ``{"run", "step", "findings", "notes"}``. ``findings`` holds the
    warnings and errors only (an empty list means healthy); the "info" finding goes to ``notes``."""
    rows, _ = _read_run(Path(run_dir).expanduser())
    train = training_rows(rows)
    return {"run": str(run_dir), "step": int(train[-1]["step"]) if train else None,
            "findings": [f.to_dict() for f in findings if f.severity != "info"],
            "notes": [f.to_dict() for f in findings if f.severity == "info"]}


def monitor_view(run_dir: str | Path) -> dict[str, Any]:
    """What a training monitor shows of a run, from its metrics.jsonl alone (no model is loaded, so it is cheap to
    ask while the run trains): ``{"step", "findings": [...]}``, each finding in its JSON form with ``plot``, its
    evidence plot (:func:`.plots.evidence_plot`, or None)."""
    rows, config = _read_run(Path(run_dir).expanduser())
    findings = fold_consequences([f for rule in RULES for f in rule(rows, config)])
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    train = training_rows(rows)
    return {"step": int(train[-1]["step"]) if train else None,
            "findings": [{**f.to_dict(), "plot": evidence_plot(rows, f.to_dict())} for f in findings]}
