"""What the doctor measures while a run trains, beyond the losses: cheap numbers logged as ``probe`` rows.

A :class:`Probe` adds a ``probe`` field to every training row the loop logs (``trainer.row_fields``), so that
metrics.jsonl keeps one row per logged step::

    {"step": 200, "loss_D": ..., "probe": {"grad_norm": {"G": 0.8, "D": 2.1}, "weight_norm": {"G": 14.2, ...}}}

* ``grad_norm`` / ``weight_norm``: the L2 norm of each trained network's gradient (of its last update in the
  step; the loop leaves it in ``.grad``) and of its weights whose scale reaches the output (:func:`weight_norm`:
  a convolution's weights that batch norm follows are left out, since their growth is harmless). Every log
  row: a few norms over tensors already in memory. The first row of a run that starts from step 0 also holds
  ``weight_norm_start``, the norms of the initial weights.

At the doctor's interval (``health_every`` log rows) only, what the run's family can show:

* families whose models sample from noise (``family.can("sample")``: G(z, y) and D(x, y)): D's mean output on
  a fixed batch of training images and on a fixed batch of held-out real images (the dataset's test or val
  split, or a ``test`` / ``val`` folder beside an image folder named ``train``): ``D_train`` / ``D_heldout``
  (mean probability, or mean raw score for the losses without probabilities) and ``rt_train`` / ``rt_heldout``
  (ADA's E[sign(D(x))]).
* families of points (``family.can("points")``) on the ring of 8 or the grid of 25 Gaussians: ``modes``, the
  count of modes covered by a fixed batch of G's points (:mod:`.modes`).
* translating families (``family.can("translate")``): ``translation``, how G's outputs for the family's
  held-out pairs compare with their inputs and targets (:mod:`.translation`).

Nothing here draws from the training's random streams (the CPU and CUDA generators are forked) or changes a
network's state (batch-norm statistics are put back), so a run trains the same with the probe or without it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import GanforgeError
from ..families import family_of
from ..models.cgan import ConditionalBatchNorm2d
from .modes import count_modes, mode_set
from .translation import translation_numbers

REAL_N = 128  # real images in each of D's fixed batches (training, held-out)
TOY_N = 2500  # points drawn to count modes (VEEGAN's 2,500)
PAIRS_N = 16  # held-out pairs for the translation numbers
SEED = 12_345  # the probe's own noise and picks


def network_norms(nets: dict[str, nn.Module]) -> tuple[dict[str, float], dict[str, float]]:
    """(gradient norms, weight norms) of the networks that hold gradients, by name; L2 over all parameters."""
    grads, weights = {}, {}
    for name, net in nets.items():
        params = [p for p in net.parameters() if p.grad is not None]
        if not params:
            continue
        grads[name] = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad.float())
                                                                   for p in params])))
        weights[name] = weight_norm(net)
    return grads, weights


# _NormBase: batch and instance norm; the conditional batch norm (cgan's g_cond=cbn: the demo's and cgan-fmnist's G)
# normalises its input as a batch norm does before its per-class scale and shift
NORMALISATIONS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, ConditionalBatchNorm2d)


def scale_free(net: nn.Module) -> set[int]:
    """ids of the parameters whose scale ``net``'s output does not see: the weights and bias of a convolution or
    linear layer that a normalisation layer directly follows in a Sequential (norm(c W x) = norm(W x) for c > 0),
    and the raw weights behind spectral normalisation (divided by their largest singular value before use).
    Adam moves such weights by about the learning rate at every step whatever their size, so their norm grows
    with the steps in a healthy run (the latent layer of the demo's G: 17 to 179 over 26,000 steps) while the
    function does not change; they say nothing about a blow-up."""
    free: set[int] = set()
    for m in net.modules():
        if isinstance(m, nn.Sequential):
            layers = list(m.children())
            for layer, after in zip(layers[:-1], layers[1:], strict=True):
                if isinstance(after, NORMALISATIONS) and isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
                    free.update(id(p) for p in layer.parameters())
        for plist in getattr(getattr(m, "parametrizations", None), "values", lambda: [])():
            if any(type(f).__name__ == "_SpectralNorm" for f in plist):
                free.add(id(plist.original))
    return free


def weight_norm(net: nn.Module) -> float:
    """L2 norm of the parameters whose scale reaches the output (all but :func:`scale_free`'s)."""
    free = scale_free(net)
    params = [p.detach().float() for p in net.parameters() if id(p) not in free]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p) for p in params]))) \
        if params else 0.0


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: float(f"{v:.5g}") for k, v in values.items()}


class _Untouched:
    """Run a network without leaving a trace: the random streams forked, buffers (batch-norm statistics, spectral
    norm's vectors) put back, no gradients."""

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        self.net, self.device = net, device

    def __enter__(self) -> None:
        self.buffers = [b.detach().clone() for b in self.net.buffers()]
        self.rng = torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])
        self.rng.__enter__()
        torch.manual_seed(SEED)
        self.grad = torch.no_grad()
        self.grad.__enter__()

    def __exit__(self, *exc) -> None:
        self.grad.__exit__(*exc)
        self.rng.__exit__(*exc)
        for b, saved in zip(self.net.buffers(), self.buffers, strict=True):
            b.copy_(saved)


