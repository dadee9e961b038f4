"""ganforge: generative adversarial networks - faithful models, one training loop, metrics, pictures."""

from . import latent
from .api import RunResult, evaluate, info, load, resolve_device, resume, stylize, train, translate
from .config import DataConfig, TrainConfig, resolve_config
from .data import DATASETS, load_dataset
from .errors import GanforgeError
from .losses import LOSSES
from .models import MODELS, build_model, count_parameters
from .pipelines import (
                        PIPELINES,
                        CycleGANPipeline,
                        NoisePipeline,
                        Pipeline,
                        PointsPipeline,
                        StylizationPipeline,
                        TranslationPipeline,
)
from .tasks import TASKS
from .version import __version__
from .viz.notebook import show

__all__ = [
    "__version__", "build_model", "count_parameters", "CycleGANPipeline", "DataConfig", "DATASETS", "evaluate",
    "GanforgeError", "info", "latent", "load", "load_dataset", "LOSSES", "MODELS", "NoisePipeline", "Pipeline",
    "PIPELINES", "PointsPipeline", "resolve_config", "resolve_device", "resume", "RunResult", "show", "stylize",
    "StylizationPipeline", "TASKS", "train", "TrainConfig", "translate", "TranslationPipeline",
]
