"""Feature networks for style transfer, by name: what the Gram matrices and content losses are taken of.

Every network takes images float [N, 3, H, W] in [0, 1], normalises them with the ImageNet mean and
standard deviation, and returns a dict of named feature maps (only the layers asked for; it stops at the
deepest one).

* ``random`` (the offline default; no download): one convolutional layer of random filters at several
  sizes, after Ustyuzhaninov et al. 2017 ("What does it take to generate natural textures?"): for each
  filter size k, ``filters`` maps of a k x k convolution (valid, no padding) with PyTorch's default
  initialisation drawn from ``seed``, then ReLU. Each size is one layer ``kK`` (``k3``, ``k5``, ...).
  The paper uses 128 filters at each of 3, 5, 7, 11, 15, 23, 37, 55 (about 135 GMAC per forward at
  256 x 256); the default here is 32 filters at 3, 5, 7, 11 (RANDOM_FILTERS, RANDOM_SIZES), chosen by
  measuring: a 300-iteration stylize at 256 px takes minutes on 2 CPU cores, not tens of minutes (README).
* ``vgg19``, ``vgg16``: torchvision's VGG ``features`` (the same ``features.N`` indices, so torchvision's
  ImageNet weight files load as they are), layers named ``conv1_1``, ``relu1_1``, ..., ``pool1``; max or
  average pooling (Gatys et al. 2016 average). Weights: see :mod:`ganforge.style.weights`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from ..registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLS = ("max", "avg")
RANDOM_SIZES = (3, 5, 7, 11)  # default filter sizes of the random network (the paper: 3, 5, 7, 11, 15, 23, 37, 55)
RANDOM_FILTERS = 32  # default filters per size (the paper: 128)
PAPER_SIZES = (3, 5, 7, 11, 15, 23, 37, 55)


class FeatureNet(nn.Module):
    """Base: ``forward(images, layers) -> {layer: maps}``; ``layer_names`` in network order."""

    layer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def check_layers(self, layers: Sequence[str], what: str = "layer") -> None:
        for name in layers:
            if name not in self.layer_names:
                raise GanforgeError(f"Unknown {what} {name!r} of this feature network; its layers are: "
                                    f"{', '.join(self.layer_names)}.")


class RandomMultiScale(FeatureNet):
    """Random single-layer multi-scale filters (Ustyuzhaninov et al. 2017); see the module docstring."""

    def __init__(self, sizes: Sequence[int] = RANDOM_SIZES, filters: int = RANDOM_FILTERS, seed: int = 0) -> None:
        super().__init__()
        if not sizes or any(int(k) < 1 for k in sizes):
            raise GanforgeError(f"Filter sizes of the random network must be positive integers, got {list(sizes)}.")
        self.sizes, self.filters, self.seed = tuple(int(k) for k in sizes), int(filters), int(seed)
        self.layer_names = tuple(f"k{k}" for k in self.sizes)
        with torch.random.fork_rng(devices=[]):  # the same filters for every run with this seed
            torch.manual_seed(self.seed)
            self.convs = nn.ModuleList(nn.Conv2d(3, self.filters, k) for k in self.sizes)
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        x = self.normalise(images)
        wanted = set(layers)
        return {name: F.relu(conv(x)) for name, conv in zip(self.layer_names, self.convs, strict=True)
                if name in wanted}


# torchvision's VGG configurations: channels, "M" = pooling
VGG_CFGS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}


class VGGFeatures(FeatureNet):
    """torchvision's ``vgg16().features`` / ``vgg19().features`` with named layers (weights not loaded here)."""

    def __init__(self, arch: str = "vgg19", pool: str = "max") -> None:
        super().__init__()
        if arch not in VGG_CFGS:
            raise GanforgeError(f"Unknown VGG {arch!r}; choose one of: {', '.join(VGG_CFGS)}.")
        if pool not in POOLS:
            raise GanforgeError(f"Unknown pooling {pool!r}; choose max or avg.")
        self.arch, self.pool = arch, pool
        layers: list[nn.Module] = []
        names: list[str] = []
        block, conv, c_in = 1, 1, 3
        for v in VGG_CFGS[arch]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
                names.append(f"pool{block}")
                block, conv = block + 1, 1
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
                conv, c_in = conv + 1, int(v)
        self.features = nn.Sequential(*layers)
        self.layer_names = tuple(names)
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        last = max(self.layer_names.index(n) for n in wanted)
        x = self.normalise(images)
        out = {}
        for i, (name, layer) in enumerate(zip(self.layer_names, self.features, strict=True)):
            x = layer(x)
            if name in wanted:
                out[name] = x
            if i == last:
                break
        return out


@dataclass(frozen=True)
class FeatureSpec:
    """A named feature network with the layers and weights it is used with by default."""

    name: str
    build: Callable[..., FeatureNet]  # build(pool=..., weights=..., seed=..., sizes=..., filters=...)
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    style_weight: float  # the default beta
    content_weight: float  # the default alpha
    description: str
    needs_weights: bool = False


FEATURES: Registry[FeatureSpec] = Registry("feature network")


def _build_random(pool: str = "max", weights: str | None = None, seed: int = 0, sizes: Sequence[int] | None = None,
                  filters: int | None = None) -> FeatureNet:
    if weights:
        raise GanforgeError("The random feature network has no weights file; leave out --weights (or choose "
                            "--network vgg19 or vgg16).")
    return RandomMultiScale(sizes or RANDOM_SIZES, filters or RANDOM_FILTERS, seed)


def _vgg_builder(arch: str) -> Callable[..., FeatureNet]:
    def build(pool: str = "max", weights: str | None = None, seed: int = 0, sizes=None, filters=None) -> FeatureNet:
        from .weights import load_vgg_weights

        net = VGGFeatures(arch, pool)
        load_vgg_weights(net, weights)
        return net

    return build


_GATYS_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
FEATURES.register("random", FeatureSpec(
    "random", _build_random, content_layers=("k3",), style_layers=tuple(f"k{k}" for k in RANDOM_SIZES),
    style_weight=1e6, content_weight=1.0,
    description="random multi-scale filters (Ustyuzhaninov et al. 2017), no download"))
FEATURES.register("vgg19", FeatureSpec(
    "vgg19", _vgg_builder("vgg19"), content_layers=("relu4_2",), style_layers=_GATYS_STYLE,
    style_weight=1e6, content_weight=1.0, needs_weights=True,
    description="VGG19 with ImageNet weights (Gatys et al. 2016 layers)"))
FEATURES.register("vgg16", FeatureSpec(
    "vgg16", _vgg_builder("vgg16"), content_layers=("relu2_2",), style_layers=("relu1_2", "relu2_2", "relu3_3",
                                                                             "relu4_3"),
    style_weight=1e6, content_weight=1.0, needs_weights=True,
    description="VGG16 with ImageNet weights (Johnson et al. 2016 layers)"))


def build_features(name: str, pool: str = "max", weights: str | None = None, seed: int = 0,
                   sizes: Sequence[int] | None = None, filters: int | None = None) -> FeatureNet:
    """The feature network ``name`` (random | vgg19 | vgg16), in eval mode, gradients off."""
    if pool not in POOLS:
        raise GanforgeError(f"Unknown pooling {pool!r}; choose max or avg.")
    net = FEATURES.get(name).build(pool=pool, weights=weights, seed=seed, sizes=sizes, filters=filters)
    return net.eval()
