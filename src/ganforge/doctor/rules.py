"""Rules over the rows of a run's metrics.jsonl: pure functions (rows, config) -> list of findings.

``rows`` are the dicts :func:`ganforge.viz.read_metrics` returns; ``config`` is the run's config.json as a dict
(``{}`` when there is none). Training rows carry ``step``, ``loss_D``, ``loss_G`` and, for the probability losses,
``D_real`` / ``D_fake`` (D's mean probability on real and generated images); ADA adds ``aug_p`` and ``ada_rt``;
evaluation rows carry ``eval_fid`` (or ``eval_kid``, ``eval_is``).
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

from ..errors import GanforgeError
from ..families import family_of
from ..losses import LOSSES
from .findings import Finding
from .probe_rules import g_gradient, grad_spikes, heldout_gap, toy_mode_collapse, translation_rules, weight_blowup

TAIL = 0.3  # "a long stretch": the last 30% of the logged training steps
MIN_TAIL_ROWS = 3
D_FAKE_LOW = 0.05  # D(G(z)) below this: D rejects fakes with confidence
D_REAL_HIGH = 0.95  # D(x) above this: D accepts reals with confidence
STRETCH_SHARE = 0.8  # the share of the stretch's rows that must show it
SPIKE_FACTOR = 10.0  # a loss more than this many times its running median (of absolute values) is a spike
SPIKE_FLOOR = 0.1  # ... and more than this many times 0.1, so that losses near 0 do not count as spikes
SPIKE_WINDOW = 20
SPIKE_MIN_HISTORY = 5
SMALL_DATA = 10_000  # images; below this D can memorise the training set (Karras et al. 2020)
STALL_EVALS = 2  # evaluations after the best one without improvement
LOWER_IS_BETTER = {"fid": True, "kid": True, "is": False}
LOSS_KEYS = ("loss_D", "loss_G")


def is_training_row(row: dict) -> bool:
    """A row of the loop's losses: any loss_* number (loss_D, loss_G; CycleGAN's loss_G_A, loss_cycle_A ...)."""
    return any(k.startswith("loss_") for k in row)


def training_rows(rows: list[dict]) -> list[dict]:
    """The rows with losses, one per step (a repeated step keeps its last row), in step order."""
    by_step = {}
    for row in rows:
        if "step" in row and is_training_row(row):
            by_step[int(row["step"])] = row
    return [by_step[s] for s in sorted(by_step)]


def tail(rows: list[dict], share: float = TAIL) -> list[dict]:
    """The last ``share`` of the rows (at least :data:`MIN_TAIL_ROWS`, or none when there are fewer)."""
    if len(rows) < MIN_TAIL_ROWS:
        return []
    return rows[-max(MIN_TAIL_ROWS, math.ceil(share * len(rows))):]


def _options(config: dict) -> dict:
    return config.get("task_options") or (config.get("config") or {}).get("task_options") or {}


def _training(config: dict) -> dict:
    return config.get("config") or {}


def learning_rates(config: dict) -> tuple[float, float]:
    """(lr_g, lr_d) the run trained with (2e-4 each where the record has none, the TrainConfig default)."""
    train = _training(config)
    return float(train.get("lr_g", 2e-4)), float(train.get("lr_d", 2e-4))


def _translates(config: dict) -> bool:
    """Whether the run's family translates images (pix2pix, CycleGAN), as its family says."""
    model = config.get("model") or _training(config).get("model")
    try:
        return bool(model) and family_of(model).can("translate")
    except GanforgeError:
        return False


def _loss(config: dict) -> str:
    return str(_options(config).get("loss", "nonsaturating"))


def _probabilities(loss: str) -> bool:
    return loss in LOSSES.names() and LOSSES.get(loss).probabilities


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4)


