"""Projecting a real image into the latent space (optimisation-based GAN inversion).

Find z with G(z) close to a given image x: start from the best of ``starts`` seeded latents, then Adam on
z alone (G frozen) for ``steps`` steps on

    loss(z) = pixel_weight * mean((G(z) - x)^2) + feature_weight * mean((phi(G(z)) - phi(x))^2)
              + prior_weight * (mean(z^2) - 1)^2

with images in [-1, 1] and phi the shipped Fashion-MNIST classifier's 128 features (of the luma image at
28x28), the "perceptual" term of Zhu et al. 2016 (iGAN) and Creswell & Bharath 2018 in its offline form;
the prior term keeps z near the shell where N(0, I) latents lie, so the other latent tools see a typical
latent. A conditional model is projected with a fixed class (given, or the one that fits best).

The result is written as ``project.npz`` (``z`` float32 [nz], ``label`` for conditional models, the step
and the image's name) beside ``project.png`` (target | start | projection, and the loss curve's numbers)
and ``project.json``. Every latent tool accepts such a file where it takes a seed
(``ganforge latent interpolate RUN --seeds out/project.npz,3``), so a real photo can be interpolated,
swept and edited like a sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data import LUMA, convert_images
from ..data.folders import read_image_file
from ..errors import GanforgeError
from ..io import write_atomic
from ..threads import applies_threads
from ..viz.latent import grid_picture
from .figure import LatentFigure, make_record, save_figure
from .render import check_images, fmnist_extractor, model_class, model_class_names, num_classes, render
from .vectors import load_projection, z_from_seeds

LOSSES = ("pixel", "features", "pixel+features")


def _target(model, image: str | Path | torch.Tensor | np.ndarray) -> tuple[torch.Tensor, str]:
    """The image as uint8 [1, C, S, S] in the model's channels and size, and its name."""
    if isinstance(image, (str, Path)):
        array = read_image_file(image, "image to project")
        x, name = torch.from_numpy(np.array(array)), Path(image).name
    else:
        x, name = torch.as_tensor(np.asarray(image)), "array"
        if x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
            x = x.permute(2, 0, 1)  # [H, W, C] -> [C, H, W]
        if x.ndim == 2:
            x = x[None]
    if x.dtype != torch.uint8 or x.ndim != 3 or x.shape[0] not in (1, 3):
        raise GanforgeError(f"The image to project must be uint8 [C, H, W] or [H, W, C] with 1 or 3 channels, got "
                            f"{x.dtype} {tuple(x.shape)}.")
    ds = model.meta.get("dataset") or {}
    size, channels = ds.get("image_size"), ds.get("channels")
    if size is None or channels is None:
        probe = render(model, torch.zeros(1, model.nz), _any_class(model))
        size, channels = probe.shape[-1], probe.shape[1]
    h, w = x.shape[-2:]
    side = min(h, w)  # a centred square crop, then the model's size
    x = x[:, (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return convert_images(x[None].contiguous(), size, channels), name


def _any_class(model) -> torch.Tensor | None:
    return torch.zeros(1, dtype=torch.int64) if num_classes(model) else None


def _features(extractor, images: torch.Tensor) -> torch.Tensor:
    """Differentiable Fashion-MNIST classifier features of float images [N, C, H, W] in [-1, 1]."""
    x = images
    if x.shape[1] == 3:
        x = (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if tuple(x.shape[-2:]) != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return extractor.net.features(x)


@applies_threads
def project(model, image: str | Path | torch.Tensor | np.ndarray, steps: int = 300, lr: float = 0.05,
            loss: str | None = None, starts: int = 16, seed: int = 0, class_: int | str | None = None,
            pixel_weight: float = 1.0, feature_weight: float = 0.05, prior_weight: float = 0.01,
            ema: bool | None = None, out: str | Path | None = None) -> LatentFigure:
    """Project ``image`` (a file, or uint8 [C, H, W] / [H, W, C]) into ``model``'s latent space (see the module
    docstring). ``loss``: pixel | features | pixel+features (default: pixel+features for one-channel models,
    pixel otherwise). Returns a LatentFigure whose latents["projection"] is z [1, nz]; with ``out`` also writes
    project.npz, project.png and project.json."""
    check_images(model)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise GanforgeError(f"--steps must be a positive integer, got {steps!r}.")
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        raise GanforgeError(f"--starts must be a positive integer, got {starts!r}.")
    if not lr > 0:
        raise GanforgeError(f"--lr must be positive, got {lr!r}.")
    x8, name = _target(model, image)
    loss = loss or ("pixel+features" if x8.shape[1] == 1 else "pixel")
    if loss not in LOSSES:
        raise GanforgeError(f"Unknown projection loss {loss!r}; choose one of: {', '.join(LOSSES)}.")
    use_pixels, use_features = loss in ("pixel", "pixel+features"), loss in ("features", "pixel+features")
    device = model.device
    net = model.generator(ema)
    was_training = net.training
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    extractor = fmnist_extractor(model) if use_features else None
    target = x8.to(device).float() / 127.5 - 1.0
    target_features = _features(extractor, target).detach() if use_features else None
    k = num_classes(model)
    classes = [model_class(model, class_)] if class_ is not None else (list(range(k)) if k else [None])

    def objective(z: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = {"z": z} if y is None else {"z": z, "y": y}
        fake = model.generate(inputs, net=net).float()
        parts = {}
        if use_pixels:
            parts["pixel"] = ((fake - target) ** 2).flatten(1).mean(1)
        if use_features:
            parts["features"] = ((_features(extractor, fake) - target_features) ** 2).mean(1)
        parts["prior"] = ((z ** 2).mean(1) - 1.0) ** 2
        total = (pixel_weight * parts.get("pixel", 0) + feature_weight * parts.get("features", 0)
                 + prior_weight * parts["prior"])
        return total, parts

    try:
        with torch.no_grad():  # the start: the best of `starts` seeded latents (for every class to try)
            z0 = z_from_seeds(list(range(seed, seed + starts)), model.nz).to(device)
            best = None
            for c in classes:
                y = None if c is None else torch.full((starts,), c, dtype=torch.int64, device=device)
                value, _ = objective(z0, y)
                i = int(value.argmin())
                if best is None or float(value[i]) < best[0]:
                    best = (float(value[i]), i, c)
        _, i, cls = best
        y = None if cls is None else torch.tensor([cls], dtype=torch.int64, device=device)
        z = z0[i:i + 1].clone().requires_grad_(True)
        start = z.detach().clone()
        opt = torch.optim.Adam([z], lr=lr)
        history = []
        with torch.enable_grad():
            for step in range(steps + 1):
                opt.zero_grad(set_to_none=True)
                total, parts = objective(z, y)
                if step % max(1, steps // 20) == 0 or step == steps:
                    history.append({"step": step, "loss": round(float(total), 6),
                                    **{k: round(float(v), 6) for k, v in parts.items()}})
                if step == steps:
                    break
                total.sum().backward()
                opt.step()
    finally:
        for p in net.parameters():
            p.requires_grad_(True)
        net.train(was_training)
    z = z.detach()
    labels = None if cls is None else torch.tensor([cls, cls])
    images = render(model, torch.cat([start, z]).cpu(), labels, ema=ema)
    row = torch.cat([x8, images])[None]  # [1, 3, C, H, W]
    first, last = history[0], history[-1]
    right = [f"loss {first['loss']:.4f} -> {last['loss']:.4f}"]
    names = model_class_names(model) if cls is not None else None
    title = f"projection of {name} ({loss} loss, {steps} Adam steps)" + (f"; class {names[cls]}" if names else "")
    picture = grid_picture(row, None, ["target", "start", "projection"], right, title=title)
    error = float(((images[1:].float() - x8.float()) / 255.0).pow(2).mean().sqrt())
    params = {"image": str(image) if isinstance(image, (str, Path)) else None, "steps": steps, "lr": lr,
              "loss": loss, "starts": starts, "seed": seed, "class_": cls, "pixel_weight": pixel_weight,
              "feature_weight": feature_weight, "prior_weight": prior_weight}
    record = make_record(model, "project", ema, params, image_name=name, start_seed=seed + i, history=history,
                         rms_pixel_error=round(error, 6), z_norm=round(float(z.norm()), 6),
                         layout="target | start (the best seeded latent) | projection")
    fig = LatentFigure("project", {"grid": row}, {"projection": z.cpu(), "start": start.cpu()}, picture, record)
    fig = save_figure(fig, out)
    if out is not None:
        arrays: dict[str, Any] = {"z": z.cpu().numpy()[0].astype(np.float32), "step": np.int64(model.step or 0),
                                  "image": np.array(name)}
        if cls is not None:
            arrays["label"] = np.int64(cls)
        fig.files["npz"] = write_atomic(Path(out) / "project.npz", lambda p: np.savez(p, **arrays))
    return fig


__all__ = ["LOSSES", "load_projection", "project"]