def held_out_images(family, cfg):
    """Real images the run does not train on, as the family loads its data: the test (else val) split, or for an
    image folder named ``train`` a ``test`` / ``val`` folder beside it; None when there are none."""
    folder = Path(cfg.data.name).expanduser()
    if folder.is_dir():
        for split in ("test", "val"):
            if folder.name == cfg.data.split and (folder.parent / split).is_dir():
                other = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, name=str(folder.parent / split)))
                return family.load_data(other, cfg.data.split, False)
        return None  # a folder without splits gives its training images for every split
    for split in ("test", "val"):
        if split != cfg.data.split:
            try:
                return family.load_data(cfg, split, False)
            except (GanforgeError, OSError):
                continue
    return None


def _pick(data, n: int) -> dict[str, torch.Tensor]:
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(SEED))[:n]
    out = {"image": data.images[order]}
    if getattr(data, "labels", None) is not None:
        out["label"] = data.labels[order]
    return out


class Probe:
    """Added to a trainer's ``row_fields`` by :func:`ganforge.doctor.live.watch` (main process)."""

    def __init__(self, trainer: Any, health_every: int) -> None:
        self.trainer, self.cfg = trainer, trainer.cfg
        self.interval = health_every * self.cfg.log_every
        self.family = family_of(trainer.meta.get("model") or self.cfg.model)
        self.trained = sorted({n for p in trainer.phases for n in p.nets})
        self.start = None
        if trainer.step == 0:
            self.start = _rounded({n: weight_norm(trainer.raw[n]) for n in self.trained})
        self._batches: dict[str, Any] | None = None
        self._modes = mode_set(self.cfg.data.name) if self.family.can("points") else None

    def fields(self, step: int) -> dict[str, Any]:
        """The ``probe`` field of the training row of ``step`` (called by the loop for every log row)."""
        grads, weights = network_norms({n: self.trainer.raw[n] for n in self.trained})
        probe: dict[str, Any] = {"grad_norm": _rounded(grads), "weight_norm": _rounded(weights)}
        if self.start is not None:
            probe["weight_norm_start"], self.start = self.start, None
        if step % self.interval == 0:
            probe.update(self.measure())
        return {"probe": probe}

    # ------------------------------------------------------------------ at the doctor's interval
    def measure(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            if self.family.can("sample") and "D" in self.trainer.raw:
                out.update(self.real_scores())
            if self._modes is not None:
                out["modes"] = self.modes()
            if self.family.can("translate") and self.trainer.task.held_out:
                out["translation"] = self.translation()
        except (GanforgeError, OSError, RuntimeError, ValueError) as e:  # a probe never stops training
            out["probe_error"] = str(e)[:200]
        return out

    def _fixed_batches(self) -> dict[str, Any]:
        if self._batches is None:
            held = held_out_images(self.family, self.cfg)
            self._batches = {"train": _pick(self.trainer.stream.data, REAL_N),
                             "heldout": _pick(held, REAL_N) if held is not None and len(held) else None}
        return self._batches

    def real_scores(self) -> dict[str, Any]:
        """D's mean output and E[sign(D(x))] on the fixed training batch and the fixed held-out batch."""
        D = self.trainer.raw["D"]
        if any(isinstance(m, nn.SyncBatchNorm) for m in D.modules()):
            return {}  # in training mode it would wait for the other processes, which are not scoring
        device = next(D.parameters()).device
        conditional = bool(getattr(self.trainer.task, "num_classes", 0))
        probabilities = bool(getattr(getattr(self.trainer.task, "gan_loss", None), "probabilities", True))
        out: dict[str, Any] = {}
        with _Untouched(D, device):
            for name, batch in self._fixed_batches().items():
                if batch is None:
                    continue
                x = batch["image"].to(device).float().div(127.5).sub(1)
                y = batch["label"].to(device) if conditional and "label" in batch else None
                logits = D(x, y)
                logits = (logits[0] if isinstance(logits, tuple) else logits).float().flatten()
                score = torch.sigmoid(logits) if probabilities else logits
                out[f"D_{name}"] = round(float(score.mean()), 5)
                out[f"rt_{name}"] = round(float(torch.sign(logits).mean()), 5)
        return out

    def _generate(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        net = self.trainer.sample_net()
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        try:
            with _Untouched(net, device):
                return self.trainer.task.generate(net, {k: v.to(device) for k, v in inputs.items()}).float().cpu()
        finally:
            net.train(was_training)

    def modes(self) -> dict[str, Any]:
        points = self._generate(self.trainer.task.fixed_inputs(TOY_N, SEED))
        return count_modes(points.numpy(), *self._modes)

    def translation(self) -> dict[str, Any]:
        held = {k: v[:PAIRS_N] for k, v in self.trainer.task.held_out.items() if isinstance(v, torch.Tensor)}
        scaled = {k: v.float().div(127.5).sub(1) for k, v in held.items()}
        fake = self._generate(scaled)
        return translation_numbers(scaled["A"], fake, scaled.get("B"))
