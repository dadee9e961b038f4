"""ganforge: generative adversarial networks - faithful models, one training loop, metrics, pictures."""

from .api import LoadedModel, RunResult, info, load, resolve_device, resume, train
from .config import TrainConfig, resolve_config
from .data import DATASETS, load_dataset
from .errors import GanforgeError
from .losses import LOSSES
from .metrics import evaluate
from .models import MODELS, build_model, count_parameters
from .tasks import TASKS

__version__ = "0.1.0"

__all__ = [
    "DATASETS", "LOSSES", "MODELS", "TASKS", "GanforgeError", "LoadedModel", "RunResult", "TrainConfig",
    "build_model", "count_parameters", "evaluate", "info", "load", "load_dataset", "resolve_config", "resolve_device",
    "resume", "train",
]
