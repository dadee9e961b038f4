"""Evaluation: images -> features (streamed, batched, no grad) -> metrics, with cached reference features.

The same functions serve ``ganforge eval``, the Python API and the training loop (``eval_every``).
Generated images are never held all at once: each batch is turned into features and dropped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import load_dataset
from ..data.folders import list_images, read_image
from ..errors import GanforgeError
from ..io import cache_dir, warn_skipped, write_atomic
from .features import EXTRACTORS, FeatureExtractor
from .fid import fid_from_features, frechet_distance, gaussian_stats, load_stats, warn_small_n
from .isc import inception_score
from .kid import kernel_inception_distance
from .prdc import density_coverage, precision_recall

ALL_METRICS = ("fid", "kid", "is", "pr", "dc")
HIGHER_IS_BETTER = {"is_mean", "precision", "recall", "density", "coverage", "class_entropy", "mean_confidence"}
Batches = Iterable[torch.Tensor]  # uint8 [B, C, H, W]


@dataclass
class Features:
    features: np.ndarray  # float64 [N, D]
    logits: np.ndarray | None  # float64 [N, K] when the extractor classifies
    labels: np.ndarray | None = None  # int64 [N]: the images' classes, when known


def default_extractor(channels: int, image_size: int) -> str:
    """fmnist for small grayscale images (28x28-like), inception otherwise."""
    return "fmnist" if channels == 1 and image_size <= 32 else "inception"


def get_extractor(name: str, weights: str | None = None, device: str | torch.device = "cpu") -> FeatureExtractor:
    from . import load_extractors

    load_extractors()
    return EXTRACTORS.get(name)(weights, torch.device(device)).eval()


@torch.no_grad()
def extract(batches: Batches, extractor: FeatureExtractor, limit: int | None = None,
            progress: str | None = None, total: int | None = None) -> Features:
    """Features of every image in ``batches`` (uint8 [B, C, H, W] each), up to ``limit`` images;
    ``progress``: a progress bar (on stderr) with this description, over ``total`` (or ``limit``) images."""
    device = _device_of(extractor)
    feats, logits = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or limit, desc=progress, unit="img", leave=False, mininterval=1.0)
    try:
        _extract_into(batches, extractor, limit, device, feats, logits, bar)
    finally:
        if bar is not None:
            bar.close()
    if not feats:
        raise GanforgeError("No images to evaluate.")
    return Features(np.concatenate(feats), np.concatenate(logits) if logits else None)


def _device_of(extractor: FeatureExtractor) -> torch.device:
    """Where the extractor's weights (or buffers) are; the CPU for one without either (a fixed function)."""
    tensor = next(itertools.chain(extractor.parameters(), extractor.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _extract_into(batches: Batches, extractor: FeatureExtractor, limit: int | None, device, feats: list,
                  logits: list, bar) -> int:
    n = 0
    for batch in batches:
        if limit is not None and n >= limit:
            break
        if limit is not None:
            batch = batch[: limit - n]
        if batch.dtype != torch.uint8:
            raise GanforgeError(f"Images for evaluation must be uint8, got {batch.dtype}.")
        out = extractor(batch.to(device))
        feats.append(out["features"].double().cpu().numpy())
        if "logits" in out:
            logits.append(out["logits"].double().cpu().numpy())
        n += batch.shape[0]
        if bar is not None:
            bar.update(batch.shape[0])
    return n


# --------------------------------------------------------------------------- image sources
def batches_from_array(images: np.ndarray | torch.Tensor, batch_size: int, channels_last: bool = False) -> Iterator:
    """Batches from uint8 images [N, C, H, W] (or [N, H, W, C] with ``channels_last``)."""
    x = torch.as_tensor(images)
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    for i in range(0, x.shape[0], batch_size):
        yield x[i:i + batch_size].contiguous()


def batches_from_npz(path: Path, batch_size: int) -> tuple[Iterator, int, tuple[int, int]]:
    """(batches, count, (channels, size)) from an .npz holding ``images`` uint8 [N, H, W, C]."""
    try:
        with np.load(path, allow_pickle=False) as z:
            images = z["images"]
    except (OSError, ValueError, KeyError) as e:
        raise GanforgeError(f"Cannot read images from {str(path)!r} (expected an .npz with 'images' uint8 "
                            f"[N, H, W, C]): {e}.") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise GanforgeError(f"{str(path)!r}: 'images' must be uint8 [N, H, W, C] with C 1 or 3, got "
                            f"{images.dtype} {list(images.shape)}.")
    return batches_from_array(images, batch_size, channels_last=True), len(images), (images.shape[-1],
                                                                                       images.shape[1])


def batches_from_folder(root: Path, batch_size: int, limit: int | None = None) -> tuple[Iterator, int, tuple[int, int]]:
    """Images of a folder at their own sizes (consecutive same-shape images are batched); unreadable files
    are skipped and reported once."""
    files = list_images(root)[0]
    if limit is not None:
        files = files[:limit]
    if not files:
        raise GanforgeError(f"No image files found in {str(root)!r}.")
    first = next((a for a in (read_image(f) for f in files[:20]) if a is not None), None)
    if first is None:
        raise GanforgeError(f"The first images in {str(root)!r} cannot be read.")
    channels = 3 if any(a is not None and a.shape[0] == 3 for a in (read_image(f) for f in files[:20])) else 1

    def gen():
        bad, group = [], []
        for f in files:
            a = read_image(f)
            if a is None:
                bad.append(f.name)
                continue
            if a.shape[0] != channels:  # mixed folders: gray -> RGB, never the other way
                a = np.repeat(a, 3, axis=0)
            if group and (a.shape != group[0].shape or len(group) == batch_size):
                yield torch.from_numpy(np.stack(group))
                group = []
            group.append(a)
        if group:
            yield torch.from_numpy(np.stack(group))
        warn_skipped(bad, root)

    return gen(), len(files), (channels, max(first.shape[1:]))


def batches_from_model(model, n: int, seed: int, batch_size: int, ema: bool | None = None) -> Iterator:
    """Generate ``n`` images in batches from an inference object (reproducible for ``seed``)."""
    for start in range(0, n, batch_size):
        # the same inputs as model.sample(n, seed), produced a batch at a time
        images = model.sample_batch(n, seed, start, min(batch_size, n - start), ema)
        yield images


# --------------------------------------------------------------------------- reference features (cached)
def _cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def dataset_features(name: str, split: str, n: int, extractor: FeatureExtractor, root: str | None = None,
                     seed: int = 0, batch_size: int = 200, cache: bool = True,
                     progress: bool = False) -> tuple[Features, dict]:
    """Features of ``n`` images of a dataset split (a seeded random subset), cached on disk by
    (dataset, split, n, seed, extractor protocol); ``progress``: a progress bar while they are computed."""
    protocol = extractor.protocol()
    info = {"kind": "dataset", "name": name, "split": split, "n": n, "subset_seed": seed}
    key = _cache_key(**info, protocol=protocol, labels=True)
    path = cache_dir("stats") / f"{name.replace('/', '_')}-{split}-{key}.npz"
    if cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                logits = z["logits"] if "logits" in z.files else None
                labels = z["labels"] if "labels" in z.files else None
                return Features(z["features"], logits, labels), {**info, "n": len(z["features"]), "cached": True}
        except (OSError, ValueError, KeyError):
            pass  # a broken cache file is recomputed
    data = load_dataset(name, root, split)
    n_take = min(n, len(data))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n_take]
    feats = extract(batches_from_array(data.images[order], batch_size), extractor,
                    progress=f"{name} {split} features" if progress else None, total=n_take)
    if data.labels is not None:
        feats.labels = data.labels[order].numpy().astype(np.int64)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"features": feats.features.astype(np.float64)}
        if feats.logits is not None:
            arrays["logits"] = feats.logits
        if feats.labels is not None:
            arrays["labels"] = feats.labels
        write_atomic(path, lambda tmp: np.savez(tmp, **arrays))
    return feats, {**info, "n": n_take, "cached": False}


