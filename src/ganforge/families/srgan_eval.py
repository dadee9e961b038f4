"""The SR evaluation of an srgan / srresnet run (``ganforge eval RUN``, ``ganforge.evaluate(run)``).

On whole held-out photos (the ``test`` split of the run's data at its load size; or of ``against``, another
source at its own resolution: a published set such as Set5 is one split, all of it), each mod-cropped to a
multiple of the scale, LR made by the protocol's bicubic (:func:`ganforge.metrics.sr.bicubic_downscale`), rows
for bicubic upscaling, the SRResNet (an srgan run's ``G_mse``, the end of its MSE stage) and the SRGAN (the
checkpoint's G), each a mean over the images of:

* PSNR and SSIM on Y (BT.601) with ``scale`` pixels shaved (:mod:`ganforge.metrics.sr`; higher is better);
* ``LPIPS-rand``: an LPIPS-like perceptual distance (Zhang et al. 2018, without learned layer weights) with
  the offline random feature network of :mod:`ganforge.style.features` (filters 3, 5, 7, 11, 32 each, seed
  1: not the seed-0 network the content loss trains with): at every position the feature vector of each
  layer is divided by its length, the squared differences are summed over channels, averaged over
  positions, then over layers (lower is better; 0 for identical images);
* ``detail``: the mean absolute Laplacian of Y over that of the original (1 = as much fine detail as the
  original; bicubic and MSE-trained networks blur, so below 1; above 1 is invented detail or noise).

* ``MMD-<extractor>`` (x 1000): KID's kernel distance (Binkowski et al. 2018; :mod:`ganforge.metrics.kid`)
  between the features of the method's patches and those of the original's patches: non-overlapping
  ``PATCH`` x ``PATCH`` tiles of every shaved image (smaller tiles for small images), so the distribution of
  local texture is compared, as patch-FID / patch-KID are in SR papers. The tiles of the two sets come from the
  same places, which pulls KID's unbiased estimate below 0 even for identical images; the biased estimate
  (:func:`ganforge.metrics.kid.mmd2_biased`) is used instead: 0 for identical images, lower is better, and
  comparable between the rows of one table (same tiles, same count), not with published KIDs. The extractor is
  ``extractor`` when given (``inception`` with its weights, or any registered one), else ``rand``: the same
  random network as LPIPS-rand, each channel's mean and standard deviation over the tile ("-" when fewer than
  2 tiles fit). Measured on the srgan-cpu photos: bicubic 0.11, Gaussian noise of sigma 8 on the original 0.85.

The perceptual numbers are on the shaved region, and none is a learned judgement of quality: the paper's own
perceptual evidence is a mean opinion score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.sr_photos import held_out_images
from ..metrics.evaluation import get_extractor
from ..metrics.kid import mmd2_biased
from ..metrics.sr import bicubic_downscale, bicubic_upscale, psnr_y, rgb_to_y, ssim_y
from ..style.features import RANDOM_FILTERS, RANDOM_SIZES, RandomMultiScale

LPIPS_SEED = 1
PATCH = 32  # HR pixels per side of the tiles the patch KID compares
LABELS = {"srresnet": "SRResNet", "srgan": "SRGAN"}


def _tensor01(image: np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255).to(device)
    return x.expand(-1, 3, -1, -1)


def lpips_random(a: np.ndarray, b: np.ndarray, net: RandomMultiScale, shave: int = 0) -> float:
    """The LPIPS-like distance of uint8 [H, W, C] images ``a`` and ``b`` with ``net`` (module docstring)."""
    h, w = a.shape[:2]
    crop = (slice(shave, h - shave), slice(shave, w - shave))
    device = next(net.parameters()).device
    with torch.no_grad():
        fa = net(_tensor01(a[crop], device), net.layer_names)
        fb = net(_tensor01(b[crop], device), net.layer_names)
    per_layer = []
    for k in net.layer_names:
        na = fa[k] / (fa[k].pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = fb[k] / (fb[k].pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        per_layer.append(float((na - nb).pow(2).sum(1).mean()))
    return float(np.mean(per_layer))


def detail_ratio(output: np.ndarray, original: np.ndarray, shave: int = 0) -> float:
    """Mean |Laplacian of Y| of ``output`` over that of ``original`` (uint8 [H, W, C]), ``shave`` borders cut."""
    def energy(image: np.ndarray) -> float:
        y = rgb_to_y(image)
        h, w = y.shape
        y = y[shave:h - shave, shave:w - shave]
        lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
        return float(np.abs(lap).mean())
    return energy(output) / max(energy(original), 1e-12)


def tiles(image: np.ndarray, shave: int, size: int) -> np.ndarray:
    """The non-overlapping ``size`` x ``size`` tiles of uint8 [H, W, C] ``image`` with ``shave`` borders cut,
    row by row -> uint8 [N, size, size, C] (N = 0 when none fits)."""
    h, w = image.shape[:2]
    x = image[shave:h - shave, shave:w - shave]
    rows, cols = x.shape[0] // size, x.shape[1] // size
    if rows * cols == 0:
        return np.zeros((0, size, size, image.shape[2]), image.dtype)
    x = x[:rows * size, :cols * size].reshape(rows, size, cols, size, -1)
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3, 4).reshape(rows * cols, size, size, -1))


def tile_size(images: list[np.ndarray], shave: int, smallest: int) -> int:
    """``PATCH``, or half the smallest shaved side when that is less (at least 2 tiles per image), not below
    ``smallest`` (the largest filter of the random network)."""
    side = min(min(im.shape[0], im.shape[1]) - 2 * shave for im in images)
    return max(smallest, min(PATCH, side // 2))


@torch.no_grad()
def patch_features(patches: np.ndarray, net: RandomMultiScale, extractor=None, batch: int = 256) -> np.ndarray:
    """Features of uint8 tiles [N, s, s, C]: the ``extractor``'s ``features`` when given, else each random
    filter's mean and standard deviation over the tile -> float64 [N, D]."""
    out = []
    for i in range(0, len(patches), batch):
        x = torch.from_numpy(patches[i:i + batch]).permute(0, 3, 1, 2)
        if extractor is not None:
            device = next(extractor.parameters()).device
            out.append(extractor(x.to(device))["features"].double().cpu())
            continue
        device = next(net.parameters()).device
        maps = net(x.float().div(255).expand(-1, 3, -1, -1).to(device), net.layer_names)
        out.append(torch.cat([torch.cat([m.mean((2, 3)), m.std((2, 3), correction=0)], 1) for m in maps.values()], 1)
                   .double().cpu())
    return torch.cat(out).numpy()


