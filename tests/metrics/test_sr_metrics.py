"""The super-resolution protocol (ganforge.metrics.sr) against scikit-image, hand-worked values and a numpy
bicubic written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganforge.errors import GanforgeError
from ganforge.metrics.sr import bicubic_downscale, bicubic_upscale, psnr_y, rgb_to_y, ssim_y


def photo(size: int = 96) -> np.ndarray:
    """A real photo crop, uint8 [size, size, 3] (the astronaut's face and the flag behind her)."""
    return np.ascontiguousarray(skimage.data.astronaut()[60:60 + 2 * size:2, 150:150 + 2 * size:2])


def y_reference(image: np.ndarray) -> np.ndarray:
    """MATLAB's rgb2ycbcr Y written out with its published coefficients, float64 [H, W]."""
    rgb = image.astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(output, target) pairs: bicubic x2 and x4 reconstructions of the photo, and the photo plus noise."""
    hr = photo()
    noisy = np.clip(hr + np.random.default_rng(0).normal(0, 12, hr.shape), 0, 255).round().astype(np.uint8)
    return [(bicubic_upscale(bicubic_downscale(hr, 2), 2), hr),
            (bicubic_upscale(bicubic_downscale(hr, 4), 4), hr),
            (noisy, hr)]


# ------------------------------------------------------------------------------------------------- Y


def test_rgb_to_y_known_values():
    colours = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(colours)[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966],
                               atol=1e-9)
    image = photo(32)
    np.testing.assert_allclose(rgb_to_y(image), y_reference(image), atol=1e-9)
    assert rgb_to_y(image).dtype == np.float64 and rgb_to_y(image).shape == (32, 32)


def test_rgb_to_y_of_gray_maps_the_value_like_equal_rgb():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = 16.0 + 219.0 * gray / 255.0
    np.testing.assert_allclose(rgb_to_y(gray), expected, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(gray[:, :, None]), expected, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(np.repeat(gray[:, :, None], 3, axis=2)), expected, atol=1e-9)


# ---------------------------------------------------------------------------------- PSNR / SSIM on Y


@pytest.mark.parametrize("shave", [0, 2, 4])
def test_psnr_and_ssim_match_scikit_image_on_the_same_y(shave):
    for output, target in pairs():
        h, w = target.shape[:2]
        a = y_reference(output)[shave:h - shave, shave:w - shave]
        b = y_reference(target)[shave:h - shave, shave:w - shave]
        expected_psnr = peak_signal_noise_ratio(b, a, data_range=255)
        expected_ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                              data_range=255)
        assert psnr_y(output, target, shave) == pytest.approx(expected_psnr, abs=1e-9)
        assert ssim_y(output, target, shave) == pytest.approx(expected_ssim, abs=1e-9)


def test_psnr_by_hand_and_the_ordering_of_degradations():
    target = np.full((20, 20, 3), 100, dtype=np.uint8)
    output = target.copy()
    output[..., :] = 110  # Y differs by 219 / 255 * 10 everywhere
    assert psnr_y(output, target, 0) == pytest.approx(10 * math.log10(255**2 / (219 / 255 * 10) ** 2), abs=1e-9)
    x2, x4, _ = pairs()
    assert psnr_y(*x2, 2) > psnr_y(*x4, 4) > 20
    ssim2, ssim4 = ssim_y(*x2, 2), ssim_y(*x4, 4)
    assert ssim2 < 1 and ssim2 > ssim4 > 0.3


def test_identical_images_give_inf_and_one():
    image = photo(32)
    assert psnr_y(image, image, 0) == math.inf
    assert ssim_y(image, image, 4) == 1.0


def test_shave_removes_the_border_only():
    target = photo(48)
    output = target.copy()
    output[:3] = 255 - output[:3]  # damage the top three rows only
    assert psnr_y(output, target, 3) == math.inf
    assert ssim_y(output, target, 3) == pytest.approx(1.0, abs=1e-12)
    assert psnr_y(output, target, 2) < 40
    assert ssim_y(output, target, 2) < 1.0


def test_gray_and_colour_are_measured_alike():
    target = photo(32)
    output = np.clip(target.astype(int) + 9, 0, 255).astype(np.uint8)
    gray_t, gray_o = target[..., 1], output[..., 1]
    assert psnr_y(gray_o, gray_t, 1) == pytest.approx(psnr_y(np.stack([gray_o] * 3, 2), np.stack([gray_t] * 3, 2), 1),
                                                      abs=1e-9)


@pytest.mark.parametrize("call", [psnr_y, ssim_y])
def test_errors_are_one_sentence(call):
    image = photo(32)
    with pytest.raises(GanforgeError, match=r"The output \(32, 32, 3\) and the target \(16, 16, 3\) must have the "
                                            r"same shape"):
        call(image, image[:16, :16], 0)
    with pytest.raises(GanforgeError, match=r"shave=16 removes the whole 32x32 image; it must be below 16"):
        call(image, image, 16)
    with pytest.raises(GanforgeError, match=r"shave must be a whole number of border pixels >= 0"):
        call(image, image, -1)
    with pytest.raises(GanforgeError, match=r"The target must be a uint8 image \[H, W, 3\].*got float64"):
        call(image, image.astype(np.float64), 0)


# --------------------------------------------------------------------------------------------- bicubic


def keys(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """The Keys cubic convolution kernel (a = -0.5), as MATLAB's imresize and PIL's BICUBIC use it."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t < 1, near, np.where(t < 2, far, 0.0))


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of an antialiased bicubic resize, the kernel renormalised over the pixels inside
    the image (PIL's border rule)."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)  # shrinking widens the kernel (antialiasing)
    centres = (np.arange(n_out) + 0.5) * scale  # in input pixel units, pixel i spans [i, i + 1)
    weights = keys((np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / stretch)
    return weights / weights.sum(1, keepdims=True)


def bicubic_reference(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Rows first, stored as 8-bit (clipped, rounded), then columns, clipped: PIL's order of passes."""
    x = image.astype(np.float64)
    rows = np.einsum("pw,hwc->hpc", resample_matrix(x.shape[1], w), x).clip(0, 255).round()
    return np.einsum("oh,hpc->opc", resample_matrix(x.shape[0], h), rows).clip(0, 255)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_matches_a_numpy_keys_resize(scale):
    hr = photo(96)
    lr = bicubic_downscale(hr, scale)
    assert lr.shape == (96 // scale, 96 // scale, 3) and lr.dtype == np.uint8
    # within rounding: PIL's fixed-point weights and its rounding of the result
    assert np.abs(lr - bicubic_reference(hr, 96 // scale, 96 // scale)).max() <= 1
    up = bicubic_upscale(lr, scale)
    assert up.shape == hr.shape and up.dtype == np.uint8
    diff = np.abs(up - bicubic_reference(lr, 96, 96))
    assert diff.max() <= 1.5 and diff.mean() < 0.3  # an intermediate level rounded the other way, times the kernel gain


def test_bicubic_keeps_gray_and_constants():
    flat = np.full((12, 8, 1), 77, dtype=np.uint8)
    assert (bicubic_downscale(flat, 4) == 77).all() and bicubic_downscale(flat, 4).shape == (3, 2, 1)
    assert (bicubic_upscale(flat[..., 0], 3) == 77).all() and bicubic_upscale(flat[..., 0], 3).shape == (36, 24, 1)


def test_bicubic_errors_are_one_sentence():
    image = photo(30)
    with pytest.raises(GanforgeError, match=r"A 30x30 image cannot be downscaled x4 exactly; crop it to 28x28 first"):
        bicubic_downscale(image, 4)
    with pytest.raises(GanforgeError, match=r"The scale must be a whole number >= 1"):
        bicubic_upscale(image, 0)
    with pytest.raises(GanforgeError, match=r"The scale must be a whole number >= 1"):
        bicubic_upscale(image, 2.5)
    with pytest.raises(GanforgeError, match=r"The image to upscale must be a uint8 image"):
        bicubic_upscale(image[None], 2)
