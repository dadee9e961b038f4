"""GANSpace directions (Harkonen et al. 2020): latent directions along which G's output varies most."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GanforgeError
from .render import check_images, fmnist_extractor, model_class, num_classes, render

SPACES = ("activation", "feature")

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.PReLU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus,
                nn.ReLU6, nn.Hardtanh, nn.Tanh, nn.Sigmoid)


def default_layer(net: nn.Module) -> str:
    """The module whose output is "the first block's output": the first activation module in the
    generator's module order (e.g. DCGAN's ReLU after the first ConvTranspose + BatchNorm), else the
    first module with parameters."""
    for name, m in net.named_modules():
        if name and isinstance(m, _ACTIVATIONS):
            return name
    for name, m in net.named_modules():
        if name and not list(m.children()) and any(True for _ in m.parameters(recurse=False)):
            return name
    raise GanforgeError("The generator has no submodule to take activations from; use space='feature'.")


@dataclass
class PCADirections:
    """GANSpace directions: unit latent directions float32 [k, nz], explained variance ratio [k] of the
    principal components they follow, and how they were computed."""

    directions: torch.Tensor
    explained_variance: list[float]
    space: str
    layer: str | None
    n_samples: int
    seed: int


class _Captured(Exception):
    """Raised by the forward hook once the layer's output is stored: the rest of G need not run."""


def _principal_directions(z: torch.Tensor, x: torch.Tensor, k: int) -> tuple[torch.Tensor, list[float]]:
    """PCA of x [N, D], then the latent direction of each of the top k components by least squares.

    The components come from the eigenvectors of the smaller of the two Gram matrices (Xc Xc^T [N, N]
    or Xc^T Xc [D, D]) in float64: the same components as an SVD of Xc, and far quicker on CPU.
    """
    xc = x.double() - x.double().mean(0)
    n, d = xc.shape
    if n <= d:
        evals, evecs = torch.linalg.eigh(xc @ xc.T)
        evals, u = evals.flip(0)[:k].clamp_min(0), evecs.flip(1)[:, :k]
        if bool((evals <= 1e-12 * max(float(evals[0]), 1e-300)).any()):
            raise GanforgeError(f"The activations vary in fewer than {k} directions; ask for fewer components.")
        coords = u * evals.sqrt()  # [N, k] PC coordinates
        loadings = (xc.T @ u) / evals.sqrt()  # [D, k] unit principal axes
    else:
        evals, evecs = torch.linalg.eigh(xc.T @ xc)
        evals, loadings = evals.flip(0)[:k].clamp_min(0), evecs.flip(1)[:, :k]
        coords = xc @ loadings
    flip = torch.sign(loadings.gather(0, loadings.abs().argmax(0, keepdim=True))).reshape(-1)
    flip[flip == 0] = 1
    coords = coords * flip  # signs fixed: the largest loading of each component is positive
    zc = z.double() - z.double().mean(0)
    w = torch.linalg.lstsq(coords, zc).solution  # [k, nz]: z ~ coords @ w  (GANSpace: U = argmin |U x - z|)
    norms = w.norm(dim=1, keepdim=True)
    if bool((norms < 1e-12).any()):
        raise GanforgeError("A principal component does not depend on the latent (zero regression); "
                            "use fewer components or another layer.")
    var = evals / (xc ** 2).sum()
    return (w / norms).float(), [round(float(v), 6) for v in var]


def _layer_outputs(model, net: nn.Module, layer: str, z: torch.Tensor, y: torch.Tensor | None,
                   batch_size: int) -> torch.Tensor:
    """The flattened outputs float64 [N, D] of ``net``'s submodule ``layer`` for latents z (classes y)."""
    try:
        module = net.get_submodule(layer)
    except AttributeError:
        some = ", ".join(n for n, _ in list(net.named_modules())[1:9])
        raise GanforgeError(f"The generator has no layer {layer!r}; its layers include: {some}.") from None
    store: list[torch.Tensor] = []

    def hook(_m, _i, output):
        store.append(output.detach().flatten(1).double().cpu())
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        for s in range(0, z.shape[0], batch_size):
            chunk = {"z": z[s:s + batch_size]}
            if y is not None:
                chunk["y"] = y[s:s + batch_size]
            try:
                model.generate(chunk, net=net)
            except _Captured:
                pass
    finally:
        handle.remove()
    return torch.cat(store)


@torch.no_grad()
def pca_directions(model, k: int = 6, n_samples: int = 2000, seed: int = 0, space: str = "activation",
                   layer: str | None = None, class_: int | str | None = None, ema: bool | None = None,
                   batch_size: int = 256) -> PCADirections:
    """Latent directions of the largest variations of G (GANSpace, Harkonen et al. 2020).

    PCA of random latents themselves is meaningless (z ~ N(0, I) is isotropic), so, as GANSpace does
    for BigGAN: draw ``n_samples`` latents (``torch.randn(n_samples, nz, generator=manual_seed(seed))``),
    collect an intermediate representation y_j of each, compute the top ``k`` principal components of
    the y_j and their coordinates x_j, and transfer them to latent space by linear regression,
    U = argmin_U sum_j |U x_j - z_j|^2 (z and x centred): column i of U is the latent direction whose
    motion moves PC i (returned normalised to unit length; sign chosen so that the largest loading of
    the component is positive).

    ``space="activation"``: y = the flattened output of ``layer`` of G (default :func:`default_layer`:
    the first block's output). ``space="feature"``: y = the Fashion-MNIST classifier's 128 features of
    the generated images (directions of the largest variation of what the images look like).
    Conditional models: every sample has ``class_`` or a random class drawn from the same generator.
    """
    check_images(model)
    if space not in SPACES:
        raise GanforgeError(f"Unknown PCA space {space!r}; use activation or feature.")
    nz = model.nz
    if n_samples < 2:
        raise GanforgeError(f"PCA needs at least 2 samples, got {n_samples}.")
    if not 1 <= k <= min(nz, n_samples - 1):
        raise GanforgeError(f"The number of PCA components must be between 1 and {min(nz, n_samples - 1)} "
                            f"(the latent size {nz} and samples - 1), got {k}.")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, nz, generator=g)
    n_cls, cls = num_classes(model), model_class(model, class_)
    y = None
    if n_cls:
        y = (torch.full((n_samples,), cls, dtype=torch.int64) if cls is not None
             else torch.randint(n_cls, (n_samples,), generator=g))
    if space == "feature":
        extractor = fmnist_extractor(model)
        feats = [extractor(render(model, z[s:s + batch_size], None if y is None else y[s:s + batch_size], ema=ema,
                                  batch_size=batch_size))["features"].cpu() for s in range(0, n_samples, batch_size)]
        x = torch.cat(feats)
        layer = None
    else:
        net = model.generator(ema)
        layer = layer or default_layer(net)
        x = _layer_outputs(model, net, layer, z, y, batch_size)
    if x.shape[1] < k:
        raise GanforgeError(f"The {space} space has only {x.shape[1]} dimensions, fewer than {k} components.")
    directions, var = _principal_directions(z, x, k)
    return PCADirections(directions, var, space, layer, n_samples, seed)
