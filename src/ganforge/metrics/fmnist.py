"""``fmnist``: ganforge's own Fashion-MNIST classifier, the offline default extractor for 28x28 gray data.

The network (:class:`FashionClassifier`) is a small CNN trained by ``scripts/train_fmnist_classifier.py``
(seeded, reproducible); its weights ship inside the package as
``ganforge/metrics/weights/fmnist_classifier.safetensors`` (float32, about 1.9 MB). Its 128-wide
penultimate layer is the feature space for Frechet distance, its 10 logits give class coverage and
confidence.

Image preparation (:meth:`FashionFeatureExtractor.prepare`), recorded in ``protocol()``:

1. uint8 [N, C, H, W] -> float in [0, 255];
2. 3 channels -> 1 by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), without rounding; 1 channel
   is used as is;
3. any other size -> 28x28 by bilinear, antialiased interpolation (``align_corners=False``);
4. scale to [-1, 1]: ``x / 127.5 - 1``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..data import LUMA
from ..data.idx import FASHION_CLASSES
from ..errors import GanforgeError
from .features import EXTRACTORS, FeatureExtractor

WEIGHTS_FILE = Path(__file__).resolve().parent / "weights" / "fmnist_classifier.safetensors"
TRAIN_SCRIPT = "scripts/train_fmnist_classifier.py"
IMAGE_SIZE = 28


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FashionClassifier(nn.Module):
    """A small CNN for Fashion-MNIST: 1x28x28 images in [-1, 1] -> 10 class logits.

    Layers: [conv3x3 32, BN, ReLU] x2, maxpool 2 (14x14); [conv3x3 64, BN, ReLU] x2, maxpool 2 (7x7);
    dropout; flatten (3136); Linear -> 128, BN1d, ReLU (the *features*); dropout; Linear 128 -> 10.
    """

    def __init__(self, width: int = 32, feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.25):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(1, width), *_conv_bn_relu(width, width), nn.MaxPool2d(2),
            *_conv_bn_relu(width, 2 * width), *_conv_bn_relu(2 * width, 2 * width), nn.MaxPool2d(2),
            nn.Dropout(dropout), nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, feature_dim, bias=False), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: float [N, 1, 28, 28] in [-1, 1] -> [N, feature_dim]: the penultimate activations (after BN1d + ReLU)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float [N, 1, 28, 28] in [-1, 1] -> logits [N, num_classes]."""
        return self.head(self.body(x))


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise GanforgeError(
            f"The fmnist classifier weights {str(path)!r} do not exist; put fmnist_classifier.safetensors there "
            f"(it ships in ganforge/metrics/weights/) or recreate it with `python {TRAIN_SCRIPT} --out {path}`."
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise GanforgeError(f"Cannot read the fmnist classifier weights {str(path)!r} ({e}); "
                            f"recreate them with `python {TRAIN_SCRIPT}`.") from None


class FashionFeatureExtractor(FeatureExtractor):
    """Features (128, penultimate layer) and logits (10) of the shipped Fashion-MNIST classifier.

    ``forward(images)``: uint8 [N, C, H, W] (C = 1 or 3, any H, W) ->
    ``{"features": float32 [N, 128], "logits": float32 [N, 10]}``, in eval mode without gradients.
    See the module docstring for how images are prepared.
    """

    name = "fmnist"
    feature_dim = 128
    num_classes = 10
    class_names = list(FASHION_CLASSES)

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = Path(weights).expanduser() if weights else WEIGHTS_FILE
        state = _load_weights(path)
        self.net = FashionClassifier(feature_dim=self.feature_dim, num_classes=self.num_classes)
        try:
            self.net.load_state_dict(state)
        except RuntimeError:
            raise GanforgeError(f"{str(path)!r} does not hold weights of the fmnist classifier (FashionClassifier); "
                                f"recreate them with `python {TRAIN_SCRIPT}`.") from None
        self.weights_path = path
        self.weights_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> FashionFeatureExtractor:
        """Always stays in eval mode (BatchNorm statistics and dropout are fixed)."""
        return super().train(False)

    def protocol(self) -> dict:
        return {"extractor": self.name, "weights": self.weights_sha256[:12],
                "resize": f"bilinear-antialias to {IMAGE_SIZE}x{IMAGE_SIZE}", "channels": "luma (ITU-R 601)",
                "range": "[-1, 1]"}

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] (C = 1 or 3) -> float32 [N, 1, 28, 28] in [-1, 1] (luma, bilinear antialiased)."""
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
            raise GanforgeError(f"The fmnist extractor takes uint8 images [N, C, H, W] in 0..255, not {got}.")
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise GanforgeError(f"The fmnist extractor takes images [N, C, H, W] with 1 or 3 channels, "
                                f"not shape {tuple(images.shape)}.")
        x = images.float()
        if x.shape[1] == 3:
            w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        if tuple(x.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
            x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x / 127.5 - 1.0

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.prepare(images.to(next(self.net.parameters()).device))
        features = self.net.features(x)
        logits = self.net.head(features)
        return {"features": features.float(), "logits": logits.float()}


EXTRACTORS.register("fmnist", lambda weights, device: FashionFeatureExtractor(weights).to(device))