def evaluate_sr(model, against: str | None = None, n: int | None = None, data_root: str | None = None,
                split: str = "train", extractor: str | None = None, weights: str | None = None,
                **_: Any) -> dict[str, Any]:
    """The held-out table of the module docstring for the inference object ``model``. ``split``: the split of the
    run's data to read; the API's default "train" means its held-out ``test`` split (training photos say
    nothing about generalisation). ``extractor`` / ``weights``: the patch KID's feature extractor (default: the
    random network). The other keywords of ``ganforge.evaluate`` do not apply and are ignored."""
    d = model.data_config()
    source = against or d.name
    root = data_root if data_root is not None else (None if against else d.root)
    split = "test" if split == "train" else split
    s = model.scale
    images, names = held_out_images(source, root, split, s, None if against else d.load_size, model.channels, n)
    net = RandomMultiScale(RANDOM_SIZES, RANDOM_FILTERS, LPIPS_SEED).to(model.device).eval()
    judge = get_extractor(extractor, weights, model.device) if extractor else None
    kid = f"MMD-{extractor or 'rand'}"
    size = tile_size(images, s, max(RANDOM_SIZES))
    patches: dict[str, list[np.ndarray]] = {"original": []}
    methods = ["bicubic", *(w for w in ("srresnet", "srgan") if w in model.networks())]
    scores: dict[str, dict[str, list[float]]] = {m: {"PSNR": [], "SSIM": [], "LPIPS-rand": [], "detail": []}
                                                 for m in methods}
    for hr in images:
        lr = bicubic_downscale(hr, s)
        outputs = {"bicubic": bicubic_upscale(lr, s)}
        outputs.update({w: model.upscale([lr], which=w)[0] for w in methods[1:]})
        patches["original"].append(tiles(hr, s, size))
        for m, out in outputs.items():
            patches.setdefault(m, []).append(tiles(out, s, size))
            row = scores[m]
            row["PSNR"].append(psnr_y(out, hr, s))
            row["SSIM"].append(ssim_y(out, hr, s))
            row["LPIPS-rand"].append(lpips_random(out, hr, net, s))
            row["detail"].append(detail_ratio(out, hr, s))
    rows = [{"method": LABELS.get(m, m), **{k: round(float(np.mean(v)), 4) for k, v in scores[m].items()}}
            for m in methods]
    real = np.concatenate(patches["original"])
    if len(real) >= 2:
        want = patch_features(real, net, judge)
        for m, row in zip(methods, rows, strict=True):
            got = patch_features(np.concatenate(patches[m]), net, judge)
            row[kid] = round(1000 * mmd2_biased(got, want), 4)
    else:
        for row in rows:
            row[kid] = None
    where = f"{source} {split}" if not against else source
    protocol = (f"x{s} super-resolution on {len(images)} whole {where} images (mod-crop {s}, LR by PIL bicubic): PSNR "
                f"dB / SSIM on Y with {s} pixels shaved (higher better), LPIPS-rand (random-filter LPIPS-like "
                f"distance, lower better), detail (Laplacian energy / the original's, 1 = as sharp), {kid} (x 1000, "
                f"KID's kernel MMD of {size}x{size} tiles against the original's tiles, lower better)")
    return {"source": model.source, "step": model.step, "protocol": protocol, "rows": rows, "data": source,
            "split": split if not against else None, "n": len(images), "scale": s, "images": names,
            "patch": size, "extractor": extractor or "rand"}
