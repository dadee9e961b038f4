"""Rules over the ``probe`` rows of :mod:`.probes` (pure functions of rows and config, like :mod:`.rules`).

A probe row is a row with a ``probe`` field (the loop's training rows carry it: ``{"step": N, ..., "probe": {...}}``);
runs trained before the probes existed have none, and every rule here then finds nothing. Thresholds, each with the
measurement that placed it (benchmarks/doctor_cases.py and benchmarks/README.md, two seeds):

* weights: a network's weight norm more than 10x its first logged value is a blow-up (healthy fmnist-demo: 1.2x
  after 400 steps; learning rates of 5: 230x and 380x after 20 steps);
* G's gradient: its median over the last 30% of probes under 1% of its peak has collapsed (healthy: 14%; the
  minimax loss against a strong D: 0.3%);
* held-out reals: ADA's sign E[sign(D(x))] on training images above held-out ones by 0.3 or more (and, for the
  probability losses, D's mean probability by 0.1 or more) at two checks in a row (healthy, 60k images: gaps of
  0.05-0.08 and 0.00-0.02; 200 images without augmentation: 0.3-0.8 and 0.12-0.2 from step 800 on);
* toy modes: G's high-quality points (within 3 std of a mode) at half of the modes or fewer (a mode holding at
  least a fifth of an even split of them), at three checks in a row with 50 such points or more (healthy ring:
  8 of 8 from step 300 on, while the count of modes covered still rises; G 10x faster than D: 1-2 of 8);
* translation: at three checks in a row, |G(A) - A| under 15% of |B - A| (the identity map); outputs of
  different inputs differing by under 20% of what the inputs differ by (a constant output: healthy pix2pix
  0.78-1.03 and CycleGAN 0.49-0.64 of the inputs' spread from step 100 on, a CycleGAN whose identity weight
  drowns the rest 0.05-0.12); outputs' Laplacian
  energy under 30% of the targets' while the GAN term makes under 1% of G's loss (the L1-only blur; healthy
  pix2pix: 10% to 72% over its first 600 steps, with a GAN share near 10%, so the share is what separates them).
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

from .findings import Finding

WEIGHT_GROWTH = 10.0
GRAD_COLLAPSE = 0.01
GRAD_SPIKE = 20.0  # a gradient norm more than this many times its running median (before a NaN)
RT_GAP, SCORE_GAP, GAP_CHECKS = 0.3, 0.1, 2
MODE_CHECKS, MIN_HIGH_QUALITY = 3, 50
TRANSLATION_CHECKS = 3
IDENTITY, CONSTANT, BLUR, GAN_SHARE = 0.15, 0.2, 0.3, 0.01


def probe_rows(rows: list[dict]) -> list[tuple[int, dict]]:
    """(step, probe) for every row with a probe field, one per step (fields of one step merged), in step order."""
    by_step = {}
    for r in rows:
        if isinstance(r.get("probe"), dict) and "step" in r:
            by_step[int(r["step"])] = {**by_step.get(int(r["step"]), {}), **r["probe"]}
    return sorted(by_step.items())


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def weight_blowup(rows: list[dict]) -> dict | None:
    """Evidence that a network's weights grew more than 10x their first logged norm; None when none did."""
    probes = probe_rows(rows)
    nets = sorted({n for _, p in probes for n in p.get("weight_norm", {})})
    worst = None
    for net in nets:
        start = [(0, p["weight_norm_start"][net]) for _, p in probes[:1]
                 if _finite(p.get("weight_norm_start", {}).get(net))]  # a run's first row: its initial weights
        series = start + [(s, p["weight_norm"][net]) for s, p in probes if _finite(p.get("weight_norm", {}).get(net))]
        if len(series) < 2 or series[0][1] <= 0:
            continue
        first = next((s for s, v in series if v > WEIGHT_GROWTH * series[0][1]), None)
        if first is None:
            continue
        growth = series[-1][1] / series[0][1]
        if worst is None or growth > worst["growth"]:
            grads = [p.get("grad_norm", {}).get(net) for s, p in probes if s >= first]
            worst = {"network": net, "growth": round(growth, 1), "weight_norm_start": series[0][1],
                     "weight_norm_last": series[-1][1], "from_step": series[0][0], "first_step": first,
                     "grad_norm_zero": bool(grads) and all(g == 0 for g in grads if _finite(g))}
    return worst


