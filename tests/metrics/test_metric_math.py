"""Metric math against independent computations, closed forms and hand-worked examples (no networks)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.fid import fid_from_features, frechet_distance, gaussian_stats, load_stats, save_stats
from ganforge.metrics.isc import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.paired import l1, paired_metrics, psnr, ssim
from ganforge.metrics.prdc import density_coverage, prdc, precision_recall


def features(seed: int, n: int, d: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """Correlated Gaussian features [n, d]: white noise (from ``seed``) through a fixed linear map per d,
    scaled and shifted. Two seeds with the same d, scale and shift are independent draws of one distribution."""
    mix = np.random.default_rng(1000 + d).normal(size=(d, d)) / math.sqrt(d)
    return scale * np.random.default_rng(seed).normal(size=(n, d)) @ (np.eye(d) + mix) + shift


def fid_reference(x: np.ndarray, y: np.ndarray) -> float:
    """FID written out the pytorch-fid way: np.cov, scipy sqrtm of the product, real part of its trace."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


# ----------------------------------------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero():
    x = features(0, 500, 16)
    assert abs(fid_from_features(x, x)) < 1e-6
    assert abs(fid_from_features(x, x, method="sqrtm")) < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n, d", [(200, 8), (200, 64), (50, 64)])
def test_fid_matches_independent_sqrtm_computation(seed, n, d):
    x = features(seed, n, d)
    y = features(seed + 100, n, d, scale=1.3, shift=0.2)
    expected = fid_reference(x, y)
    if n <= d:  # near-singular covariances (rank 49 of 64): still exact, but the user is warned
        with pytest.warns(UserWarning, match=f"N={n} samples and D={d}"):
            mu1, s1 = gaussian_stats(x)
            mu2, s2 = gaussian_stats(y)
    else:
        mu1, s1 = gaussian_stats(x)
        mu2, s2 = gaussian_stats(y)
    eigh = frechet_distance(mu1, s1, mu2, s2, method="eigh")
    sqrtm = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
    assert eigh == pytest.approx(expected, rel=1e-6)
    assert sqrtm == pytest.approx(expected, rel=1e-6)
    assert eigh == pytest.approx(sqrtm, rel=1e-6)


def test_fid_with_one_singular_covariance_in_either_position():
    # the eigh method factors whichever covariance is positive definite: both orders must agree
    small, large = features(0, 40, 64), features(1, 300, 64, scale=1.2)
    with pytest.warns(UserWarning, match="N=40 samples and D=64"):
        mu_s, s_s = gaussian_stats(small)
    mu_l, s_l = gaussian_stats(large)
    expected = fid_reference(small, large)
    assert frechet_distance(mu_s, s_s, mu_l, s_l) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu_l, s_l, mu_s, s_s) == pytest.approx(expected, rel=1e-6)


def test_fid_closed_form_for_commuting_covariances():
    # sigma = Q diag(a) Q^T and Q diag(b) Q^T commute: FID = ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 2.0, 3.0, 4.0, 0.5]), np.array([4.0, 1.0, 0.5, 2.0, 0.5])
    mu1, mu2 = np.array([1.0, 0.0, -1.0, 0.5, 2.0]), np.zeros(5)
    expected = np.sum(mu1**2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    for method in ("eigh", "sqrtm"):
        assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-10)


def test_fid_closed_form_with_singular_covariances():
    # zero variances: Cholesky fails and the eigh square root takes over; sqrtm copes as well
    a, b = np.array([1.0, 0.0, 3.0, 0.0]), np.array([4.0, 1.0, 0.0, 0.0])
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # 1 + 1 + 3 + 0
    for method in ("eigh", "sqrtm"):
        assert frechet_distance(np.zeros(4), np.diag(a), np.zeros(4), np.diag(b), method=method) == pytest.approx(
            expected, rel=1e-12)


def test_sqrtm_method_retries_with_eps_when_the_square_root_fails(monkeypatch):
    calls = []

    def failing_once(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    real_sqrtm = scipy.linalg.sqrtm
    monkeypatch.setattr(scipy.linalg, "sqrtm", failing_once)
    x, y = features(0, 200, 8), features(1, 200, 8, scale=1.5)
    mu1, s1 = gaussian_stats(x)
    mu2, s2 = gaussian_stats(y)
    value = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(8)) @ (s2 + 1e-6 * np.eye(8)))
    assert value == pytest.approx(fid_reference(x, y), rel=1e-5)  # eps = 1e-6 moves the value very little


