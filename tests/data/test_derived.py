"""Derived pairs: edges, gray, low resolution, inpainting, noise; the fashion and photos sources; derive=."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from ganforge.data import derived
from ganforge.data.derived import (
    DERIVATIONS,
    PHOTOS_TEST,
    PHOTOS_TRAIN,
    edges,
    grayscale,
    inpaint_masks,
    lowres,
    masked,
    noisy,
    photo_crops,
)
from ganforge.data.idx import read_idx
from ganforge.data.paired import PAIRED_DATASETS, load_paired
from ganforge.errors import GanforgeError


def _noise(n=6, c=3, h=20, w=24, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8))


def _square_image(n=1, size=24, c=1):
    x = torch.zeros(n, c, size, size, dtype=torch.uint8)
    x[:, :, 6:18, 6:18] = 200
    return x


# ----------------------------------------------------------------------------------------------------
# the derivations


def test_canny_edges_are_black_on_white_and_deterministic():
    x = _square_image(2, c=3)
    e = edges(x)
    assert e.dtype == torch.uint8 and tuple(e.shape) == (2, 1, 24, 24)
    assert set(e.unique().tolist()) == {0, 255}
    dark = (e[0, 0] == 0).nonzero()
    assert 4 <= dark[:, 0].min() and dark[:, 0].max() <= 19  # the edges follow the square's outline
    assert (e[0, 0, 10:14, 10:14] == 255).all() and (e[0, 0, :3] == 255).all()
    assert torch.equal(e, edges(x.clone()))
    assert isinstance(edges(x.numpy()), np.ndarray)


@pytest.mark.parametrize("method", ["canny", "soft"])
def test_edges_of_a_flat_image_are_empty(method):
    flat = torch.full((2, 3, 16, 16), 140, dtype=torch.uint8)
    assert (edges(flat, method) == 255).all()


def test_soft_edges_match_an_independent_scipy_computation():
    x = _noise(4, 3, 20, 23)
    got = edges(x, "soft", sigma=1.0)
    assert got.dtype == torch.uint8 and tuple(got.shape) == (4, 1, 20, 23)
    w = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    w /= w.sum()
    for i in range(4):
        luma = (x[i].double().numpy() * np.array([0.299, 0.587, 0.114])[:, None, None]).sum(0) / 255
        y = ndimage.correlate1d(ndimage.correlate1d(luma, w, axis=0, mode="nearest"), w, axis=1, mode="nearest")
        m = np.hypot(ndimage.sobel(y, axis=0, mode="nearest"), ndimage.sobel(y, axis=1, mode="nearest"))
        expected = np.rint(255 * (1 - m / m.max()))
        assert np.abs(expected - got[i, 0].numpy()).max() <= 1
    with pytest.raises(GanforgeError, match="Unknown edge method 'hed'"):
        edges(x, "hed")


def test_grayscale_is_rec601_luma():
    x = _noise(3, 3, 5, 7)
    g = grayscale(x)
    expected = torch.round(0.299 * x[:, 0].double() + 0.587 * x[:, 1].double() + 0.114 * x[:, 2].double())
    assert g.dtype == torch.uint8 and tuple(g.shape) == (3, 1, 5, 7)
    assert (g[:, 0].double() - expected).abs().max() <= 1  # float32 weights may round the other way at .5
    one = _noise(2, 1, 5, 7)
    assert torch.equal(grayscale(one), one)


def test_lowres_keeps_size_and_constants():
    const = torch.full((2, 3, 16, 12), 77, dtype=torch.uint8)
    for factor in (2, 4):
        assert torch.equal(lowres(const, factor), const)
    x = _noise(2, 3, 16, 16)
    low = lowres(x, 4)
    assert low.dtype == torch.uint8 and low.shape == x.shape
    assert low.float().std() < x.float().std() / 2  # detail is gone
    blocks = x[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3)  # constant on 2x2 blocks
    assert torch.equal(lowres(blocks, 2, upsample="nearest"), blocks)
    means = x.float().view(2, 3, 4, 4, 4, 4).mean((3, 5)).round().to(torch.uint8)
    assert torch.equal(lowres(x, 4, upsample="nearest")[:, :, ::4, ::4], means)
    with pytest.raises(GanforgeError, match="factor must be 2 or 4, not 3"):
        lowres(x, 3)


def test_inpaint_masks_are_constant_and_the_rest_is_untouched():
    x = _noise(8, 3, 32, 32)
    a = masked(x, seed=0)
    mask = inpaint_masks(8, 32, 32, seed=0)
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert (a[mask.expand_as(a)] == 127).all()
    assert torch.equal(a[~mask.expand_as(a)], x[~mask.expand_as(x)])
    covered = mask.float().mean((1, 2, 3))
    assert (covered > 0).all() and (covered < 0.75).all()
    assert torch.equal(masked(x, seed=0), a)
    assert torch.equal(masked(x[5:7], seed=0, start=5), a[5:7])  # each image's rectangles depend on its index only
    assert not torch.equal(inpaint_masks(8, 32, 32, seed=1), mask)


def _mid_gray(n: int, c: int, size: int) -> torch.Tensor:
    """uint8 images in 90..165 (different per image), far enough from 0 and 255 that noise of sigma 25
    is almost never clipped."""
    return torch.from_numpy(np.random.default_rng(7).integers(90, 166, (n, c, size, size), dtype=np.uint8))


@pytest.mark.parametrize("name, sigma", [("noise", 25.0), ("noise15", 15.0), ("noise50", 50.0)])
def test_noise_has_the_named_sigma_and_no_bias(name, sigma):
    x = _mid_gray(8, 3, 32)
    a = derived.derive(name, x)
    assert a.dtype == torch.uint8 and a.shape == x.shape
    diff = a.double() - x.double()
    clipped = ((a == 0) | (a == 255)).double().mean().item()
    assert clipped < (0.01 if sigma < 50 else 0.2)
    if sigma < 50:  # unclipped: the sample std of 24576 draws is within 3% of sigma (rounding adds 1/12 variance)
        assert abs(diff.std().item() - math.sqrt(sigma**2 + 1 / 12)) < 0.03 * sigma
        assert abs(diff.mean().item()) < 0.05 * sigma
    assert 0.8 * sigma < diff.std().item() < 1.02 * sigma


def test_noise_is_drawn_from_the_seed_and_the_image_content():
    x = _mid_gray(6, 1, 16)
    a = noisy(x, 25.0)
    pixels = x.numpy()
    for i in range(6):  # the documented recipe, written out
        h = int.from_bytes(hashlib.blake2b(pixels[i].tobytes(), digest_size=8).digest(), "little")
        expected = np.clip(np.rint(pixels[i] + np.float32(25) * np.random.default_rng((0, h)).standard_normal(
            pixels.shape[1:], dtype=np.float32)), 0, 255)
        np.testing.assert_array_equal(a[i].numpy(), expected)
    assert torch.equal(noisy(x[3:5], 25.0), a[3:5])  # the same noise whatever the batch or position
    assert torch.equal(noisy(x.flip(0), 25.0), a.flip(0))
    assert not torch.equal(noisy(x, 25.0, seed=1), a)
    noise = a.double() - x.double()
    assert not torch.equal(noise[0], noise[1])  # different images, different noise
    assert torch.equal(noisy(x, 0.0), x)
    assert isinstance(noisy(x.numpy(), 25.0), np.ndarray)
    with pytest.raises(GanforgeError, match=r"The noise sigma must be >= 0 pixel levels \(25 in the denoising "
                                            r"papers\), got -1"):
        noisy(x, -1)


def test_derivation_registry():
    assert DERIVATIONS.names() == ["edges", "gray2color", "inpaint", "lowres2", "lowres4", "noise", "noise15",
                                   "noise50", "softedges"]
    x = _noise(3, 3, 16, 16)
    for name in DERIVATIONS:
        a = derived.derive(name, x)
        assert a.dtype == torch.uint8 and a.shape[0] == 3 and a.shape[-2:] == x.shape[-2:]
        assert derived.derive(name, x.clone()) is a  # memoised by content
    with pytest.raises(GanforgeError, match="gray2color needs colour"):
        derived.derive("gray2color", x[:, :1])
    with pytest.raises(GanforgeError, match="Unknown derivation 'blur'; choose one of: edges, gray2color"):
        derived.derive("blur", x)


# ----------------------------------------------------------------------------------------------------
# sources


def test_registered_names():
    names = set(PAIRED_DATASETS.names())
    for derivation in DERIVATIONS:
        assert f"{derivation}-photos" in names
        assert (f"{derivation}-fashion" in names) == (derivation != "gray2color")
    assert {"edges2fashion", "softedges2fashion", "edges2photos", "softedges2photos"} <= names


def test_edges2fashion_pads_to_32(idx_root):
    data = load_paired("edges2fashion", root=str(idx_root), flip=False)
    raw = torch.from_numpy(read_idx(next(idx_root.glob("train-images*"))).copy())
    assert data.name == "edges2fashion" and len(data) == raw.shape[0] == 256
    assert tuple(data.B.shape) == (256, 1, 32, 32) and tuple(data.A.shape) == (256, 1, 32, 32)
    assert (data.image_size, data.load_size) == (32, 32)
    assert torch.equal(data.B[:, 0, 2:30, 2:30], raw)
    assert (data.B[:, :, :2] == 0).all() and (data.B[:, :, :, 30:] == 0).all()
    assert torch.equal(data.A, edges(data.B))
    assert data.names[:2] == ["train-00000", "train-00001"]
    test = load_paired("edges2fashion", root=str(idx_root), split="test", flip=False)
    assert len(test) == 64


def test_fashion_training_size_keeps_the_garment_scale(idx_root):
    data = load_paired("inpaint-fashion", root=str(idx_root))  # flip: stored 36, crops 32
    assert (data.load_size, data.crop_size) == (36, 32)
    raw = torch.from_numpy(read_idx(next(idx_root.glob("train-images*"))).copy())
    assert torch.equal(data.B[:, 0, 4:32, 4:32], raw)  # 28x28 garment, only the border grew
    mask = data.A != data.B
    assert mask.any() and (data.A[mask] == 127).all()
    out = data.items(torch.arange(8), torch.Generator().manual_seed(0))
    assert tuple(out["A"].shape) == (8, 1, 32, 32)
    with pytest.raises(GanforgeError, match="splits train and test, not 'val'"):
        load_paired("edges2fashion", root=str(idx_root), split="val")


def test_photo_crops_are_deterministic_and_held_out_by_photo():
    train, train_names = photo_crops("train", size=32, per_photo=3)
    test, test_names = photo_crops("test", size=32, per_photo=3)
    assert train.dtype == torch.uint8 and tuple(train.shape) == (3 * len(PHOTOS_TRAIN), 3, 32, 32)
    assert tuple(test.shape) == (3 * len(PHOTOS_TEST), 3, 32, 32)
    assert {n.rsplit("-", 1)[0] for n in train_names} == set(PHOTOS_TRAIN)
    assert {n.rsplit("-", 1)[0] for n in test_names} == set(PHOTOS_TEST)
    assert not set(PHOTOS_TRAIN) & set(PHOTOS_TEST)
    again, _ = photo_crops("train", size=32, per_photo=3)
    assert torch.equal(train, again)
    assert train.float().std() > 10  # real photo content, not a constant
    import skimage.data

    astronaut = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((128, 128), Image.Resampling.BICUBIC))
    crop = train[0].permute(1, 2, 0).numpy()  # astronaut (512x512) scaled to 4 x 32, then cropped
    found = any(np.array_equal(astronaut[t:t + 32, s:s + 32], crop) for t in range(97) for s in range(97))
    assert found


def test_gray2color_photos_pairs():
    data = load_paired("gray2color-photos", split="test", flip=False)
    assert (data.channels_A, data.channels_B, data.image_size, data.load_size) == (1, 3, 64, 64)
    assert len(data) == derived.PHOTO_CROPS * len(PHOTOS_TEST)
    assert data.names[0] == f"{PHOTOS_TEST[0]}-000"
    assert torch.equal(data.A, grayscale(data.B))


# ----------------------------------------------------------------------------------------------------
# derive= on image datasets and folders


def test_derive_from_a_registered_dataset(idx_root):
    data = load_paired("fashion-mnist", root=str(idx_root), derive="lowres2", load_size=28, crop_size=28, flip=False)
    raw = torch.from_numpy(read_idx(next(idx_root.glob("train-images*"))).copy())
    assert data.name == "lowres2-fashion-mnist"
    assert torch.equal(data.B[:, 0], raw) and torch.equal(data.A, lowres(data.B, 2))


def test_derive_noise_from_a_registered_dataset(idx_root):
    data = load_paired("fashion-mnist", root=str(idx_root), derive="noise", load_size=28, crop_size=28, flip=False)
    test = load_paired("fashion-mnist", root=str(idx_root), split="test", derive="noise", load_size=28,
                       crop_size=28, flip=False)
    assert data.name == "noise-fashion-mnist"
    assert torch.equal(data.A, noisy(data.B, 25.0)) and torch.equal(test.A, noisy(test.B, 25.0))
    again = load_paired("fashion-mnist", root=str(idx_root), split="test", derive="noise", load_size=28,
                        crop_size=28, flip=False)
    assert torch.equal(again.A, test.A)  # the held-out pairs are the same every time


def test_derive_from_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            image = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
            (tmp_path / split).mkdir(exist_ok=True)
            image.save(tmp_path / split / f"{i}.png")
    data = load_paired(str(tmp_path), derive="gray2color", load_size=16, crop_size=16, flip=False)
    assert data.names == ["0.png", "1.png", "2.png"] and tuple(data.B.shape) == (3, 3, 16, 16)
    assert torch.equal(data.A, grayscale(data.B))
    assert len(load_paired(str(tmp_path), split="test", derive="edges", flip=False)) == 2
    with pytest.raises(GanforgeError, match="has no val split; it has: train, test"):
        load_paired(str(tmp_path), split="val", derive="edges")


def test_derive_errors(tmp_path):
    with pytest.raises(GanforgeError, match="'facades' is already a paired dataset"):
        load_paired("facades", derive="edges")
    with pytest.raises(GanforgeError, match="Unknown derivation 'sketch'; choose one of"):
        load_paired("fashion-mnist", derive="sketch")
    with pytest.raises(GanforgeError, match="Unknown image dataset 'cifar' for derive="):
        load_paired("cifar", derive="edges")
