"""The model side of the latent tools: which models they apply to, their classes, and images of latents.

``model`` is an inference object from ``ganforge.load`` (a :class:`ganforge.pipelines.NoisePipeline`);
only its public attributes are used (nz, num_classes, class names, generator, generate, device, path).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import GanforgeError
from ..families import family_of
from ..metrics.fmnist import FashionFeatureExtractor
from ..viz import to_uint8


def num_classes(model) -> int:
    """Number of classes a model is conditioned on (0 = unconditional)."""
    return model.num_classes


def model_class_names(model) -> list[str]:
    """The class names of a conditional model (its data's names, else "0", "1", ...)."""
    return [model.class_name(i) for i in range(model.num_classes)]


def source(model) -> str:
    """The checkpoint folder the model was loaded from ("" for a model built in memory)."""
    return str(model.path or "")


def model_class(model, class_: int | str | None) -> int | None:
    """The index of ``class_`` (a name, case-insensitive, or an index) among the model's classes; None
    stays None. Any class for an unconditional model is an error."""
    if class_ is None:
        return None
    if num_classes(model) == 0:
        raise GanforgeError(f"{source(model)!r} is an unconditional {model.name} model, so it takes no class; "
                            "class options need a conditional model (such as cgan).")
    return model.class_index(class_)


def seed_classes(model, seeds: Sequence[int], cls: int | None) -> torch.Tensor | None:
    """int64 [len(seeds)]: ``cls`` for every seed, else seed % num_classes (a self-conditioned model: the cluster
    that ``sample(1, seed)`` draws, so one image per seed is that seed's sample); None for unconditional models."""
    n = num_classes(model)
    if n == 0:
        return None
    if cls is not None:
        return torch.full((len(seeds),), cls, dtype=torch.int64)
    return torch.tensor([_seed_class(model, s, n) for s in seeds], dtype=torch.int64)


def _seed_class(model, seed, n: int) -> int:
    """seed % n (a self-conditioned model: its seed's cluster), or the class a projection file was found with."""
    from .vectors import is_projection, load_projection

    if is_projection(seed):
        label = load_projection(seed, model.nz)[1]
        return 0 if label is None else int(label) % n
    if getattr(model, "clustered", False):
        return int(model.fixed_inputs(1, int(seed))["y"][0])
    return int(seed) % n


def check_images(model) -> None:
    """The latent tools need a model whose family offers them (images from a latent z); else one sentence."""
    family = family_of(model)
    if not family.can("latent"):
        if family.can("points"):
            raise GanforgeError(f"{source(model)!r} generates points, not images, so the latent-space pictures do "
                                "not apply to it.")
        raise GanforgeError(f"{source(model)!r} is a {model.name} model without a latent (z) input; "
                            "the latent tools apply to GANs that generate from noise.")


@torch.no_grad()
def render(model, z: torch.Tensor, y: torch.Tensor | None = None, y_soft: torch.Tensor | None = None,
           ema: bool | None = None, batch_size: int = 256) -> torch.Tensor:
    """Images of latents z float [N, nz] as uint8 [N, C, H, W].

    For a conditional model give the classes as ``y`` int64 [N] or ``y_soft`` float [N, num_classes]
    (label blends); an unconditional model takes neither. ``ema``: None = the checkpoint's default.
    """
    check_images(model)
    if z.ndim != 2 or z.shape[1] != model.nz:
        raise GanforgeError(f"Latents must have shape [N, {model.nz}], got {tuple(z.shape)}.")
    n_cls = num_classes(model)
    if n_cls == 0 and (y is not None or y_soft is not None):
        raise GanforgeError(f"{source(model)!r} is an unconditional model; it takes no class labels.")
    if n_cls and y is None and y_soft is None:
        raise GanforgeError(f"{source(model)!r} is a conditional model; give a class for every image.")
    inputs = {"z": z.float()}
    if y_soft is not None:
        inputs["y_soft"] = y_soft.float()
    elif y is not None:
        inputs["y"] = y.to(torch.int64)
    net = model.generator(ema)
    parts = []
    for s in range(0, z.shape[0], batch_size):
        chunk = {k: v[s:s + batch_size] for k, v in inputs.items()}
        parts.append(to_uint8(model.generate(chunk, net=net)))
    return torch.cat(parts)


def render_classes(model, z: torch.Tensor, classes: torch.Tensor | None, ema: bool | None = None) -> torch.Tensor:
    """:func:`render` with the classes as int64 [N] (hard labels) or float [N, K] (blends), or None."""
    if classes is None or classes.dtype == torch.int64:
        return render(model, z, classes, ema=ema)
    return render(model, z, y_soft=classes, ema=ema)


def fmnist_extractor(model):
    """The shipped Fashion-MNIST classifier (features and logits of uint8 images), on the model's device."""
    return FashionFeatureExtractor().to(model.device)