def _steps(rows: list[dict]) -> list[int]:
    return [int(rows[0]["step"]), int(rows[-1]["step"])]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def d_wins(rows: list[dict], config: dict) -> list[Finding]:
    """D rejects the fakes with confidence (D(G(z)) < 0.05 while D(x) > 0.95) over most of the last 30% of steps.
    Not for translating families: their L1 / cycle terms carry G, and a confident D is common in healthy runs
    (pix2pix on edges2fashion: D(G(A)) 0.02-0.05 from step 60 to 240); the translation rules cover them."""
    loss = _loss(config)
    if not _probabilities(loss) or _translates(config):
        return []
    stretch = [r for r in tail(training_rows(rows)) if _finite(r.get("D_fake")) and _finite(r.get("D_real"))]
    if len(stretch) < MIN_TAIL_ROWS:
        return []
    winning = [r for r in stretch if r["D_fake"] < D_FAKE_LOW and r["D_real"] > D_REAL_HIGH]
    if len(winning) < STRETCH_SHARE * len(stretch):
        return []
    evidence = {"steps": _steps(stretch), "D_fake_mean": _mean([r["D_fake"] for r in stretch]),
                "D_real_mean": _mean([r["D_real"] for r in stretch]),
                "rows_where_D_wins": f"{len(winning)}/{len(stretch)}", "loss": loss}
    grad = g_gradient(rows)
    if grad is not None:
        evidence.update(grad)
    if loss == "minimax":
        return [Finding("error", "d_wins",
                        "D rejects every fake with confidence, and with the saturating minimax loss log(1 - D(G(z))) "
                        "G's gradient vanishes exactly then (Goodfellow et al. 2014, section 3): G has stopped "
                        "learning.", evidence, "loss=nonsaturating")]
    opts, (_, lr_d) = _options(config), learning_rates(config)
    d_steps = int(opts.get("d_steps", 1))
    fix = [f"lr_d={lr_d / 4:g}"] + ([f"d_steps={max(1, d_steps // 2)}"] if d_steps > 1 else [])
    if not float(opts.get("r1_weight", 0) or 0):
        fix.append("r1_weight=1")
    return [Finding("warning", "d_wins",
                    "D tells real from fake almost perfectly for a long stretch, so G learns little from it: "
                    "D is too strong for G.", evidence, " or ".join(fix))]


def divergence(rows: list[dict], config: dict) -> list[Finding]:
    """Non-finite losses (an error), or a loss more than 10x its running median before that (a warning)."""
    train_rows = training_rows(rows)
    if not train_rows:
        return []
    lr_g, lr_d = learning_rates(config)
    fix = [f"lr_g={lr_g / 10:g} lr_d={lr_d / 10:g}"]
    if _loss(config) in ("wgan", "wgan-gp"):
        fix.append("loss=wgan-gp" if _loss(config) == "wgan" else "gp_weight=10")
    elif not float(_options(config).get("r1_weight", 0) or 0):
        fix.append("r1_weight=1")
    precision = str(_training(config).get("precision", "fp32"))
    if precision in ("bf16", "fp16"):
        fix.append("precision=fp32")
    fix_text = " or ".join(fix)
    keys = [k for k in ("loss_D", "loss_G", "D_real", "D_fake") if any(k in r for r in train_rows)]
    bad = [r for r in train_rows if any(k in r and not _finite(r[k]) for k in keys)]
    spikes = []
    for key in LOSS_KEYS:
        history: list[float] = []
        for r in train_rows:
            value = r.get(key)
            if not _finite(value):
                break  # spikes count before the first non-finite value only
            if len(history) >= SPIKE_MIN_HISTORY:
                typical = median(abs(v) for v in history[-SPIKE_WINDOW:])
                if abs(value) > SPIKE_FACTOR * max(typical, SPIKE_FLOOR):
                    spikes.append({"step": int(r["step"]), "loss": key, "value": round(value, 4),
                                   "running_median": round(typical, 4)})
            history.append(value)
    if bad:
        first = int(bad[0]["step"])
        evidence = {"steps": [first, int(train_rows[-1]["step"])], "first_non_finite_step": first,
                    "non_finite_rows": len(bad), "precision": precision}
        before = [s for s in spikes if s["step"] < first]
        if before:
            evidence["spikes_before"] = before[:5]
        grad_before = grad_spikes(rows, first)
        if grad_before:
            evidence["gradient_spikes_before"] = grad_before[:5]
            before = before or grad_before
        return [Finding("error", "divergence",
                        f"Training blew up: the losses became infinite or NaN at step {first}"
                        + (", after loss spikes" if before else "") + ", so the networks hold garbage from then on.",
                        evidence, fix_text)]
    blown = weight_blowup(rows)
    if blown is not None:
        net = blown["network"]
        saturated = ("; its gradient is now 0 (the network is saturated and will not recover)"
                     if blown["grad_norm_zero"] else "")
        return [Finding("error", "divergence",
                        f"Training blew up: {net}'s weights grew to {blown['growth']:g} times their size at step "
                        f"{blown['from_step']} (more than 10 times by step {blown['first_step']}){saturated}. "
                        "The updates are far too big for these networks.",
                        {"steps": [blown["first_step"], int(train_rows[-1]["step"])], **blown, "precision": precision,
                         "lr_g": lr_g, "lr_d": lr_d}, fix_text)]
    last = int(train_rows[-1]["step"])
    spikes = [s for s in spikes if s["step"] < last]  # a spike in the last row alone is no trend yet
    if not spikes:
        return []
    return [Finding("warning", "divergence",
                    "A loss jumped to more than ten times its usual size, the usual sign that the updates are too big "
                    "and training is close to blowing up.",
                    {"steps": [spikes[0]["step"], spikes[-1]["step"]], "spikes": len(spikes), "first": spikes[0],
                     "precision": precision}, fix_text)]