def grad_spikes(rows: list[dict], before: int | None = None) -> list[dict]:
    """Gradient norms more than 20x the running median of the previous (at least 5) probes, before step
    ``before`` (a first non-finite step) when given."""
    probes = probe_rows(rows)
    spikes = []
    for net in sorted({n for _, p in probes for n in p.get("grad_norm", {})}):
        history: list[float] = []
        for step, p in probes:
            value = p.get("grad_norm", {}).get(net)
            if (before is not None and step >= before) or not _finite(value):
                break
            if len(history) >= 5 and value > GRAD_SPIKE * max(median(history[-20:]), 1e-12):
                spikes.append({"step": step, "network": net, "grad_norm": value,
                               "running_median": round(median(history[-20:]), 6)})
            history.append(value)
    return spikes


def g_gradient(rows: list[dict], share: float = 0.3) -> dict | None:
    """G's gradient norm: its peak, the median over the last 30% of probes, and whether that collapsed (< 1%)."""
    series = [(s, p["grad_norm"]["G"]) for s, p in probe_rows(rows) if _finite(p.get("grad_norm", {}).get("G"))]
    if len(series) < 3:
        return None
    peak = max(v for _, v in series)
    tail = series[-max(3, math.ceil(share * len(series))):]
    typical = median(v for _, v in tail)
    return {"G_grad_norm_peak": peak, "G_grad_norm_recent": typical,
            "G_grad_share_of_peak": round(typical / peak, 5) if peak else 0.0,
            "G_grad_collapsed": bool(peak) and typical < GRAD_COLLAPSE * peak, "grad_steps": [tail[0][0], tail[-1][0]]}


def heldout_gap(rows: list[dict], probabilities: bool) -> dict | None:
    """Evidence that D scores training images above held-out real ones at the last two checks; None otherwise."""
    checks = [(s, p) for s, p in probe_rows(rows) if all(_finite(p.get(k)) for k in
                                                          ("rt_train", "rt_heldout", "D_train", "D_heldout"))]
    if len(checks) < GAP_CHECKS:
        return None
    last = checks[-GAP_CHECKS:]
    gaps = [(p["rt_train"] - p["rt_heldout"], p["D_train"] - p["D_heldout"]) for _, p in last]
    if not all(rt >= RT_GAP and (not probabilities or score >= SCORE_GAP) for rt, score in gaps):
        return None
    first = next(s for s, p in checks if p["rt_train"] - p["rt_heldout"] >= RT_GAP)
    s, p = last[-1]
    return {"steps": [first, s], "rt_train": p["rt_train"], "rt_heldout": p["rt_heldout"],
            "D_train": p["D_train"], "D_heldout": p["D_heldout"],
            "rt_gap_per_check": [round(g[0], 4) for g in gaps], "checks": GAP_CHECKS}


def _relative_cover(m: dict) -> int | None:
    """Modes holding at least a fifth of an even split of the high-quality points (None: too few of those)."""
    counts = m.get("counts")
    if not isinstance(counts, list) or sum(counts) < MIN_HIGH_QUALITY:
        return None
    return sum(c >= 0.2 * sum(counts) / len(counts) for c in counts)


