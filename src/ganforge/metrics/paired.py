"""Paired image metrics for image-to-image tasks (pix2pix, super-resolution): L1, PSNR, SSIM.

Both inputs are image batches [N, C, H, W] of the same shape: uint8 in [0, 255] (the default
``data_range=255``) or floats (pass their range, e.g. 2.0 for [-1, 1]). Torch tensors are accepted.
Every function returns one value per image, float64 [N]; ``paired_metrics`` returns the means.

SSIM (Wang et al. 2004) follows skimage's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=R)``: local means, variances and covariance under an 11 x 11
Gaussian window (sigma 1.5, weights normalised to sum 1), constants C1 = (0.01 R)^2, C2 = (0.03 R)^2,

    SSIM map = (2 mu_a mu_b + C1) (2 cov_ab + C2) / ((mu_a^2 + mu_b^2 + C1) (var_a + var_b + C2)),

averaged over the 'valid' positions (where the whole window fits inside the image), then over channels.
Images smaller than 11 px use the largest odd window <= min(H, W) with the same sigma (skimage refuses
them), so SSIM of tiny images is defined but not comparable with values at the standard window.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _as_images(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    images = np.asarray(x, dtype=np.float64)
    if images.ndim != 4:
        raise GanforgeError(f"{what} must be an image batch [N, C, H, W], got shape {tuple(images.shape)}")
    if 0 in images.shape:
        raise GanforgeError(f"{what} must hold at least one image of at least 1 x 1 pixels, got shape "
                            f"{tuple(images.shape)}")
    if not np.isfinite(images).all():
        raise GanforgeError(f"{what} contain NaN or infinite pixel values")
    return images


def _pair(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_images(a, "first images"), _as_images(b, "second images")
    if a.shape != b.shape:
        raise GanforgeError(f"paired metrics compare images of the same shape, got {tuple(a.shape)} and "
                            f"{tuple(b.shape)}")
    return a, b


def _check_range(data_range: float) -> None:
    if not data_range > 0:
        raise GanforgeError(f"data_range must be the positive span of pixel values (255 for uint8, 2.0 for [-1, 1]), "
                            f"got {data_range}")


def l1(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mean absolute difference per image, in the inputs' units (0..255 for uint8) -> [N]."""
    a, b = _pair(a, b)
    return np.abs(a - b).mean(axis=(1, 2, 3))


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, data_range: float = 255) -> np.ndarray:
    """10 log10(data_range^2 / MSE) per image in dB -> [N]; identical images give inf (MSE = 0)."""
    a, b = _pair(a, b)
    _check_range(data_range)
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1-D Gaussian weights [size] centred on the middle tap, summing to 1 (the 2-D window is its outer product)."""
    offsets = np.arange(size) - (size - 1) / 2
    w = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted local sums of x [..., H, W] under the separable window w x w at 'valid' positions."""
    size = w.shape[0]
    h, wd = x.shape[-2] - size + 1, x.shape[-1] - size + 1
    rows = sum(w[t] * x[..., t:t + h, :] for t in range(size))
    return sum(w[t] * rows[..., :, t:t + wd] for t in range(size))


def ssim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, data_range: float = 255) -> np.ndarray:
    """Mean SSIM per image (valid positions, then channels) -> [N]; 1 for identical images."""
    a, b = _pair(a, b)
    _check_range(data_range)
    size = min(SSIM_WINDOW, *a.shape[-2:])
    size -= 1 - size % 2  # largest odd window that fits
    w = gaussian_window(size)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
    var_a = _filter_valid(a * a, w) - mu_a**2
    var_b = _filter_valid(b * b, w) - mu_b**2
    cov = _filter_valid(a * b, w) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(axis=(2, 3)).mean(axis=1)


def paired_metrics(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
                   data_range: float = 255) -> dict[str, float]:
    """Means over the batch: {"l1", "psnr" (inf if any pair is identical), "ssim"}."""
    return {"l1": float(l1(a, b).mean()), "psnr": float(psnr(a, b, data_range).mean()),
            "ssim": float(ssim(a, b, data_range).mean())}
