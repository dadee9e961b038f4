"""The public Python API; the command line is a thin layer over these functions.

    import ganforge
    cfg = ganforge.resolve_config("fmnist-demo", overrides=["steps=200"])
    run = ganforge.train(cfg, "runs/demo")
    model = ganforge.load("runs/demo")         # the inference object: no training task, no training config
    images = model.sample(16, seed=1)          # uint8 [16, H, W, C]
    ganforge.stylize("photo.jpg", ["style.jpg"], out="result.png")   # neural style transfer (Gatys et al.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint, resolve_checkpoint
from .doctor import diagnose as doctor
from .errors import GanforgeError
from .families import family_of, load, model_spec
from .metrics.evaluation import evaluate as evaluate_samples
from .metrics.evaluation import record_result
from .models import count_parameters
from .pipelines import Pipeline, resolve_device
from .style_transfer import stylize
from .threads import applies_threads
from .toy_runs import TOY_FRAMES, compare_toy, frame_interval, parse_variants, toy_config, train_toy
from .training import RESUME_CHANGES, RunResult, plan_resume, resume, train
from .translation import translate


def info(model: str, options: dict[str, Any] | None = None) -> dict[str, int]:
    """Parameter count of each network of ``model`` built with ``options``, e.g. {"G": ..., "D": ...}."""
    spec = model_spec(model)
    nets = spec.networks(spec.complete(options))
    return {name: count_parameters(net) for name, net in nets.items()}


@applies_threads
def evaluate(source: str | Path | Pipeline, against: str | None = None, metrics=("fid",), extractor: str | None = None,
             n: int | None = None, ckpt: str = "latest", seed: int = 0, weights: str | None = None,
             device: str = "cpu", batch_size: int = 100, ema: bool | None = None, data_root: str | None = None,
             split: str = "train", real_vs_real: bool = True, record: bool = True,
             progress: bool = False) -> dict[str, Any]:
    """FID / KID / IS / precision-recall / density-coverage of a run folder or checkpoint (``n`` generated
    images, default 10,000), an inference object, an .npz of samples or a folder of images, against a
    dataset, a folder or FID statistics. Returns one JSON-able dict recording the protocol; a run's
    result is also appended to its metrics.jsonl (``record``). ``progress``: progress bars on stderr."""
    model = source if isinstance(source, Pipeline) else None
    path = Path(model.path) if model is not None and model.path is not None else Path(str(source))
    if model is None and not (path.suffix == ".npz" and path.is_file()) and not (
            path.is_dir() and not (path / "checkpoints").is_dir() and not (path / "meta.json").is_file()):
        model = load(path, ckpt, device)
    family = family_of(model) if model is not None else None
    if family is not None and family.evaluate is not None:  # the family's own protocol (held-out pairs ...)
        result = family.evaluate(model, against=against, metrics=metrics, extractor=extractor, n=n, seed=seed,
                                 weights=weights, device=device, batch_size=batch_size, data_root=data_root,
                                 split=split, progress=progress)
        if record:
            record_result(model, result)
        return result
    if family is not None and not family.can("eval"):
        what = ("generates points, not images" if family_of(model).can("points") else
                "translates images; evaluate it on held-out pairs with ganforge translate RUN --split test")
        raise GanforgeError(f"{model.source!r} is a {model.name} model: it {what}.")
    return evaluate_samples(path, against=against, metrics=metrics, extractor=extractor, n=n, seed=seed,
                            weights=weights, device=device, batch_size=batch_size, ema=ema, data_root=data_root,
                            split=split, real_vs_real=real_vs_real, record=record, model=model,
                            progress=progress)


__all__ = ["RESUME_CHANGES", "TOY_FRAMES", "RunResult", "compare_toy", "doctor", "evaluate", "frame_interval", "info",
           "load", "load_checkpoint",
           "parse_variants", "plan_resume", "resolve_checkpoint", "resolve_device", "resume", "stylize", "toy_config",
           "train", "train_toy", "translate"]
