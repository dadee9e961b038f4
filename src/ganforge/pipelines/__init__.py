"""Inference objects: what generating with a trained model needs, apart from training.

A pipeline holds a model's networks (and their EMA copies), its constructor options and what
generating needs besides: latent size, classes and their names, the inference mode, the EMA choice
and the fixed tensor signature that export and the studio rely on. ``load(run_or_checkpoint)``
rebuilds one from a checkpoint's ``meta.json`` and weights alone: no training task, no training
config. Each registered model names its pipeline (``ModelSpec.pipeline``):

* ``noise`` (:class:`NoisePipeline`): G(z) or G(z, y) -> images (gan, dcgan, cgan);
* ``translation`` (:class:`TranslationPipeline`): G(A) -> B (pix2pix);
* ``cyclegan`` (:class:`CycleGANPipeline`): G_A(A) -> B or G_B(B) -> A, chosen by its ``direction``;
* ``points`` (:class:`PointsPipeline`): G(z) -> points of 1-D / 2-D toy data;
* ``stylization`` (:class:`StylizationPipeline`): G(photo) -> the photo in the trained style (fast-style).

The latent tools, ``ganforge sample / translate / eval``, export and the studio call only these.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, load_state_into
from ..models import MODELS, model_config
from ..registry import Registry
from .base import Pipeline, resolve_device

PIPELINES: Registry[type[Pipeline]] = Registry("pipeline")

from .cyclegan import CycleGANPipeline  # noqa: E402
from .noise import NoisePipeline, PointsPipeline  # noqa: E402
from .stylization import StylizationPipeline  # noqa: E402
from .translation import TranslationPipeline  # noqa: E402

PIPELINES.register("noise", NoisePipeline)
PIPELINES.register("points", PointsPipeline)
PIPELINES.register("translation", TranslationPipeline)
PIPELINES.register("cyclegan", CycleGANPipeline)
PIPELINES.register("stylization", StylizationPipeline)


def pipeline_for(model: str, model_cfg, nets, ema=None, settings: dict | None = None,
                 device: torch.device | str = "cpu") -> Pipeline:
    """The pipeline of registered ``model`` around networks that are already built (training does this)."""
    cls = PIPELINES.get(MODELS.get(model).pipeline)
    return cls(model, model_cfg, nets, ema or {}, settings or {}, torch.device(device))


def load(path: str | Path, which: str = "latest", device: str | torch.device = "cpu") -> Pipeline:
    """Rebuild the pipeline of a run folder (its latest / best / step-N checkpoint) or checkpoint folder
    from meta.json and the weights. Options that this version does not know (a file written by another
    version) are left out with a warning."""
    if Path(path).is_file() and Path(path).suffix in (".pth", ".pt") and Path(path).name != "state.pt":
        # a plain state dict of pytorch/examples' DCGAN (netG_epoch_N.pth)
        dev = resolve_device(device) if not isinstance(device, torch.device) else device
        return NoisePipeline.from_reference(path, dev)
    ckpt = load_checkpoint(path, which)
    meta = ckpt.meta
    name = meta.get("model")
    spec = MODELS.get(name)
    model_cfg = model_config(name, meta.get("model_options") or {}, strict=False)
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    nets = spec.build(model_cfg)
    for net_name, net in nets.items():
        load_state_into(net, ckpt.weights.get(net_name, {}), f"{net_name} of model {name!r}", ckpt.path)
        net.to(dev).eval()
    ema = {}
    for key, sd in ckpt.weights.items():
        if key.startswith("ema."):
            net_name = key[4:]
            e = spec.build(model_cfg)[net_name]
            load_state_into(e, sd, f"EMA {net_name} of model {name!r}", ckpt.path)
            ema[net_name] = e.to(dev).eval()
    cls = PIPELINES.get(spec.pipeline)
    pipe = cls(name, model_cfg, nets, ema, cls.settings_from_meta(meta), dev)
    pipe.path, pipe.meta, pipe.step = ckpt.path, meta, meta.get("step")
    return pipe


__all__ = ["PIPELINES", "CycleGANPipeline", "NoisePipeline", "Pipeline", "PointsPipeline", "StylizationPipeline",
           "TranslationPipeline", "load", "pipeline_for", "resolve_device"]