def _eval_series(rows: list[dict]) -> tuple[str, list[tuple[int, float]]] | None:
    for name in LOWER_IS_BETTER:
        for key in (f"eval_{name}", name):
            series = {}
            for r in rows:
                if key in r and "step" in r and _finite(r[key]):
                    series[int(r["step"])] = float(r[key])
            if series:
                return name, sorted(series.items())
    return None


def no_progress(rows: list[dict], config: dict) -> list[Finding]:
    """The quality measure (FID, else KID, else IS) did not beat its best in the last 2 or more evaluations."""
    found = _eval_series(rows)
    if found is None:
        return []
    name, series = found
    if len(series) < STALL_EVALS + 1:
        return []
    lower = LOWER_IS_BETTER[name]
    values = [v for _, v in series]
    best_i = values.index(min(values) if lower else max(values))
    after = len(series) - 1 - best_i
    if after < STALL_EVALS:
        return []
    best_step, best = series[best_i]
    last_step, last = series[-1]
    worse = (last - best) / abs(best) if best else 0.0
    worse = worse if lower else -worse
    evidence = {"steps": [best_step, last_step], "metric": name, "best": round(best, 4), "best_step": best_step,
                "last": round(last, 4), "evaluations_since_best": after, "relative_change": round(worse, 4)}
    getting = "getting worse" if worse > 0.1 else "no better"
    schedule = _training(config).get("lr_schedule", "constant")
    fix = "ganforge sample RUN --ckpt best (the best checkpoint)"
    if schedule == "constant":
        fix += " and, to train on, lr_schedule=linear"
    return [Finding("warning", "no_progress",
                    f"The {name.upper()} has been {getting} than its best (step {best_step}) for the last {after} "
                    f"evaluations, so more training of this run is not helping.", evidence, fix)]


def d_overfit(rows: list[dict], config: dict) -> list[Finding]:
    """D memorises the training images: ADA's r_t above target for long, or (small data, no augmentation) D's
    outputs approaching 1 on reals and 0 on fakes."""
    opts = _options(config)
    size = (config.get("dataset") or {}).get("size")
    gap = heldout_gap(rows, _probabilities(_loss(config)))
    if gap is not None:
        rt = [r for r in training_rows(rows) if _finite(r.get("ada_rt"))]
        if rt:
            gap["ada_rt_last"] = rt[-1]["ada_rt"]
        fix = "more training images, or a smaller D (model.ndf=)"
        if opts.get("augment", "none") in ("none", "auto"):
            fix = "augment=ada, " + fix
        return [Finding("warning", "d_overfit",
                        "D scores its training images as more real than real images it has not seen: it is "
                        "memorising the training set rather than learning what real images look like.",
                        {**gap, "dataset_size": size, "augment": opts.get("augment", "none")}, fix)]
    stretch = tail(training_rows(rows))
    if not stretch:
        return []
    rt_rows = [r for r in stretch if _finite(r.get("ada_rt"))]
    if len(rt_rows) >= MIN_TAIL_ROWS:
        target = float(opts.get("ada_target", 0.6))
        above = [r for r in rt_rows if r["ada_rt"] > target]
        if len(above) >= STRETCH_SHARE * len(rt_rows):
            evidence = {"steps": _steps(rt_rows), "ada_rt_mean": _mean([r["ada_rt"] for r in rt_rows]),
                        "ada_target": target, "rows_above_target": f"{len(above)}/{len(rt_rows)}",
                        "dataset_size": size}
            if any(_finite(r.get("aug_p")) for r in rt_rows):
                evidence["aug_p_last"] = round(float(rt_rows[-1].get("aug_p", float("nan"))), 4)
            return [Finding("warning", "d_overfit",
                            "D is sure that almost every training image is real (ADA's overfitting sign r_t stays "
                            "above its target), so it is memorising the training set rather than learning what "
                            "real images look like.", evidence,
                            "more training images, a smaller D (model.ndf=), or a faster ADA (a smaller ada_speed=)")]
        return []
    if opts.get("augment", "none") != "none" or not size or int(size) >= SMALL_DATA:
        return []
    if not _probabilities(_loss(config)):
        return []
    scored = [r for r in stretch if _finite(r.get("D_real")) and _finite(r.get("D_fake"))]
    if len(scored) < MIN_TAIL_ROWS:
        return []
    real, fake = _mean([r["D_real"] for r in scored]), _mean([r["D_fake"] for r in scored])
    if real < 0.9 or fake > 0.1:
        return []
    return [Finding("warning", "d_overfit",
                    f"With only {int(size)} training images and no augmentation, D's answers approach 1 on reals and "
                    f"0 on fakes: it is likely memorising the training set.",
                    {"steps": _steps(scored), "D_real_mean": real, "D_fake_mean": fake, "dataset_size": int(size),
                     "augment": "none"}, "augment=ada")]


RULES = (divergence, d_wins, no_progress, d_overfit, toy_mode_collapse, translation_rules)  # causes first