# --------------------------------------------------------------------------- metrics
def compute_metrics(fake: Features, real: Features | None, metrics: Iterable[str], seed: int = 0,
                    real_stats: tuple[np.ndarray, np.ndarray] | None = None,
                    class_names: list[str] | None = None) -> dict[str, Any]:
    """The requested metrics of generated features against reference features (or FID statistics)."""
    out: dict[str, Any] = {}
    for m in metrics:
        if m not in ALL_METRICS:
            raise GanforgeError(f"Unknown metric {m!r}; choose from: {', '.join(ALL_METRICS)}.")
        if m in ("kid", "pr", "dc") and real is None:
            raise GanforgeError(f"Metric {m} needs reference images or features, not only FID statistics.")
    metrics = list(metrics)
    if "fid" in metrics:
        if real is not None:
            out["fid"] = fid_from_features(real.features, fake.features, warn=False)  # callers flag a small N
        else:
            mu, sigma = gaussian_stats(fake.features)
            out["fid"] = frechet_distance(real_stats[0], real_stats[1], mu, sigma)
    if "kid" in metrics:
        m = min(1000, len(fake.features), len(real.features))
        out["kid_mean"], out["kid_std"] = kernel_inception_distance(real.features, fake.features, subset_size=m,
                                                                    seed=seed)
        out["kid_subset_size"] = m
    if "is" in metrics:
        if fake.logits is None:
            raise GanforgeError("The Inception Score needs an extractor that classifies (inception or fmnist).")
        # splits of a seeded shuffle: generated images may come ordered (class-conditional rows of one class)
        order = np.random.default_rng(seed).permutation(len(fake.logits))
        out["is_mean"], out["is_std"] = inception_score(fake.logits[order], splits=min(10, len(fake.logits)))
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(real.features, fake.features, k=3)
    if "dc" in metrics:
        out["density"], out["coverage"] = density_coverage(real.features, fake.features, k=5)
    if fake.logits is not None and class_names:
        out.update(class_coverage(fake.logits, class_names))
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in out.items()}


