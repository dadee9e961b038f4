"""Toy GANs on 1-D and 2-D data: the GAN game of the lectures, drawn as Goodfellow et al.'s figure 1
(1-D) or as GAN Lab does (2-D) every ``sample_every`` steps.

The training is :class:`GANTask`'s (k D updates, then one G update, any registered loss); this task
only changes the noise (uniform on [-1, 1] by default, as in figure 1), the pictures, and writes a
divergence estimate of every frame to ``RUN_DIR/toy_metrics.jsonl``; at the end of training it plots
them (``divergence.png``), whether the run came from ``ganforge toy`` or ``ganforge train toy``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..data.toy import ToyTarget, load_toy
from ..errors import GanforgeError
from ..pipelines.noise import latent
from ..viz.toy import draw_frame_1d, draw_frame_2d, draw_real, plot_divergence
from .gan import GANTask

EVAL_SAMPLES = 10_000  # generated points behind each frame's p_g and divergences
N_ARROWS_1D = 24  # z -> G(z) arrows in a 1-D frame
N_ARROWS_2D = 150  # gradient arrows in a 2-D frame
HIST_BINS = {1: 100, 2: 50}  # bins per axis of the JS histogram
MESH_SIDE = 17  # 2-D: G's manifold is drawn as the image of a MESH_SIDE x MESH_SIDE grid of z


def latent_quantiles(u: np.ndarray, dist: str) -> np.ndarray:
    """The z values at quantiles ``u`` in (0, 1) of one latent coordinate."""
    return 2 * u - 1 if dist == "uniform" else stats.norm.ppf(u)


# ----------------------------------------------------------------------------- divergence estimates
def histogram_js(a: np.ndarray, b: np.ndarray, limits, bins: int) -> float:
    """Jensen-Shannon divergence (nats, at most log 2) between the histograms of points a [N, dim] and
    b [M, dim] on a grid of ``bins`` per axis over ``limits``; points outside are counted in the edge bins."""
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in limits]

    def hist(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, [lo for lo, _ in limits], [np.nextafter(hi, lo) for lo, hi in limits])
        h, _ = np.histogramdd(x, bins=edges)
        return h.ravel() / max(h.sum(), 1)

    p, q = hist(a), hist(b)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(0.5 * (kl_p + kl_q))


def sliced_w1(a: np.ndarray, b: np.ndarray, n_directions: int = 64) -> float:
    """Wasserstein-1 distance between two equally large point sets a, b [N, dim]: exact in 1-D (the mean
    distance between sorted samples); in 2-D its sliced version, the mean 1-D W1 of the projections on
    ``n_directions`` evenly spaced directions."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_w1 needs point sets of one shape, got {a.shape} and {b.shape}")
    if a.shape[1] == 1:
        dirs = np.ones((1, 1))
    else:
        angles = np.linspace(0, math.pi, n_directions, endpoint=False)
        dirs = np.stack([np.cos(angles), np.sin(angles)], 1)
    pa, pb = np.sort(a @ dirs.T, axis=0), np.sort(b @ dirs.T, axis=0)
    return float(np.abs(pa - pb).mean())


@dataclass
class _Scene:
    """What every frame of a run shares: the data, fixed evaluation noise, grids and floors."""

    target: ToyTarget
    z_eval: torch.Tensor  # [EVAL_SAMPLES, nz]
    z_lines: torch.Tensor  # 1-D: [N_ARROWS_1D, nz] z's of the arrows; 2-D: [S*S, nz] the manifold's z grid
    z_display: np.ndarray  # 1-D: where the arrows start on the drawn z line
    real_ref: np.ndarray  # [EVAL_SAMPLES, dim] real points the divergences are measured against
    js_floor: float
    w1_floor: float
    ymax: float


