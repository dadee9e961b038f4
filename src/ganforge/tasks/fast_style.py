"""Fast style transfer (Johnson et al. 2016): train the TransformerNet G on a folder of content images
for one style image, with the perceptual losses of a fixed feature network.

One step, one phase ("G"): for a batch x of content images, y = G(x) and

    loss = content_weight * MSE(F_c(y), F_c(x))
         + style_weight * sum_l w_l MSE(Gram_l(y), Gram_l(style)) + tv_weight * TV(y)

with the feature maps F of :mod:`ganforge.style.features` taken of images in [0, 1] (ImageNet-normalised
inside the network) and the Gram matrix and losses of :mod:`ganforge.style.losses`. The feature network is
not trained and not saved: the random one is rebuilt from its seed, the VGG ones from their weights file.
The style image is read once, resized so that its longest side is ``style_size`` (default: the training
image size), and its Gram matrices are computed once per device.

Defaults: the offline ``random`` network (content k3, style every size) with content 1 and style 1e6, as
``ganforge stylize``; ``network=vgg16`` takes Johnson et al.'s layers (content relu2_2; style relu1_2,
relu2_2, relu3_3, relu4_3) and weights (content 1e5, style 1e10 summed over the four layers, i.e. 4e10 with
this module's per-layer weights 1/4). The preset ``fast-style`` holds the paper's training settings (Adam
1e-3, batch 4, 256 px, 2 epochs).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.folders import read_image
from ..errors import GanforgeError
from ..style.features import FEATURES, POOLS, build_features
from ..style.losses import gram, total_loss
from ..viz import save_grid, to_uint8
from ..viz.columns import save_column_grid
from . import Phase, Task

JOHNSON = {"content_weight": 1e5, "style_weight": 4e10}


@dataclass
class FastStyleOptions:
    """Perceptual losses of fast style transfer (``task.NAME=value``, e.g. ``task.style=starry.jpg``)."""

    style: str | None = None  # the style image file (required)
    network: str = "random"  # random (offline) | vgg16 (Johnson et al.) | vgg19
    weights: str | None = None  # VGG weights file (else the torch hub cache or a download)
    pool: str = "max"  # max | avg pooling of the VGG networks
    network_seed: int = 0  # seed of the random network's filters
    random_sizes: tuple[int, ...] | None = None  # filter sizes of the random network (default 3, 5, 7, 11)
    random_filters: int | None = None  # filters per size of the random network (default 32)
    content_layers: tuple[str, ...] | None = None  # default: the network's (random k3, vgg16 relu2_2)
    style_layers: tuple[str, ...] | None = None  # default: the network's (random: every size)
    content_weight: float | None = None  # default 1 (random) or 1e5 (vgg)
    style_weight: float | None = None  # default 1e6 (random) or 4e10 (vgg; per-layer weights are 1 / layers)
    tv_weight: float = 0.0  # total variation of the outputs (pytorch/examples leaves it out)
    style_size: int | None = None  # longest side of the style image (default: the training image size)

    def validate(self) -> None:
        if not self.style:
            raise GanforgeError("fast-style needs a style image: add task.style=STYLE.jpg.")
        if not Path(self.style).expanduser().is_file():
            raise GanforgeError(f"The style image {self.style!r} (task.style) does not exist or is not a file.")
        if self.network not in FEATURES:
            raise GanforgeError(f"Unknown feature network {self.network!r} (task.network); choose one of: "
                                f"{', '.join(FEATURES.names())}.")
        if self.pool not in POOLS:
            raise GanforgeError(f"Unknown pooling {self.pool!r} (task.pool); choose max or avg.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise GanforgeError(f"task.{name} must be zero or positive, got {v!r}.")
        if self.style_size is not None and self.style_size < 1:
            raise GanforgeError(f"task.style_size must be a positive integer, got {self.style_size!r}.")


class FastStyleTask(Task):
    """Content images {"image": [B, 3, S, S] in [-1, 1]} -> G -> perceptual losses against one style."""

    options_cls = FastStyleOptions

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        o = self.options
        spec = FEATURES.get(o.network)
        self.features = build_features(o.network, o.pool, o.weights, o.network_seed, o.random_sizes, o.random_filters)
        names = self.features.layer_names
        self.content_layers = tuple(o.content_layers or (spec.content_layers if set(spec.content_layers) <= set(names)
                                                         else names[:1]))
        self.style_layers = tuple(o.style_layers or (names if o.network == "random" else spec.style_layers))
        self.features.check_layers(self.content_layers, "content layer")
        self.features.check_layers(self.style_layers, "style layer")
        defaults = {"content_weight": 1.0, "style_weight": 1e6} if o.network == "random" else JOHNSON
        self.content_weight = float(defaults["content_weight"] if o.content_weight is None else o.content_weight)
        self.style_weight = float(defaults["style_weight"] if o.style_weight is None else o.style_weight)
        self.layer_weights = {k: 1.0 / len(self.style_layers) for k in self.style_layers}
        path = Path(o.style).expanduser()
        image = read_image(path)
        if image is None:
            raise GanforgeError(f"The style image {o.style!r} (task.style) cannot be read as an image.")
        self.style_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        style = torch.from_numpy(np.ascontiguousarray(image)).expand(3, -1, -1).float().div(255)[None]
        size = o.style_size or int(model_cfg.image_size)
        h, w = style.shape[-2:]
        hw = (max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w))))
        self.style_image = torch.nn.functional.interpolate(style, size=hw, mode="bilinear", antialias=True,
                                                           align_corners=False).clamp(0, 1)
        self._targets: dict[str, torch.Tensor] | None = None
        self._samples: torch.Tensor | None = None

    def phases(self) -> list[Phase]:
        return [Phase("G", ("G",), lr=self.loop.lr_g, betas=self.loop.betas)]

    def _style_targets(self, device: torch.device) -> dict[str, torch.Tensor]:
        if self._targets is None or next(iter(self._targets.values())).device != device:
            self.features.to(device)
            with torch.no_grad():
                maps = self.features(self.style_image.to(device), self.style_layers)
                self._targets = {k: gram(v).float() for k, v in maps.items()}
        return self._targets

    def loss(self, phase, batch, nets):
        x = batch["image"]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        targets = self._style_targets(x.device)
        y = nets["G"](x)
        y01, x01 = (y.float() + 1) / 2, (x.float() + 1) / 2
        feats = self.features(y01, tuple(dict.fromkeys(self.content_layers + self.style_layers)))
        with torch.no_grad():
            content = {k: v.detach() for k, v in self.features(x01, self.content_layers).items()}
        loss, terms = total_loss(feats, content, targets, self.layer_weights, self.content_weight, self.style_weight,
                                 self.options.tv_weight, y01)
        logs = {"loss_G": loss.detach(), "loss_content": terms["content"] * self.content_weight,
                "loss_style": sum(terms[f"style_{k}"] * self.layer_weights[k] for k in self.style_layers)
                * self.style_weight}
        if "tv" in terms:
            logs["loss_tv"] = terms["tv"] * self.options.tv_weight
        return loss, logs

    # ------------------------------------------------------------------ pictures
    def generate(self, net, inputs):
        return self.pipeline.generate(inputs, net=net)

    def render_samples(self, net, inputs, path, step) -> None:
        out = self.generate(net, inputs)
        save_column_grid([to_uint8(inputs["A"]), to_uint8(out)], path, ["photo", "stylised"], title=f"step {step}")

    def render_real(self, batch, path, n) -> None:
        save_grid(batch["image"][:n], path)