def class_coverage(logits: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Predicted-class histogram, its entropy (nats; log K when every class is equally frequent) and the
    mean confidence (max softmax probability) of a classifier extractor."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    counts = np.bincount(p.argmax(1), minlength=len(class_names))
    freq = counts / counts.sum()
    entropy = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    return {"class_counts": {name: int(c) for name, c in zip(class_names, counts, strict=True)},
            "class_entropy": entropy, "class_entropy_max": math.log(len(class_names)),
            "mean_confidence": float(p.max(1).mean())}


def per_class_metrics(fake: Features, requested: np.ndarray, class_names: list[str], real: Features | None = None,
                      extractor_classes: list[str] | None = None) -> dict[str, Any]:
    """Metrics of a class-conditional generator, per requested class.

    ``class_accuracy``: the fraction of images of each requested class that the extractor's classifier
    assigns to that class (only when the extractor's classes are the model's classes, e.g. the fmnist
    classifier for a Fashion-MNIST cGAN), with their mean over classes. ``fid_per_class``: FID between
    the generated images of each class and the reference images of the same class (when the reference
    features carry labels), with their mean."""
    out: dict[str, Any] = {}
    k = len(class_names) or int(requested.max()) + 1
    names = class_names or [str(i) for i in range(k)]
    same = extractor_classes is not None and [c.lower() for c in extractor_classes] == [c.lower() for c in names]
    if fake.logits is not None and same:
        pred = fake.logits.argmax(1)
        acc = {names[c]: float((pred[requested == c] == c).mean()) for c in range(k) if (requested == c).any()}
        out["class_accuracy"] = acc
        out["class_accuracy_mean"] = float(np.mean(list(acc.values())))
    if real is not None and real.labels is not None:
        fids = {}
        for c in range(k):
            a, b = real.features[real.labels == c], fake.features[requested == c]
            if len(a) >= 2 and len(b) >= 2:
                fids[names[c]] = float(fid_from_features(a, b, warn=False))
        if fids:
            out["fid_per_class"] = fids
            out["fid_per_class_mean"] = float(np.mean(list(fids.values())))
            smallest = min(min((real.labels == c).sum(), (requested == c).sum()) for c in range(k))
            if smallest <= real.features.shape[1]:  # flagged once here rather than warned once per class
                out["fid_per_class_reliable"] = False
    return out


def better(metric: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new > old if metric in HIGHER_IS_BETTER else new < old


# --------------------------------------------------------------------------- the one entry point
def evaluate(
    source: str | Path,
    against: str | None = None,
    metrics: Iterable[str] = ("fid",),
    extractor: str | None = None,
    n: int | None = None,
    ckpt: str = "latest",
    seed: int = 0,
    weights: str | None = None,
    device: str = "cpu",
    batch_size: int = 100,
    ema: bool | None = None,
    data_root: str | None = None,
    split: str = "train",
    real_vs_real: bool = True,
    record: bool = True,
    model: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a model (``model``: an inference object from ``ganforge.load``, generating ``n`` images), an
    .npz of samples or an image folder against a dataset name, an image folder or an FID statistics .npz.
    Returns one JSON-able dict that records the protocol; for a model loaded from a run folder it is also
    appended to the run's metrics.jsonl (``record``). ``ganforge.evaluate`` loads run folders for this.
    ``progress``: progress bars on stderr while images are generated and their features computed."""
    t0 = time.perf_counter()
    source = Path(source)
    metrics = [m.strip() for m in metrics if m.strip()]
    if model is not None:  # a model whose family offers eval (ganforge.evaluate checks it)
        ds = model.meta.get("dataset") or {}
        channels, size = ds.get("channels", 3), ds.get("image_size", 64)
        count = n or 10000
        batches = batches_from_model(model, count, seed, batch_size, ema)
        kind = "model"
        against = against or ds.get("name")
        data_root = data_root or model.data_config().root
    elif source.suffix == ".npz" and source.is_file():
        batches, count, (channels, size) = batches_from_npz(source, batch_size)
        kind = "npz"
    elif source.is_dir() and not (source / "checkpoints").is_dir() and not (source / "meta.json").is_file():
        batches, count, (channels, size) = batches_from_folder(source, batch_size, n)
        kind = "folder"
    else:
        raise GanforgeError(f"{str(source)!r} is not an .npz of samples or a folder of images; evaluate run "
                            "folders with ganforge.evaluate (or ganforge eval RUN_DIR).")
    n_fake = min(count, n) if n else count
    name = extractor or default_extractor(channels, size)
    ex = get_extractor(name, weights, device)
    fake = extract(batches, ex, n_fake, progress=("generated images" if kind == "model" else "images")
                   if progress else None)
    n_fake = len(fake.features)
    # per-class measures for a class-conditional model; a self-conditioned one's clusters are not the data's classes
    per_class = model is not None and bool(model.num_classes) and not getattr(model, "clustered", False)

    real, real_stats, ref_info, rvr = None, None, {}, None
    if against is None:
        raise GanforgeError("Give --against DATASET|IMAGE_DIR|STATS.npz for samples that do not come from a run.")
    if against.endswith(".npz") and Path(against).is_file():
        mu, sigma, proto = load_stats(Path(against))
        real_stats = (mu, sigma)
        ref_info = {"kind": "stats", "path": against, "protocol": proto}
    elif Path(against).expanduser().is_dir():
        b, c, _ = batches_from_folder(Path(against).expanduser(), batch_size, n_fake)
        real = extract(b, ex, n_fake)
        ref_info = {"kind": "folder", "path": against, "n": len(real.features)}
    else:
        real, ref_info = dataset_features(against, split, n_fake, ex, data_root, seed=seed, progress=progress)
        if real_vs_real and "fid" in metrics:
            other = "test" if split == "train" else "train"
            try:
                a, _ = dataset_features(against, split, n_fake, ex, data_root, seed=seed + 1, progress=progress)
                b, _ = dataset_features(against, other, n_fake, ex, data_root, seed=seed + 1, progress=progress)
                m = min(len(a.features), len(b.features))
                rvr = {"fid": float(fid_from_features(a.features[:m], b.features[:m], warn=False)), "n": m,
                       "splits": f"{split} vs {other}"}
                if per_class and a.labels is not None and b.labels is not None:
                    floors = per_class_metrics(Features(b.features[:m], None), b.labels[:m], model.class_names,
                                               Features(a.features[:m], None, a.labels[:m]))
                    rvr["fid_per_class"] = floors.get("fid_per_class")
                    rvr["fid_per_class_mean"] = floors.get("fid_per_class_mean")
            except GanforgeError:
                rvr = None  # a dataset without a second split
    result = {
        "source": str(source), "kind": kind, "n": n_fake, "metrics": metrics, "seed": seed,
        "extractor": ex.protocol(), "reference": ref_info,
    }
    if model is not None:
        result.update(step=model.step, ckpt=str(model.path), ema=model.uses_ema(ema))
    result.update(compute_metrics(fake, real, metrics, seed, real_stats, getattr(ex, "class_names", None) or None))
    if rvr is not None:
        result["fid_real_vs_real"] = rvr["fid"]
        if rvr.get("fid_per_class_mean") is not None:  # one name for it, beside the per-class FIDs' mean
            result["fid_per_class_real_vs_real_mean"] = rvr.pop("fid_per_class_mean")
        result["real_vs_real"] = rvr
    if per_class:
        y = model.inputs(count, seed)["y"][:n_fake].numpy()
        result.update(per_class_metrics(fake, y, model.class_names, real if "fid" in metrics else None,
                                        getattr(ex, "class_names", None)))
    result["time_s"] = round(time.perf_counter() - t0, 2)
    dim = fake.features.shape[1]
    if "fid" in metrics and n_fake <= dim:  # a covariance of rank < D: flagged, and never recorded as a result
        result["fid_reliable"] = False
        result["warning"] = (f"FID from N={n_fake} images with {dim}-dimensional features is unreliable (the "
                             f"covariance has rank at most N-1 < {dim}); use --n {max(10 * dim, 10000)} or more; "
                             "this result was not added to the run's metrics.jsonl")
        record = False
    if record and model is not None:
        record_result(model, result)
    return result


def record_result(model, result: dict[str, Any]) -> None:
    """Append an evaluation ``result`` of a run's checkpoint to the run's metrics.jsonl (nothing for a model
    that is not in a run folder)."""
    if model.path is None:
        return
    run_dir = Path(model.path).parent.parent
    if (run_dir / "metrics.jsonl").is_file():
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": model.step, "eval": result}) + "\n")


def training_evaluator(data, metric: str, n: int, extractor: str | None, device: torch.device, seed: int = 0,
                       batch_size: int = 100) -> Callable[[Callable[[int, int], torch.Tensor]], dict[str, Any]]:
    """An evaluator for the training loop: reference features from the in-memory training images
    (computed once), generated side streamed from ``sample(start, count) -> uint8 [count, C, H, W]``."""
    key = {"fid": "fid", "kid": "kid_mean", "is": "is_mean", "pr": "precision", "dc": "coverage"}
    if metric not in key:
        raise GanforgeError(f"Unknown eval_metric {metric!r}; choose from: {', '.join(key)}.")
    ex = get_extractor(extractor or default_extractor(data.channels, data.image_size), None, device)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    real = extract(batches_from_array(data.images[order], batch_size), ex)
    if metric == "fid" and len(order) <= real.features.shape[1]:
        warn_small_n(len(order), real.features.shape[1])  # once, not at every evaluation

    def run(sample: Callable[[int, int], torch.Tensor]) -> dict[str, Any]:
        batches = (sample(s, min(batch_size, n - s)) for s in range(0, n, batch_size))
        fake = extract(batches, ex)
        out = compute_metrics(fake, real, [metric], seed, class_names=getattr(ex, "class_names", None) or None)
        out = {k: v for k, v in out.items() if not isinstance(v, dict)}
        return {"value": out[key[metric]], "name": key[metric], **out}

    return run
