"""Style transfer by optimising the pixels of one image (Gatys et al. 2016), and texture synthesis from a
style image alone (Gatys et al. 2015, ``content=None``).

The image x (float [1, 3, H, W] in [0, 1]) starts from the content image, uniform noise or the style
image and is changed by L-BFGS or Adam to lower

    content_weight * sum_l MSE(F_l(x), F_l(content))
      + style_weight * sum_l w_l MSE(G_l(x), G_l(style)) + tv_weight * TV(x)

with F_l the feature maps of layer l and G_l their Gram matrix (:mod:`ganforge.style.losses`). Several
styles are blended by the weighted mean of their Gram matrices. ``preserve_color`` is luminance-only
transfer (Gatys et al. 2017): content and styles are turned into their YIQ luminance (the styles' matched to
the content's mean and standard deviation), the transfer runs on those gray images, and the result's
luminance is put together with the content's I and Q.

Keeping x in [0, 1]: Adam changes x itself and clamps it after every step, as the TF tutorial does. L-BFGS
changes u with x = sigmoid(u) (u starts at logit(x), x clamped to [0.001, 0.999]), so that every picture it
evaluates lies in (0, 1) and its line search sees the function it minimises. Measured on the default run
(256 px, random network, 300 iterations): clamping inside every evaluation as the PyTorch tutorial does
stalled at loss 0.92 after 26 evaluations (a clamped point is not the one the line search asked for);
clamping only at the end wrote a picture of loss 1.72 (0.20 before the clamp); see the README for this
parametrisation's figures.

One *iteration* is one evaluation of the loss and its gradient (L-BFGS's closure call, Adam's step), as the
PyTorch tutorial counts its 300. L-BFGS runs with a strong Wolfe line search, whose last search may take a
few evaluations beyond the budget (the record's ``iterations_run`` says how many ran).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import GanforgeError
from ..style.features import FEATURES, POOLS, RANDOM_FILTERS, RANDOM_SIZES, build_features
from ..style.losses import gram, luminance, match_luminance, rgb_to_yiq, total_loss, yiq_to_rgb

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")


@dataclass
class StyleSettings:
    """Every setting of one picture; recorded in its JSON so that it can be made again. None: the default
    of the chosen network or optimiser (the resolved value is what is recorded)."""

    network: str = "random"  # random (offline) | vgg19 | vgg16
    weights: str | None = None  # VGG weights file (else found in the torch hub cache or downloaded)
    pool: str = "max"  # max | avg (Gatys et al. 2016 use avg) for the VGG networks
    network_seed: int = 0  # seed of the random network's filters
    random_sizes: tuple[int, ...] | None = None  # filter sizes of the random network (default 3, 5, 7, 11)
    random_filters: int | None = None  # filters per size of the random network (default 32)
    size: int = 256  # longest side of the output (the content is resized to it; textures are size x size)
    content_layers: tuple[str, ...] | None = None  # default: the network's (vgg19 relu4_2)
    style_layers: tuple[str, ...] | None = None  # default: the network's (vgg19 relu1_1 .. relu5_1)
    style_layer_weights: tuple[float, ...] | None = None  # one per style layer (default 1 / number of layers)
    content_weight: float | None = None  # alpha (default 1)
    style_weight: float | None = None  # beta (default 1e6, the PyTorch tutorial's)
    style_blend: tuple[float, ...] | None = None  # one weight per style image (default equal)
    tv_weight: float | None = None  # total variation weight (default 0 with lbfgs, see ADAM_TV with adam)
    optimizer: str = "lbfgs"  # lbfgs | adam
    iterations: int | None = None  # loss evaluations (default 300 for lbfgs, 1000 for adam)
    lr: float | None = None  # default 1 for lbfgs, 0.02 for adam (TF tutorial, with beta1 0.99, eps 0.1)
    adam_eps: float = 0.1  # Adam's epsilon (the TF tutorial's 0.1 was chosen for its loss scale; see the README)
    init: str | None = None  # content | noise | style (default content; noise without a content image)
    preserve_color: bool = False  # luminance-only transfer (Gatys et al. 2017)
    seed: int = 0  # seed of the noise start
    frames: int = 30  # pictures of the optimisation in the GIF
    device: str = "cpu"

    def resolved(self, has_content: bool, n_styles: int) -> StyleSettings:
        """A copy with every None replaced by its default, after checking every value."""
        s = dataclasses.replace(self)
        if s.network not in FEATURES:
            raise GanforgeError(f"Unknown feature network {s.network!r}; choose one of: {', '.join(FEATURES.names())}.")
        if s.pool not in POOLS:
            raise GanforgeError(f"Unknown pooling {s.pool!r}; choose max or avg.")
        if s.optimizer not in OPTIMIZERS:
            raise GanforgeError(f"Unknown optimizer {s.optimizer!r}; choose lbfgs or adam.")
        spec = FEATURES.get(s.network)
        s.init = s.init or ("content" if has_content else "noise")
        if s.init not in INITS:
            raise GanforgeError(f"Unknown start {s.init!r}; choose content, noise or style.")
        if s.init == "content" and not has_content:
            raise GanforgeError("Texture synthesis (--content none) cannot start from the content image; use --init "
                                "noise or style.")
        if s.network == "random":
            s.random_sizes = tuple(s.random_sizes or RANDOM_SIZES)
            s.random_filters = int(s.random_filters or RANDOM_FILTERS)
            if s.random_filters < 1 or any(int(k) < 1 for k in s.random_sizes):
                raise GanforgeError("The random network needs positive filter sizes and a positive number of filters.")
            names = tuple(f"k{k}" for k in s.random_sizes)
            s.style_layers = tuple(s.style_layers or names)
            s.content_layers = tuple(s.content_layers or (spec.content_layers if set(spec.content_layers) <= set(names)
                                                          else names[:1]))
        else:
            s.random_sizes = s.random_filters = None
            s.style_layers = tuple(s.style_layers or spec.style_layers)
            s.content_layers = tuple(s.content_layers or spec.content_layers)
        if not has_content:
            s.content_layers = ()
        n = len(s.style_layers)
        s.style_layer_weights = tuple(float(w) for w in (s.style_layer_weights or [1.0 / n] * n))
        if len(s.style_layer_weights) != n:
            raise GanforgeError(f"Give one style layer weight per style layer: {n} layers "
                                f"({', '.join(s.style_layers)}), {len(s.style_layer_weights)} weights.")
        s.style_blend = tuple(float(w) for w in (s.style_blend or [1.0] * n_styles))
        if len(s.style_blend) != n_styles:
            raise GanforgeError(f"Give one style weight per style image: {n_styles} images, {len(s.style_blend)} "
                                "weights.")
        if any(not math.isfinite(w) or w < 0 for w in s.style_blend) or sum(s.style_blend) <= 0:
            raise GanforgeError(f"Style weights must be zero or positive and not all zero, got {list(s.style_blend)}.")
        s.content_weight = float(spec.content_weight if s.content_weight is None else s.content_weight)
        s.style_weight = float(spec.style_weight if s.style_weight is None else s.style_weight)
        s.tv_weight = float((ADAM_TV if s.optimizer == "adam" else 0.0) if s.tv_weight is None else s.tv_weight)
        s.iterations = int(s.iterations or (300 if s.optimizer == "lbfgs" else 1000))
        s.lr = float(s.lr or (1.0 if s.optimizer == "lbfgs" else 0.02))
        for name in ("content_weight", "style_weight", "tv_weight"):
            v = getattr(s, name)
            if not math.isfinite(v) or v < 0:
                raise GanforgeError(f"{name} must be zero or positive, got {v!r}.")
        for name in ("size", "iterations", "frames"):
            if getattr(s, name) < 1:
                raise GanforgeError(f"{name} must be a positive integer, got {getattr(s, name)!r}.")
        if not s.adam_eps > 0:
            raise GanforgeError(f"adam_eps must be positive, got {s.adam_eps!r}.")
        if not s.lr > 0:
            raise GanforgeError(f"lr must be positive, got {s.lr!r}.")
        if any(w < 0 for w in s.style_layer_weights):
            raise GanforgeError(f"Style layer weights must be zero or positive, got {list(s.style_layer_weights)}.")
        return s


# The TF tutorial's TV weight 30 multiplies tf.image.total_variation (a sum over pixels of [0, 1] images)
# beside style and content losses of another scale; with this module's losses the same 30 would
# dominate, so the Adam default is scaled to these losses (measured: see the README).
ADAM_TV = 1e-5


@dataclass
class StyleResult:
    image: torch.Tensor  # uint8 [3, H, W]
    frames: list[torch.Tensor]  # uint8 [3, H, W] pictures of the optimisation
    frame_iterations: list[int]
    history: list[dict[str, float]]  # per iteration: total and each weighted term
    settings: StyleSettings  # resolved
    seconds: float
    record: dict[str, Any] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)  # the loss terms of the returned picture (clamped)


def resize_longest(image: torch.Tensor, size: int) -> torch.Tensor:
    """float [1, 3, H, W] resized (bilinear, antialiased) so that its longest side is ``size``."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    if hw == (h, w):
        return image
    return F.interpolate(image, size=hw, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def as_float_image(image: torch.Tensor) -> torch.Tensor:
    """uint8 [3 or 1, H, W] (or [H, W, 3] / [H, W]) -> float [1, 3, H, W] in [0, 1]."""
    if not isinstance(image, torch.Tensor):
        image = torch.as_tensor(image)
    if image.dtype != torch.uint8:
        raise GanforgeError(f"Images must be uint8 arrays, got {image.dtype}.")
    if image.dim() == 2:
        image = image[None]
    elif image.dim() == 3 and image.shape[0] not in (1, 3) and image.shape[-1] in (1, 3):
        image = image.permute(2, 0, 1)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise GanforgeError(f"Images must be [3, H, W], [H, W, 3] or gray [H, W], got shape {list(image.shape)}.")
    return image.expand(3, -1, -1).float().div(255)[None]


def to_uint8_image(x: torch.Tensor) -> torch.Tensor:
    return (x[0].detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def stylize_images(content: torch.Tensor | None, styles: list[torch.Tensor],
                   settings: StyleSettings | None = None, progress=None) -> StyleResult:
    """Optimise one image: ``content`` uint8 [3, H, W] (None: texture synthesis), ``styles`` uint8 images.

    ``progress(iteration, total, losses)`` is called after every iteration when given."""
    if not styles:
        raise GanforgeError("Give at least one style image.")
    s = (settings or StyleSettings()).resolved(content is not None, len(styles))
    device = torch.device(s.device)
    net = build_features(s.network, s.pool, s.weights, s.network_seed, s.random_sizes, s.random_filters).to(device)
    net.check_layers(s.content_layers, "content layer")
    net.check_layers(s.style_layers, "style layer")
    layers = tuple(dict.fromkeys(s.content_layers + s.style_layers))

    c = resize_longest(as_float_image(content), s.size).to(device) if content is not None else None
    style_images = [resize_longest(as_float_image(im), s.size).to(device) for im in styles]
    chroma = None
    if s.preserve_color:
        reference = rgb_to_yiq(c)[:, :1] if c is not None else None
        if c is not None:
            chroma = rgb_to_yiq(c)[:, 1:]
            c = luminance(c)
        style_images = [match_luminance(rgb_to_yiq(im)[:, :1], reference).clamp(0, 1).expand(-1, 3, -1, -1)
                        if reference is not None else luminance(im) for im in style_images]

    with torch.no_grad():
        content_targets = {k: v.detach() for k, v in net(c, s.content_layers).items()} if c is not None else {}
        grams = [{k: gram(v).detach() for k, v in net(im, s.style_layers).items()} for im in style_images]
    total_w = sum(s.style_blend)
    style_targets = {k: sum(g[k] * (w / total_w) for g, w in zip(grams, s.style_blend, strict=True))
                     for k in s.style_layers}
    layer_weights = dict(zip(s.style_layers, s.style_layer_weights, strict=True))

    shape = c.shape if c is not None else (1, 3, s.size, s.size)
    if s.init == "content":
        x = c.clone()
    elif s.init == "noise":
        g = torch.Generator().manual_seed(s.seed)
        x = torch.rand(shape, generator=g).to(device)
    else:
        x = F.interpolate(style_images[0], size=shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    x = x.clamp(0, 1).contiguous()
    if s.optimizer == "lbfgs":  # L-BFGS changes u, the picture is sigmoid(u): always in (0, 1), nothing to clamp
        u = torch.logit(x.clamp(1e-3, 1 - 1e-3)).requires_grad_(True)

        def picture() -> torch.Tensor:
            return torch.sigmoid(u)
    else:
        x.requires_grad_(True)

        def picture() -> torch.Tensor:
            return x

    history: list[dict[str, float]] = []
    frames, frame_its = [], []
    every = max(1, s.iterations // s.frames)

    def output() -> torch.Tensor:
        pic = picture().detach()
        if chroma is None:
            return pic
        return yiq_to_rgb(torch.cat([rgb_to_yiq(pic)[:, :1], chroma], 1)).clamp(0, 1)

    def snapshot(it: int) -> None:
        frames.append(to_uint8_image(output()))
        frame_its.append(it)

    snapshot(0)

    def evaluate_terms() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pic = picture()
        return total_loss(net(pic, layers), content_targets, style_targets, layer_weights, s.content_weight,
                          s.style_weight, s.tv_weight, pic)

    def _row(evaluated, iteration: int) -> dict[str, float]:
        loss, terms = evaluated
        row = {"iteration": iteration, "total": float(loss.detach())}
        if "content" in terms:
            row["content"] = s.content_weight * float(terms["content"])
        for k in s.style_layers:
            row[f"style_{k}"] = s.style_weight * layer_weights[k] * float(terms[f"style_{k}"])
        if "tv" in terms:
            row["tv"] = s.tv_weight * float(terms["tv"])
        return row

    def evaluate() -> torch.Tensor:
        evaluated = evaluate_terms()
        loss = evaluated[0]
        row = _row(evaluated, len(history) + 1)
        if not math.isfinite(row["total"]):
            raise GanforgeError(f"The loss became {row['total']} at iteration {row['iteration']}; lower the weights "
                                "or the learning rate.")
        history.append(row)
        if len(history) % every == 0 and len(history) < s.iterations:
            snapshot(len(history))  # (L-BFGS evaluates several times per step; every evaluation counts)
        return loss

    t0 = time.perf_counter()
    if s.optimizer == "lbfgs":
        # strong Wolfe line search: without it, lr 1 made the loss on the random network jump from 2944 to
        # 195559 within 6 evaluations (its loss scale is not VGG's, for which the tutorial's plain steps work)
        opt: torch.optim.Optimizer = torch.optim.LBFGS([u], lr=s.lr, max_iter=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = evaluate()
            loss.backward()
            return loss

        while len(history) < s.iterations:
            before = len(history)
            opt.param_groups[0]["max_iter"] = min(20, s.iterations - before)
            opt.param_groups[0]["max_eval"] = min(25, s.iterations - before)
            opt.step(closure)
            _progress(before, progress, history, s.iterations)
            if len(history) == before:  # converged: L-BFGS evaluates nothing more
                break
    else:
        opt = torch.optim.Adam([x], lr=s.lr, betas=(0.99, 0.999), eps=s.adam_eps)
        while len(history) < s.iterations:
            before = len(history)
            opt.zero_grad(set_to_none=True)
            evaluate().backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            _progress(before, progress, history, s.iterations)
    with torch.no_grad():
        if s.optimizer == "adam":
            x.clamp_(0, 1)
        final = _row(evaluate_terms(), len(history))  # the loss of the picture that is returned
    if frame_its[-1] != len(history):
        snapshot(len(history))
    seconds = time.perf_counter() - t0
    return StyleResult(to_uint8_image(output()), frames, frame_its, history, s, seconds, final=final)


def _progress(before: int, progress, history, total: int) -> None:
    if progress is not None and len(history) > before:
        progress(len(history), total, history[-1])