def test_fid_from_large_samples_recovers_the_closed_form():
    rng = np.random.default_rng(1)
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 0.5, 2.0])
    mu = np.array([1.0, 0.0, -1.0, 0.5])
    x = rng.normal(size=(40000, 4)) * np.sqrt(a)
    y = rng.normal(size=(40000, 4)) * np.sqrt(b) + mu
    expected = np.sum(mu**2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # 2.25 + 2.42...
    assert fid_from_features(x, y) == pytest.approx(expected, rel=0.02)


def test_translation_adds_squared_norm_of_the_shift():
    x = features(3, 300, 12)
    v = np.linspace(-1.0, 2.0, 12)
    assert fid_from_features(x, x + v) == pytest.approx(float(v @ v), rel=1e-9)
    y = features(4, 300, 12, scale=0.7)
    mu_x, mu_y = x.mean(0), y.mean(0)
    change = fid_from_features(x + v, y) - fid_from_features(x, y)
    assert change == pytest.approx(np.sum((mu_x + v - mu_y) ** 2) - np.sum((mu_x - mu_y) ** 2), rel=1e-9)


def test_fid_accepts_torch_tensors():
    x, y = features(5, 100, 6), features(6, 100, 6, shift=1.0)
    from_torch = fid_from_features(torch.from_numpy(x).float(), torch.from_numpy(y).float())
    assert from_torch == pytest.approx(fid_reference(x, y), rel=1e-5)  # float32 round trip


def test_fid_input_errors():
    with pytest.raises(GanforgeError, match="at least 2 samples per set.*N=1"):
        gaussian_stats(np.zeros((1, 4)))
    with pytest.warns(UserWarning, match="N=10 samples and D=20.*unreliable"):
        gaussian_stats(features(0, 10, 20))
    bad = features(0, 50, 4)
    bad[3, 1] = np.nan
    with pytest.raises(GanforgeError, match="1 NaN or infinite values"):
        gaussian_stats(bad)
    with pytest.raises(GanforgeError, match="2-D array"):
        gaussian_stats(np.zeros(10))
    mu1, s1 = gaussian_stats(features(0, 50, 4))
    mu2, s2 = gaussian_stats(features(1, 50, 5))
    with pytest.raises(GanforgeError, match="D=4 and D=5"):
        frechet_distance(mu1, s1, mu2, s2)
    with pytest.raises(GanforgeError, match="unknown FID method 'svd'"):
        frechet_distance(mu1, s1, mu1, s1, method="svd")


def test_fid_stats_round_trip(tmp_path):
    mu, sigma = gaussian_stats(features(0, 100, 8))
    path = save_stats(tmp_path / "ref.npz", mu, sigma, extractor="lenet", n=100, resize="none")
    assert path == tmp_path / "ref.npz" and [p.name for p in tmp_path.iterdir()] == ["ref.npz"]  # no temporary
    mu2, sigma2, protocol = load_stats(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
    assert protocol == {"extractor": "lenet", "n": 100, "resize": "none"}
    np.savez(tmp_path / "pytorch_fid.npz", mu=mu, sigma=sigma)  # the pytorch-fid layout, no protocol
    assert load_stats(tmp_path / "pytorch_fid.npz")[2] == {}


def test_fid_stats_file_errors(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        load_stats(tmp_path / "missing.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(GanforgeError, match="not a readable .npz"):
        load_stats(tmp_path / "corrupt.npz")
    np.savez(tmp_path / "no_sigma.npz", mu=np.zeros(3))
    with pytest.raises(GanforgeError, match=r"lacks the key\(s\) \['sigma'\]"):
        load_stats(tmp_path / "no_sigma.npz")
    np.savez(tmp_path / "pickled.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(1))
    with pytest.raises(GanforgeError, match="not a readable .npz"):
        load_stats(tmp_path / "pickled.npz")
    np.savez(tmp_path / "shapes.npz", mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(GanforgeError, match=r"mu \(3,\) and sigma \(4, 4\)"):
        load_stats(tmp_path / "shapes.npz")
    with pytest.raises(GanforgeError, match="JSON-serialisable"):
        save_stats(tmp_path / "x.npz", np.zeros(2), np.eye(2), extractor=object())


# ----------------------------------------------------------------------------------------------- KID


def poly(u: np.ndarray, v: np.ndarray, d: int) -> float:
    return (float(np.dot(u, v)) / d + 1.0) ** 3


def test_kid_matches_pairwise_sums_written_out():
    m, d = 30, 6
    x, y = features(0, m, d), features(1, m, d, shift=0.3)
    xx = sum(poly(x[i], x[j], d) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(poly(y[i], y[j], d) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(poly(x[i], y[j], d) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=1000)  # every subset is the whole set
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_unbiased_where_the_v_statistic_is_not():
    m, d, draws = 50, 8, 300
    unbiased, biased = [], []
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(kernel_inception_distance(x, y, subsets=1, subset_size=m)[0])
        k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    stderr = np.std(unbiased) / math.sqrt(draws)
    assert abs(np.mean(unbiased)) < 3 * stderr
    assert np.mean(biased) > 30 * stderr  # the diagonal terms push the V-statistic up by O(1/m)


def test_kid_of_same_distribution_is_near_zero_and_of_shifted_one_is_positive():
    x, y = features(0, 500, 8), features(1, 500, 8)
    mean, std = kernel_inception_distance(x, y, subsets=50, subset_size=100)
    assert abs(mean) < 3 * std / math.sqrt(50) + 1e-3
    shifted_mean, shifted_std = kernel_inception_distance(x, y + 0.5, subsets=50, subset_size=100)
    assert shifted_mean > 10 * shifted_std / math.sqrt(50) and shifted_mean > 0.1
    again = kernel_inception_distance(x, y + 0.5, subsets=50, subset_size=100)
    assert again == (shifted_mean, shifted_std)  # seeded, deterministic


def test_kid_input_errors():
    with pytest.raises(GanforgeError, match="at least 2 samples.*m=1"):
        kernel_inception_distance(np.zeros((1, 4)), np.zeros((10, 4)))
    with pytest.raises(GanforgeError, match="D=4 and D=3"):
        kernel_inception_distance(np.zeros((10, 4)), np.zeros((10, 3)))


# ------------------------------------------------------------------------------------------------ IS


def test_inception_score_of_uniform_predictions_is_one():
    assert inception_score(np.zeros((100, 10)), splits=10) == pytest.approx((1.0, 0.0), abs=1e-12)
    assert inception_score(np.full((100, 10), 0.1), from_logits=False) == pytest.approx((1.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("k", [2, 10, 1000])
def test_inception_score_of_balanced_one_hot_predictions_is_the_class_count(k):
    probs = np.eye(k)[np.arange(10 * k) % k]  # each split of k rows holds every class once
    mean, std = inception_score(probs, splits=10, from_logits=False)
    assert mean == pytest.approx(k, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_from_logits_equals_from_probabilities():
    logits = np.random.default_rng(0).normal(scale=3.0, size=(200, 7))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    from_logits = inception_score(logits, splits=4)
    from_probs = inception_score(probs, splits=4, from_logits=False)
    assert from_logits == pytest.approx(from_probs, rel=1e-12)
    assert inception_score(torch.from_numpy(logits), splits=4) == pytest.approx(from_logits, rel=1e-12)
    # an independent computation of one split: exp(mean KL(p(y|x) || p(y)))
    marginal = probs.mean(0)
    kl = (probs * (np.log(probs) - np.log(marginal))).sum(1)
    assert inception_score(logits, splits=1)[0] == pytest.approx(np.exp(kl.mean()), rel=1e-12)
    # huge logits do not overflow: they act as one-hot predictions of the argmax class
    one_hot = np.eye(7)[logits.argmax(1)]
    assert inception_score(logits * 1e6, splits=4) == pytest.approx(inception_score(one_hot, 4, False), rel=1e-9)


def test_inception_score_splits_std():
    logits = np.random.default_rng(1).normal(size=(50, 5))
    tiled = np.tile(logits, (4, 1))  # four identical splits
    mean, std = inception_score(tiled, splits=4)
    assert std == pytest.approx(0.0, abs=1e-12)
    assert mean == pytest.approx(inception_score(logits, splits=1)[0], rel=1e-12)
    scores = [inception_score(part, splits=1)[0] for part in np.array_split(logits, 5)]
    assert inception_score(logits, splits=5) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-12)


def test_inception_score_input_errors():
    with pytest.raises(GanforgeError, match="N=5 samples for splits=10"):
        inception_score(np.zeros((5, 3)))
    with pytest.raises(GanforgeError, match="sum to 1"):
        inception_score(np.ones((20, 3)), splits=2, from_logits=False)
    with pytest.raises(GanforgeError, match="non-negative"):
        inception_score(-np.ones((20, 3)), splits=2, from_logits=False)


# ---------------------------------------------------------------------------------------------- PRDC


def test_prdc_hand_computed_1d_example():
    # k = 1. Real 0, 1, 2, 10, 11: every NN radius is 1, balls [-1, 1] [0, 2] [1, 3] [9, 11] [10, 12].
    # Fake 0.5, 3, 5, 6: NN radii 2.5, 2, 1, 1, balls [-2, 3] [1, 5] [4, 6] [5, 7].
    real = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    fake = np.array([[0.5], [3.0], [5.0], [6.0]])
    # precision: 0.5 and 3 (on the closed boundary of [1, 3]) are in; 5 and 6 are not -> 2/4
    # recall: reals 0, 1, 2 lie in fake balls, 10 and 11 do not -> 3/5
    assert precision_recall(real, fake, k=1) == (0.5, 0.6)
    # density (open balls): 0.5 lies in (-1, 1) and (0, 2); 3 is not inside (1, 3) -> 2 / (k M) = 2/4
    # coverage: balls of 0 and 1 contain a fake, the others do not -> 2/5
    assert density_coverage(real, fake, k=1) == (0.5, 0.4)
    assert prdc(real, fake, k_pr=1, k_dc=1) == {"precision": 0.5, "recall": 0.6, "density": 0.5, "coverage": 0.4}


def test_prdc_of_identical_sets():
    # Every fake copy lies in its own ball; with open balls for density each real ball holds itself plus its
    # k-1 nearest neighbours, k M memberships in all, so density is exactly 1 (no distance ties here).
    x = features(0, 300, 5)
    assert prdc(x, x) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_prdc_of_far_away_fakes_is_zero():
    x = features(0, 200, 5)
    assert prdc(x, x + 1000.0) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_density_and_coverage_expectations_for_one_distribution():
    # Naeem et al. 2020: E[density] = 1 and E[coverage] = 1 - prod_{i=1..k} (N - i) / (N + M - i).
    n, k = 1000, 5
    values = [density_coverage(features(s, n, 4), features(s + 50, n, 4), k=k) for s in range(5)]
    density, coverage = np.mean(values, axis=0)
    expected_coverage = 1 - np.prod([(n - i) / (2 * n - i) for i in range(1, k + 1)])
    assert density == pytest.approx(1.0, abs=0.05)
    assert coverage == pytest.approx(expected_coverage, abs=0.015)


def test_prdc_is_independent_of_chunk_size_and_input_type():
    real, fake = features(0, 257, 6), features(1, 190, 6, scale=1.2, shift=0.3)
    whole = prdc(real, fake, chunk_size=10_000)
    assert prdc(real, fake, chunk_size=7) == whole
    assert prdc(torch.from_numpy(real), torch.from_numpy(fake), chunk_size=64) == whole
    assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1 and 0 < whole["coverage"] < 1


def test_prdc_input_errors():
    with pytest.raises(GanforgeError, match="k=3 needs more than k samples in each set.*N=3 real and M=10"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))
    with pytest.raises(GanforgeError, match=r"D=2 \(real\) and D=3 \(fake\)"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))


# -------------------------------------------------------------------------------------------- paired


def random_images(seed: int, shape=(3, 2, 24, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_l1_and_psnr_of_a_constant_offset():
    a = np.random.default_rng(0).integers(0, 246, size=(4, 3, 16, 16), dtype=np.uint8)
    b = a + np.uint8(10)
    np.testing.assert_allclose(l1(a, b), 10.0)
    np.testing.assert_allclose(psnr(a, b), 20 * math.log10(255 / 10), rtol=1e-12)
    np.testing.assert_allclose(psnr(a / 127.5 - 1, b / 127.5 - 1, data_range=2.0), 20 * math.log10(255 / 10))
    assert np.all(psnr(a, a) == np.inf)  # documented: identical images have MSE 0 and infinite PSNR


def test_paired_metrics_do_not_wrap_uint8():
    a, b = np.zeros((1, 1, 12, 12), np.uint8), np.full((1, 1, 12, 12), 255, np.uint8)
    assert l1(a, b)[0] == 255.0 and l1(b, a)[0] == 255.0
    assert psnr(a, b)[0] == pytest.approx(0.0, abs=1e-12)


def ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float = 255) -> np.ndarray:
    """skimage's recipe written with scipy.ndimage: Gaussian filter (truncate 3.5), crop 5 px, mean."""
    out = np.zeros(a.shape[:2])
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    for n, c in np.ndindex(*a.shape[:2]):
        x, y = a[n, c].astype(np.float64), b[n, c].astype(np.float64)
        f = lambda z: scipy.ndimage.gaussian_filter(z, sigma=1.5, truncate=3.5)  # noqa: E731
        ux, uy = f(x), f(y)
        vx, vy, vxy = f(x * x) - ux * ux, f(y * y) - uy * uy, f(x * y) - ux * uy
        s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        out[n, c] = s[5:-5, 5:-5].mean()
    return out.mean(axis=1)


def test_ssim_matches_skimage_recipe():
    a = random_images(0)
    b = np.clip(a.astype(int) + np.random.default_rng(1).integers(-40, 41, size=a.shape), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(ssim(a, b), ssim_reference(a, b), rtol=1e-10)
    np.testing.assert_allclose(ssim(torch.from_numpy(a), torch.from_numpy(b)), ssim(a, b), rtol=1e-12)


def test_ssim_properties():
    a = random_images(2, (2, 3, 32, 32))
    np.testing.assert_allclose(ssim(a, a), 1.0, rtol=1e-12)
    rng = np.random.default_rng(3)
    values = []
    for noise in (5, 20, 60):
        b = np.clip(a + rng.normal(scale=noise, size=a.shape), 0, 255)
        np.testing.assert_allclose(ssim(a, b), ssim(b, a), rtol=1e-12)
        values.append(ssim(a, b).mean())
    assert values[0] < 1 and values[0] > values[1] > values[2]


@pytest.mark.parametrize("size", [16, 8, 1])
def test_ssim_of_constant_images(size):
    # variances and covariance are 0, so the structure term is C2 / C2 = 1 and only luminance is left
    va, vb, c1 = 100.0, 140.0, (0.01 * 255) ** 2
    a, b = np.full((1, 3, size, size), va), np.full((1, 3, size, size), vb)
    assert ssim(a, b)[0] == pytest.approx((2 * va * vb + c1) / (va**2 + vb**2 + c1), rel=1e-9)


def test_ssim_small_images_use_a_smaller_window():
    a = random_images(4, (2, 1, 8, 9))  # window shrinks to 7 x 7: 2 x 3 valid positions
    b = random_images(5, (2, 1, 8, 9))
    np.testing.assert_allclose(ssim(a, a), 1.0, rtol=1e-12)
    w = np.exp(-((np.arange(7) - 3.0) ** 2) / (2 * 1.5**2))
    w2 = np.outer(w, w) / np.outer(w, w).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected = []
    for n in range(2):
        x, y = a[n, 0].astype(float), b[n, 0].astype(float)
        vals = []
        for i, j in itertools.product(range(2), range(3)):
            px, py = x[i:i + 7, j:j + 7], y[i:i + 7, j:j + 7]
            ux, uy = (w2 * px).sum(), (w2 * py).sum()
            vx, vy = (w2 * px * px).sum() - ux**2, (w2 * py * py).sum() - uy**2
            cxy = (w2 * px * py).sum() - ux * uy
            vals.append((2 * ux * uy + c1) * (2 * cxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2)))
        expected.append(np.mean(vals))
    np.testing.assert_allclose(ssim(a, b), expected, rtol=1e-10)


def test_paired_metrics_means_and_errors():
    a, b = random_images(6), random_images(7)
    result = paired_metrics(a, b)
    assert result == pytest.approx({"l1": l1(a, b).mean(), "psnr": psnr(a, b).mean(), "ssim": ssim(a, b).mean()})
    with pytest.raises(GanforgeError, match=r"same shape, got \(3, 2, 24, 20\) and \(3, 2, 24, 21\)"):
        ssim(a, np.zeros((3, 2, 24, 21)))
    with pytest.raises(GanforgeError, match=r"\[N, C, H, W\]"):
        psnr(a[0], b[0])
    with pytest.raises(GanforgeError, match="NaN"):
        l1(a, np.full(a.shape, np.nan))