# ----------------------------------------------------------------------------- the task
class ToyGANTask(GANTask):
    """GANTask on points [B, dim]; renders figure-1 (1-D) or GAN Lab (2-D) frames with divergence estimates."""

    def __init__(self, nets, model_cfg, options=None, loop=None, pipeline=None, held_out=None) -> None:
        super().__init__(nets, model_cfg, options, loop, pipeline, held_out)
        self.nz = model_cfg.latent_dim
        self.dim = model_cfg.dim
        self._scene_cache: _Scene | None = None

    def _noise(self, n: int, device) -> torch.Tensor:
        return latent(n, self.nz, self.model_cfg.z_dist, device)

    @property
    def d_kind(self) -> str:
        """How D's output reads: a probability (sigmoid of the logit), least squares' score or a critic."""
        if self.gan_loss.probabilities:
            return "probability"
        return "lsgan" if self.gan_loss.name == "lsgan" else "critic"

    def d_values(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """D(x) as drawn: sigmoid(logit) for the probability losses, else D's raw output."""
        out = D(x).float()
        return torch.sigmoid(out) if self.d_kind == "probability" else out

    def _scene(self) -> _Scene:
        if self._scene_cache is not None:
            return self._scene_cache
        c = self.loop
        target = load_toy(c.data.name, c.data.root, c.data.split)
        if target.dim != self.dim:
            raise GanforgeError(f"The toy model has dim={self.dim} but the data {target.name!r} is {target.dim}-D.")
        g = torch.Generator().manual_seed(c.seed + 1)
        z_eval = latent(EVAL_SAMPLES, self.nz, self.model_cfg.z_dist, generator=g)
        rng = np.random.default_rng(c.seed + 2)
        halves = rng.permutation(len(target.points))
        a, b = target.points[halves[:EVAL_SAMPLES]], target.points[halves[EVAL_SAMPLES:2 * EVAL_SAMPLES]]
        js_floor = histogram_js(a, b, target.limits, HIST_BINS[self.dim])
        w1_floor = sliced_w1(a, b)
        z_display = np.zeros(0)
        rest = latent(1, max(self.nz - 1, 0), self.model_cfg.z_dist, generator=g)  # z beyond the drawn ones
        if self.dim == 1:
            u = (np.arange(N_ARROWS_1D) + 0.5) / N_ARROWS_1D
            lo, hi = target.limits[0]
            z_display = lo + (hi - lo) * (0.04 + 0.92 * u)
            first = torch.tensor(latent_quantiles(u, self.model_cfg.z_dist), dtype=torch.float32)[:, None]
            z_lines = torch.cat([first, rest[:, :self.nz - 1].expand(N_ARROWS_1D, -1)], 1)
            xs = np.linspace(lo, hi, 400)
            ymax = 1.5 * float(target.density(xs).max()) if target.density is not None else 1.0
        else:
            s = MESH_SIDE
            q = torch.tensor(latent_quantiles(np.linspace(0.02, 0.98, s), self.model_cfg.z_dist), dtype=torch.float32)
            zz = torch.stack(torch.meshgrid(q, q, indexing="ij"), -1).reshape(-1, 2)
            z_lines = torch.cat([zz, rest[:, :max(self.nz - 2, 0)].expand(s * s, -1)], 1)[:, :self.nz]
            ymax = 1.0
        self._scene_cache = _Scene(target, z_eval, z_lines, z_display, a, js_floor, w1_floor, ymax)
        return self._scene_cache

    def measure(self, G: nn.Module, D: nn.Module) -> tuple[dict[str, float], np.ndarray]:
        """Divergences between the data and EVAL_SAMPLES generated points, and the generator's mean gradient
        norm |d g_loss / dx| at its samples; returns (numbers, the generated points float [N, dim])."""
        scene = self._scene()
        device = next(G.parameters()).device
        with torch.no_grad():
            fake = G(scene.z_eval.to(device)).float()
        fake_np = fake.cpu().numpy()
        real = scene.real_ref
        w_key = "w1" if self.dim == 1 else "sw1"
        grads = self.sample_gradients(D, fake[:2000])
        return {
            "js": round(histogram_js(fake_np, real, scene.target.limits, HIST_BINS[self.dim]), 6),
            "js_floor": round(scene.js_floor, 6),
            w_key: round(sliced_w1(fake_np, real), 6),
            f"{w_key}_floor": round(scene.w1_floor, 6),
            "grad_g": float(f"{float(grads.norm(dim=1).mean()):.6g}"),
        }, fake_np

    def sample_gradients(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """d(g_loss)/dx for each generated point x [N, dim] (per-sample loss, not the batch mean): minus the
        direction the generator's update moves it. Weights of D get no gradient."""
        with torch.enable_grad():
            x = x.detach().float().requires_grad_(True)
            loss = self.gan_loss.g_loss(D(x).float()) * x.shape[0]
            (grad,) = torch.autograd.grad(loss, x)
        return grad

    def render_samples(self, net, inputs, path, step):
        """Draw the frame of ``step`` and append its divergence estimates to RUN_DIR/toy_metrics.jsonl."""
        scene = self._scene()
        D = self.nets["D"]
        device = next(net.parameters()).device
        numbers, fake = self.measure(net, D)
        lo_hi = scene.target.limits
        w_text = f"W1 {numbers['w1']:.3f}" if self.dim == 1 else f"sliced W1 {numbers['sw1']:.3f}"
        title = (f"step {step}   {self.options.loss}, k={self.options.d_steps}   {w_text}   JS {numbers['js']:.3f}   "
                 f"|grad| {numbers['grad_g']:.2g}")
        with torch.no_grad():
            lines = net(scene.z_lines.to(device)).float().cpu().numpy()
        if self.dim == 1:
            lo, hi = lo_hi[0]
            xs = np.linspace(lo, hi, 400)
            with torch.no_grad():
                d = self.d_values(D, torch.tensor(xs, dtype=torch.float32, device=device)[:, None]).cpu().numpy()
            p_data = scene.target.density(xs) if scene.target.density is not None else None
            draw_frame_1d(path, xs, p_data, fake[:, 0], d, self.d_kind, scene.z_display, lines[:, 0],
                          (lo, hi), scene.ymax, title)
        else:
            (x0, x1), (y0, y1) = lo_hi
            r = 100
            gx, gy = np.meshgrid(np.linspace(x0, x1, r), np.linspace(y0, y1, r))
            grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32, device=device)
            with torch.no_grad():
                d = self.d_values(D, grid).cpu().numpy().reshape(r, r)
            shown = inputs["z"][:1000]
            with torch.no_grad():
                pts = net(shown).float()
            grads = -self.sample_gradients(D, pts[:N_ARROWS_2D]).cpu().numpy()
            length = np.linalg.norm(grads, axis=1)
            ref = float(np.percentile(length, 90))
            arrows = np.zeros_like(grads)
            if ref > 0:  # the 90th percentile arrow is 8% of the box wide; none longer than 1.5x that
                cap = np.minimum(1.0, 1.5 * ref / np.maximum(length, 1e-30))[:, None]
                arrows = grads * (0.08 * (x1 - x0) / ref) * cap
            # a random 1000 (fixed seed), not every k-th: a user's file tiled to N_POINTS repeats with its own
            # period, and a stride that is a multiple of it showed one point over and over
            pick = np.random.default_rng(0).choice(len(scene.target.points), min(1000, len(scene.target.points)),
                                                   replace=False)
            real = scene.target.points[np.sort(pick)]
            draw_frame_2d(path, real, pts.cpu().numpy(), d, self.d_kind, lines.reshape(MESH_SIDE, MESH_SIDE, 2),
                          pts[:N_ARROWS_2D].cpu().numpy(), arrows, lo_hi, title)
        with open(Path(path).parent.parent / "toy_metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **numbers}) + "\n")

    def render_real(self, batch, path, n):
        scene = self._scene()
        draw_real(path, scene.target.points[:max(n, 1000)], scene.target.limits, scene.target.density)

    def on_end(self, run_dir: Path) -> None:
        """divergence.png: the frames' divergence estimates over training, with their real-vs-real floors."""
        plot_divergence(Path(run_dir) / "toy_metrics.jsonl", Path(run_dir) / "divergence.png",
                        title=f"{self.loop.data.name}, {self.options.loss}, k={self.options.d_steps}")
