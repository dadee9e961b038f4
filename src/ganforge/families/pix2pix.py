"""pix2pix (Isola et al. 2017): paired image-to-image translation, a U-Net G(A) -> B judged by a PatchGAN
on concat(A, B), as junyanz/pytorch-CycleGAN-and-pix2pix builds it. Reference checkpoints: its
``latest_net_G.pth``."""

from __future__ import annotations

from ..data.paired import paired_split
from ..models.pix2pix import PIX2PIX, generator_from_reference
from ..pipelines import TranslationPipeline
from ..tasks.pix2pix import Pix2PixTask
from .base import Family, ReferenceFiles, ReferenceImporter
from .data import held_out_pairs, paired_data
from .reference import is_two_way


def _load_reference(files: ReferenceFiles, state: dict) -> TranslationPipeline:
    o = {"netG": "unet_256", "norm": "batch", "input_nc": 3, "output_nc": 3, "ngf": 64, "dropout": 0.5,
         **{k: v for k, v in files.options.items() if v is not None}}
    G = generator_from_reference(state, netG=o["netG"], norm=o["norm"], input_nc=o["input_nc"],
                                 output_nc=o["output_nc"], dropout=o["dropout"], ngf=o["ngf"])
    cfg = PIX2PIX.config({"netG": o["netG"], "norm": o["norm"], "input_nc": o["input_nc"], "output_nc": o["output_nc"],
                          "ngf": o["ngf"], "dropout": o["dropout"], "image_size": 2 ** G.num_downs})
    record = {"from_reference": str(files.path), **{k: o[k] for k in ("netG", "norm", "input_nc", "output_nc",
                                                                       "ngf", "dropout")}}
    return TranslationPipeline("pix2pix", cfg, {"G": G.to(files.device)}, {},
                               {"mode": files.mode, "seed": files.seed, "record": record}, files.device)


def _read_split(source, split, root, data_direction, direction, derive, size, n, with_total=False):
    """A paired split's inputs, names and targets: ``direction`` (or the data's) picks which half is the input."""
    return paired_split(source, split, root, direction or data_direction, derive, size, n, with_total=with_total)


FAMILY = Family(
    name="pix2pix",
    models=(PIX2PIX,),
    task=Pix2PixTask,
    pipeline=TranslationPipeline,
    offers=frozenset({"translate", "export"}),
    load_data=paired_data,
    held_out=held_out_pairs,
    reference=ReferenceImporter("a junyanz pix2pix generator (latest_net_G.pth)",
                                lambda files, state: not is_two_way(files), _load_reference),
    read_split=_read_split,
    description="paired image-to-image translation (U-Net + PatchGAN)",
)
