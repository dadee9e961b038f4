"""The evidence plot of a finding: the numbers it is about over the run's steps, with the step it began.

    plot = evidence_plot(rows, finding.to_dict())
    # {"title": "D's outputs", "series": {"D_real": [[50, 0.61], ...], "D_fake": [...]}, "onset": 750}

Pure data (the studio's monitor draws it; a notebook could too): every series is a list of [step, value] pairs
of finite numbers, read from the training rows (and their ``probe`` field) and evaluation rows of metrics.jsonl.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .probe_rules import probe_rows
from .rules import training_rows

Getter = Callable[[dict], Any]


def _probe(*path: str) -> Getter:
    def get(probe: dict) -> Any:
        for key in path:
            probe = probe.get(key) if isinstance(probe, dict) else None
        return probe
    get.path = path  # type: ignore[attr-defined]
    return get


# kind -> (title, [(series name, where: "train" | "eval" | "probe", key or getter)])
PLOTS: dict[str, tuple[str, list[tuple[str, str, Any]]]] = {
    "d_wins": ("D's outputs on real and generated images", [("D_real", "train", "D_real"),
                                                             ("D_fake", "train", "D_fake")]),
    "divergence": ("weight norm of each network", [
        ("weight_norm G", "probe", _probe("weight_norm", "G")),
        ("weight_norm D", "probe", _probe("weight_norm", "D"))]),
    "d_overfit": ("D on training images and on held-out real images (E[sign D(x)])", [
        ("rt_train", "probe", "rt_train"), ("rt_heldout", "probe", "rt_heldout"), ("ada_rt", "train", "ada_rt")]),
    "mode_collapse": ("modes covered", [("modes covered", "probe", _probe("modes", "covered"))]),
    "no_progress": ("quality measured during training", [("FID", "eval", "eval_fid"), ("KID", "eval", "eval_kid"),
                                                         ("IS", "eval", "eval_is")]),
    "identity_map": ("|G(A) - A| over |B - A| (0: G copies its input)", [
        ("identity", "probe", _probe("translation", "identity"))]),
    "constant_output": ("how much G's outputs differ, against its inputs", [
        ("output spread", "probe", _probe("translation", "output_spread")),
        ("input spread", "probe", _probe("translation", "input_spread"))]),
    "gan_term_ignored": ("outputs' edge energy over the targets' (1: as sharp)", [
        ("high frequency", "probe", _probe("translation", "high_frequency"))]),
}


# what is drawn instead when a kind's own numbers were not logged (a run from before the probes, a NaN loss)
FALLBACK = {"divergence": ("the losses", [("loss_D", "train", "loss_D"), ("loss_G", "train", "loss_G")])}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def evidence_plot(rows: list[dict], finding: dict) -> dict | None:
    """The plot of ``finding`` (its JSON form: "kind", "first_step") over ``rows``; None for kinds without one
    or when none of its numbers were logged."""
    kind = finding.get("kind")
    if kind not in PLOTS:
        return None
    sources = {"train": [(int(r["step"]), r) for r in training_rows(rows)],
               "eval": [(int(r["step"]), r) for r in rows if "step" in r and any(k.startswith("eval_") for k in r)],
               "probe": probe_rows(rows)}
    for title, wanted in (PLOTS[kind], FALLBACK.get(kind)) if kind in FALLBACK else (PLOTS[kind],):
        series = {}
        for name, where, key in wanted:
            get = key if callable(key) else (lambda r, k=key: r.get(k))
            points = [[step, value] for step, r in sources[where] if (value := _number(get(r))) is not None]
            path = getattr(key, "path", ())
            if path[:1] == ("weight_norm",) and sources["probe"]:
                start = _number(_probe("weight_norm_start", *path[1:])(sources["probe"][0][1]))
                points = ([[0, start]] if start is not None else []) + points  # the initial weights
            if points:
                series[name] = points
        if series:
            return {"title": title, "series": series, "onset": finding.get("first_step")}
    return None
