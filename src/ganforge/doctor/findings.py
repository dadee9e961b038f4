"""What the doctor says about a run: one :class:`Finding` per problem, with its numbers and its fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")  # most serious first


@dataclass
class Finding:
    """One diagnosis.

    severity: "error" (the run cannot learn as it is), "warning" (it learns badly), "info" (nothing wrong).
    code: the kind of problem, a stable name: d_wins, divergence, no_progress, d_overfit, mode_collapse,
        constant_output, noise_output (healthy for the info finding).
    sentence: one plain sentence for someone who has just learned the minimax game.
    evidence: the numbers behind it, with ``steps`` = [first, last] step they cover.
    fix: the command or ``key=value`` settings that address it.
    """

    severity: str
    code: str
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")

    @property
    def first_step(self) -> int | None:
        """The first step the evidence covers (None when it covers no steps, e.g. a check of samples)."""
        steps = self.evidence.get("steps")
        return int(steps[0]) if steps else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of issue 25: kind, severity, first_step, message, evidence, fix."""
        return {"kind": self.code, "severity": self.severity, "first_step": self.first_step,
                "message": self.sentence, "evidence": self.evidence, "fix": self.fix}


# a finding that explains others: None = every other finding (only when the cause is an error), else the kinds
CAUSES: dict[str, frozenset[str] | None] = {
    "divergence": None,  # a blown-up D wins, a blown-up G draws noise
    "gan_term_ignored": frozenset({"d_wins"}),  # a G that does not try to fool D lets D win
}


def fold_consequences(findings: list[Finding]) -> list[Finding]:
    """Findings explained by a cause (:data:`CAUSES`) are listed in its evidence under ``consequences`` instead of
    as findings of their own; info notes are left as they are (or, under an error cause, dropped)."""
    for code, symptoms in CAUSES.items():
        cause = next((f for f in findings if f.code == code and (symptoms is not None or f.severity == "error")),
                     None)
        if cause is None:
            continue
        folded = [f for f in findings if f is not cause and f.severity != "info"
                  and (symptoms is None or f.code in symptoms)]
        if folded:
            cause.evidence["consequences"] = list(dict.fromkeys(f.code for f in folded))
        if symptoms is None:
            return [cause]
        findings = [f for f in findings if f not in folded]
    return findings
