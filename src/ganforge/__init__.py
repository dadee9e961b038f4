"""ganforge: generative adversarial networks - faithful models, one training loop, metrics, pictures."""

from . import latent
from .api import RunResult, doctor, evaluate, info, load, resolve_device, resume, stylize, train, translate
from .config import DataConfig, TrainConfig, resolve_config
from .data import DATASETS, load_dataset
from .errors import GanforgeError
from .families import FAMILIES, MODELS, build_model, family_of, register_family
from .losses import LOSSES
from .models import count_parameters
from .pipelines import (
                        CycleGANPipeline,
                        NoisePipeline,
                        Pipeline,
                        PointsPipeline,
                        StylizationPipeline,
                        TranslationPipeline,
)
from .version import __version__
from .viz.notebook import show

__all__ = [
    "__version__", "build_model", "count_parameters", "CycleGANPipeline", "DataConfig", "DATASETS", "doctor",
    "evaluate", "FAMILIES", "family_of", "GanforgeError", "info", "latent", "load", "load_dataset", "LOSSES", "MODELS",
    "NoisePipeline", "Pipeline", "PointsPipeline", "register_family", "resolve_config", "resolve_device", "resume",
    "RunResult", "show", "stylize", "StylizationPipeline", "train", "TrainConfig", "translate",
    "TranslationPipeline",
]
