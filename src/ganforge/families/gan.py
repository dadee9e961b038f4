"""The GAN family of the lectures: images from noise, G(z, y) and D(x, y), with or without classes.

Models: ``gan`` (the fully connected GAN of the original paper), ``dcgan`` (pytorch/examples' DCGAN and the
TensorFlow tutorial's) and ``cgan`` (class-conditional DCGAN: concat, projection or ACGAN discriminators).
Reference checkpoints: pytorch/examples' ``netG_epoch_N.pth`` state dicts.
"""

from __future__ import annotations

import torch

from ..checkpoint import load_state_into
from ..config import TrainConfig
from ..data.clusters import assign_clusters, cluster_images, cluster_names
from ..errors import GanforgeError
from ..models.cgan import CGAN
from ..models.dcgan import DCGAN, options_from_reference
from ..models.mlp import MLP_GAN
from ..pipelines import NoisePipeline
from ..tasks.gan import GANTask
from .base import Family, ReferenceFiles, ReferenceImporter
from .data import image_data


def gan_data(cfg: TrainConfig, split: str, augment: bool = True):
    """The images (and labels) of :func:`image_data`; for a self-conditioned cgan (model option ``clusters=K``)
    the labels are the k-means clusters of the training split's images (seeded by the run's seed), every split
    labelled by the nearest of those clusters, and the classes are named "cluster 0" ..."""
    data = image_data(cfg, split, augment)
    k = int(cfg.model_options.get("clusters") or 0)
    if k:
        train = data if split == cfg.data.split else image_data(cfg, cfg.data.split, augment)
        if k > len(train):
            raise GanforgeError(f"cgan option clusters={k} asks for more clusters than the {len(train)} training "
                                f"images; choose at most {len(train)}, or clusters=0 for labelled data.")
        data.labels = assign_clusters(data.images, cluster_images(train.images, k, cfg.seed))
        data.class_names = cluster_names(k)
    return data


def _is_examples_generator(files: ReferenceFiles, state: dict) -> bool:
    """pytorch/examples' netG: a transposed convolution at main.0 (a DataParallel prefix allowed)."""
    first = state.get("main.0.weight", state.get("module.main.0.weight"))
    return files.path_B is None and isinstance(first, torch.Tensor) and first.dim() == 4


def _load_examples_generator(files: ReferenceFiles, state: dict) -> NoisePipeline:
    """The generator of a pytorch/examples DCGAN ``netG_epoch_N.pth``; its options (nz, ngf, channels, image
    size) are read from the weight shapes; ganforge's dcgan has the same module names."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    options = options_from_reference(state)
    cfg = DCGAN.config(options)
    G = DCGAN.build(cfg)["G"]
    load_state_into(G, state, f"the DCGAN generator ({', '.join(f'{k}={v}' for k, v in options.items())})",
                    files.path)
    return NoisePipeline("dcgan", cfg, {"G": G.to(files.device).eval()}, {}, {}, files.device, path=files.path,
                         meta={"model": "dcgan", "model_options": options, "from_reference": str(files.path)})


FAMILY = Family(
    name="gan",
    models=(MLP_GAN, DCGAN, CGAN),
    task=GANTask,
    pipeline=NoisePipeline,
    offers=frozenset({"sample", "latent", "eval", "export"}),
    load_data=gan_data,
    reference=ReferenceImporter("a pytorch/examples DCGAN generator (netG_epoch_N.pth)", _is_examples_generator,
                                _load_examples_generator),
    description="images from noise: the GAN of the lectures, DCGAN and conditional GANs",
)