def toy_mode_collapse(rows: list[dict], config: dict) -> list[Finding]:
    """G's points near modes sit at half of the ring's or grid's modes or fewer, at three checks in a row."""
    checks = [(s, p["modes"], _relative_cover(p["modes"])) for s, p in probe_rows(rows)
              if isinstance(p.get("modes"), dict)]
    checks = [c for c in checks if c[2] is not None]
    if len(checks) < MODE_CHECKS:
        return []
    last = checks[-MODE_CHECKS:]
    if not all(rel <= m["total"] // 2 for _, m, rel in last):
        return []
    step, m, rel = last[-1]
    evidence = {"steps": [last[0][0], step], "modes_covered": m["covered"], "modes": m["total"],
                "modes_holding_the_points_near_modes": rel, "high_quality_share": m["high_quality"],
                "per_check": [{"step": s, "covered": c["covered"], "holding": r} for s, c, r in last],
                "points": m["points"], "min_points_per_mode": m["min_count"], "checks": MODE_CHECKS,
                "rule": "a point is high-quality within 3 std of a mode's centre (Metz et al. 2017; Srivastava et al. "
                        "2017); a mode holds them with a fifth of an even split"}
    return [Finding("warning", "mode_collapse",
                    f"G's points that reach the data sit on only {rel} of the {m['total']} modes ({m['covered']} "
                    f"covered by the count of the unrolled-GAN paper), at {MODE_CHECKS} checks in a row: it has "
                    f"collapsed onto a few modes instead of covering the data.", evidence,
                    "loss=wgan-gp, or a lower lr_g= than lr_d= (G chasing D from mode to mode)")]


def _gan_share(rows: list[dict], config: dict) -> float | None:
    """The GAN term's share of pix2pix's G loss over the last training rows (gan_weight * GAN / total)."""
    opts = config.get("task_options") or (config.get("config") or {}).get("task_options") or {}
    gan_weight, l1_weight = float(opts.get("gan_weight", 1.0)), float(opts.get("lambda_l1", 100.0))
    rows = [r for r in rows if _finite(r.get("loss_G_L1"))][-5:]
    if not rows:
        return None
    gan = sum(abs(float(r.get("loss_G_GAN", 0.0))) for r in rows) * gan_weight
    l1 = sum(float(r["loss_G_L1"]) for r in rows) * l1_weight
    return gan / (gan + l1) if gan + l1 else 0.0


def translation_rules(rows: list[dict], config: dict) -> list[Finding]:
    """identity_map, constant_output and gan_term_ignored from the translation numbers of the last three checks."""
    checks = [(s, p["translation"]) for s, p in probe_rows(rows) if isinstance(p.get("translation"), dict)]
    if len(checks) < TRANSLATION_CHECKS:
        return []
    last = checks[-TRANSLATION_CHECKS:]
    steps = [last[0][0], last[-1][0]]
    t = last[-1][1]
    split = {"steps": steps, "pairs": t["pairs"], "checks": TRANSLATION_CHECKS}
    if all(_finite(c.get("identity")) and c["identity"] < IDENTITY for _, c in last):
        return [Finding("error", "identity_map",
                        "G returns its input almost unchanged: it has found that copying the input satisfies the "
                        "cycle and identity losses, so it does not translate.",
                        {**split, "output_to_input_vs_target_to_input": [c["identity"] for _, c in last]},
                        "lambda_identity=0, or a stronger GAN term against the cycle (a lower lambda_A= and "
                        "lambda_B=)")]
    if all(c["input_spread"] > 0 and c["output_spread"] < CONSTANT * c["input_spread"] for _, c in last):
        return [Finding("error", "constant_output",
                        "G gives nearly the same image whatever its input, although the inputs differ: it has "
                        "collapsed to one output.",
                        {**split, "output_spread": t["output_spread"], "input_spread": t["input_spread"],
                         "target_spread": t.get("target_spread")},
                        "train again with a lower lr_g= and lr_d=, or loss=lsgan")]
    share = _gan_share(rows, config)
    if share is not None and share < GAN_SHARE and all(_finite(c.get("high_frequency")) and c["high_frequency"] < BLUR
                                                        for _, c in last):
        return [Finding("warning", "gan_term_ignored",
                        "G's outputs are as blurry as an L1-only result: the GAN term makes almost none of G's loss, "
                        "so nothing pushes G towards sharp, realistic detail.",
                        {**split, "gan_share_of_G_loss": round(share, 5),
                         "high_frequency_vs_target": [c["high_frequency"] for _, c in last]},
                        "gan_weight=1 with lambda_l1=100 (the pix2pix paper's weights)")]
    return []
