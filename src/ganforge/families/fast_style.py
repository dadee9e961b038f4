"""Fast style transfer (Johnson et al. 2016): a TransformerNet trained for one style image on content
photos, then applied to any photo in one forward pass (``ganforge stylize --model RUN``)."""

from __future__ import annotations

from ..models.transformer_net import FAST_STYLE
from ..pipelines import StylizationPipeline
from ..tasks.fast_style import FastStyleTask
from .base import Family
from .data import held_out_photos, image_data

FAMILY = Family(
    name="fast-style",
    models=(FAST_STYLE,),
    task=FastStyleTask,
    pipeline=StylizationPipeline,
    offers=frozenset({"stylize", "export"}),
    load_data=image_data,
    held_out=held_out_photos,
    description="photos in, the photos in one trained style out",
)
