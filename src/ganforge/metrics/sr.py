"""The super-resolution evaluation protocol: PSNR and SSIM on the Y channel with the border shaved, and
the bicubic resampling that makes LR inputs and the bicubic baseline.

Images are single uint8 arrays [H, W, C] (C = 3 colour, C = 1 gray) or [H, W] gray, as they leave the
library. The protocol of the SR papers (SRCNN, EDSR, SRGAN; Ledig et al. 2017, section 4.1):

1. Y of ITU-R BT.601 YCbCr as MATLAB's ``rgb2ycbcr``: Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B
   in [0, 1], so Y lies in [16, 235]. The three weights are 219 x the luma weights ``LUMA`` (0.299, 0.587,
   0.114), so this is Y = 16 + (219 / 255) x luma with luma in 0..255; a gray image's Y is its value mapped
   the same way. Y is kept as float64 without rounding, as BasicSR's ``to_y_channel`` does; MATLAB's
   ``rgb2ycbcr`` on uint8 rounds Y to integers, which moved PSNR by 0.01 to 0.02 dB and SSIM by about
   0.001 on the test images (bicubic x2 / x4 and noise on a photo crop).
2. ``shave`` pixels removed from each of the four borders (the scale factor, by convention: the border
   pixels of an upscaled image depend on how the resampler pads).
3. PSNR = 10 log10(255^2 / MSE) with peak 255 (as the SR papers use, although Y spans only 16..235);
   identical images have MSE 0 and give ``inf`` (returned, not replaced by a cap: a mean over images
   that includes one is then inf too, which says plainly that a pair was identical).
   SSIM (Wang et al. 2004): 11 x 11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 255, the
   SSIM map averaged over the positions where the whole window fits, i.e. scikit-image's
   ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
   data_range=255)``; identical images give exactly 1.0. Both reuse :mod:`ganforge.metrics.paired`.
   A shaved Y image smaller than 11 pixels gets paired's smaller odd window (not comparable with
   published values).

Resampling is PIL's ``Image.resize`` with ``BICUBIC`` (the Keys cubic, a = -0.5, widened by the scale
factor when shrinking, i.e. antialiased, like MATLAB's ``imresize``). MATLAB's ``imresize``, which made
the published LR images and bicubic numbers, uses the same kernel but pads by mirroring the border and
computes in double precision, where PIL renormalises the kernel over the pixels inside the image and
uses fixed-point weights: the outermost pixels differ most (the shave removes most of them), and
bicubic numbers computed here are close to the published ones, not identical.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..data import LUMA
from ..errors import GanforgeError
from .paired import psnr, ssim

Y_OFFSET = 16.0
Y_SPAN = 219.0  # Y spans 16..235


def _as_image(image: np.ndarray, what: str) -> np.ndarray:
    """uint8 [H, W], [H, W, 1] or [H, W, 3] -> uint8 [H, W, C]; a GanforgeError otherwise."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3) or 0 in image.shape:
        raise GanforgeError(f"{what} must be a uint8 image [H, W, 3], [H, W, 1] or [H, W], got {image.dtype} "
                            f"{tuple(image.shape)}.")
    return image


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr (MATLAB's rgb2ycbcr) of a uint8 image [H, W, 3] / [H, W, 1] / [H, W] -> float64
    [H, W] in [16, 235], unrounded (see the module docstring)."""
    x = _as_image(image, "The image").astype(np.float64)
    luma = x[:, :, 0] if x.shape[2] == 1 else x @ np.asarray(LUMA, dtype=np.float64)
    return Y_OFFSET + (Y_SPAN / 255.0) * luma


def _shaved_y_pair(output: np.ndarray, target: np.ndarray, shave: int) -> tuple[np.ndarray, np.ndarray]:
    """Y of both images with ``shave`` border pixels removed, as float64 [1, 1, H - 2 shave, W - 2 shave]."""
    a, b = _as_image(output, "The output"), _as_image(target, "The target")
    if a.shape != b.shape:
        raise GanforgeError(f"The output {tuple(a.shape)} and the target {tuple(b.shape)} must have the same "
                            f"shape [H, W, C] to be compared.")
    if isinstance(shave, bool) or not isinstance(shave, int | np.integer) or shave < 0:
        raise GanforgeError(f"shave must be a whole number of border pixels >= 0 (the scale factor, by "
                            f"convention), got {shave!r}.")
    h, w = a.shape[:2]
    if 2 * shave >= min(h, w):
        raise GanforgeError(f"shave={shave} removes the whole {h}x{w} image; it must be below "
                            f"{(min(h, w) + 1) // 2} for this size.")
    crop = (slice(shave, h - shave), slice(shave, w - shave))
    return rgb_to_y(a)[crop][None, None], rgb_to_y(b)[crop][None, None]


def psnr_y(output: np.ndarray, target: np.ndarray, shave: int) -> float:
    """PSNR in dB (peak 255) between the Y channels of two uint8 images [H, W, C] of the same shape, with
    ``shave`` pixels removed from each border; ``inf`` for identical Y."""
    a, b = _shaved_y_pair(output, target, shave)
    return float(psnr(a, b, data_range=255)[0])


def ssim_y(output: np.ndarray, target: np.ndarray, shave: int) -> float:
    """SSIM (Gaussian window 11, sigma 1.5, data range 255) between the Y channels of two uint8 images
    [H, W, C] of the same shape, with ``shave`` pixels removed from each border; 1.0 for identical Y."""
    a, b = _shaved_y_pair(output, target, shave)
    return float(ssim(a, b, data_range=255)[0])


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
        raise GanforgeError(f"The scale must be a whole number >= 1 (2, 3 or 4 in the SR papers), got {scale!r}.")
    return int(scale)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """PIL bicubic resize of uint8 [H, W, C] (C = 1 or 3) -> uint8 [height, width, C]."""
    if image.shape[2] == 1:
        out = Image.fromarray(image[:, :, 0]).resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(out)[:, :, None]
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [h, w, C] -> uint8 [h * scale, w * scale, C] by PIL bicubic (the SR baseline; see the module
    docstring for how it differs from MATLAB's imresize). [h, w] gray comes back as [H, W, 1]."""
    scale = _check_scale(scale)
    x = _as_image(image, "The image to upscale")
    return _resize(x, x.shape[1] * scale, x.shape[0] * scale)


def bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [H / scale, W / scale, C] by PIL bicubic (antialiased): the LR input of the
    SR protocol. H and W must be multiples of ``scale`` (crop the HR image first, as the papers' "modcrop"
    does), so that upscaling the result returns to the HR size."""
    scale = _check_scale(scale)
    x = _as_image(image, "The image to downscale")
    h, w = x.shape[:2]
    if h % scale or w % scale:
        raise GanforgeError(f"A {h}x{w} image cannot be downscaled x{scale} exactly; crop it to "
                            f"{h - h % scale}x{w - w % scale} first (image[:{h - h % scale}, :{w - w % scale}]).")
    return _resize(x, w // scale, h // scale)
