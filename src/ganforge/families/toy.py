"""Toy GANs on 1-D and 2-D data (figure 1 of Goodfellow et al. 2014; the ring and grid of Gaussians): small
MLPs that generate points, drawn with D's curve or heat map as they train (``ganforge toy``)."""

from __future__ import annotations

from ..models.toy import TOY_GAN
from ..pipelines import PointsPipeline
from ..tasks.toy import ToyGANTask
from .base import Family
from .data import image_data

FAMILY = Family(
    name="toy",
    models=(TOY_GAN,),
    task=ToyGANTask,
    pipeline=PointsPipeline,
    offers=frozenset({"points", "export"}),
    load_data=image_data,
    description="1-D / 2-D points from noise, drawn with D as they train",
)
