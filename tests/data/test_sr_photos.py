"""HR photos for super-resolution: splits, random crops with their bicubic LR inputs, held-out images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import sr_photos
from ganforge.data.sr_photos import SRPairs, held_out_images, mod_crop, photo_files, read_photos, split_files
from ganforge.errors import GanforgeError
from ganforge.metrics.sr import bicubic_downscale


def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 7 + yy * 3) % 256, (yy * 5) % 256, (xx * 11) % 256], -1)
    return (base + rng.integers(0, 20, (h, w, 3))).clip(0, 255).astype(np.uint8)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (h, w) in enumerate([(40, 52), (36, 36), (44, 40), (50, 38), (38, 60), (41, 43), (20, 20)]):
        Image.fromarray(photo(h, w, i)).save(folder / f"p{i}.png")
    return folder


def test_a_flat_folder_holds_out_every_fifth_photo_and_split_folders_are_used(photos, tmp_path):
    assert [p.name for p in photo_files(str(photos), None, "test")] == ["p4.png"]
    assert [p.name for p in photo_files(str(photos), None, "train")] == ["p0.png", "p1.png", "p2.png", "p3.png",
                                                                        "p5.png", "p6.png"]
    assert split_files([photos / "p0.png"], "test") == split_files([photos / "p0.png"], "train") == [photos / "p0.png"]
    split = tmp_path / "split"
    (split / "train").mkdir(parents=True)
    (split / "val").mkdir()
    Image.fromarray(photo(30, 30, 1)).save(split / "train" / "a.png")
    Image.fromarray(photo(30, 30, 2)).save(split / "val" / "b.png")
    assert [p.name for p in photo_files(str(split), None, "test")] == ["b.png"]


def test_unknown_sources_and_missing_packages_are_one_sentence(monkeypatch, tmp_path):
    with pytest.raises(GanforgeError, match=r"Unknown photo source 'nowhere'; give a folder of photos, mate-nature"):
        photo_files("nowhere", None, "train")
    monkeypatch.setattr(sr_photos, "MATE_NATURE", tmp_path / "absent")
    with pytest.raises(GanforgeError, match=r"install Debian's mate-backgrounds package \(make data"):
        photo_files("mate-nature", None, "train")


def test_skimage_photos_are_files_inside_the_package():
    files = photo_files("skimage-photos", None, "train") + photo_files("skimage-photos", None, "test")
    assert sorted(f.name for f in files) == sorted(sr_photos.SKIMAGE_PHOTOS)
    assert all(f.is_file() for f in files)
    assert [f.name for f in photo_files("skimage-photos", None, "test")] == ["rocket.jpg"]


def test_load_size_shrinks_only_larger_photos(photos):
    images, names = read_photos(str(photos), None, "train", load_size=38)
    sizes = dict(zip(names, [tuple(im.shape) for im in images], strict=True))
    assert sizes["p1"] == (3, 36, 36) and sizes["p6"] == (3, 20, 20)  # smaller: kept as they are
    assert sizes["p0"] == (3, 38, round(52 * 38 / 40))
    with pytest.raises(GanforgeError, match="load_size must be a positive number of pixels, got 0."):
        read_photos(str(photos), None, "train", load_size=0)


def test_crops_are_inside_the_photos_and_lr_is_the_protocols_bicubic(photos):
    images, names = read_photos(str(photos), None, "train")
    with pytest.warns(UserWarning, match="p6 \\(smaller than the 24-pixel crop\\)"):
        data = SRPairs(images, names, 24, 4, bicubic_downscale, flip=True, name="photos")
    assert len(data.images) == 5 and len(data) == 5 * 200 and data.image_size == 24 and data.channels == 3
    batch = data.items(torch.arange(10), torch.Generator().manual_seed(3))
    assert batch["A"].shape == (10, 3, 6, 6) and batch["B"].shape == (10, 3, 24, 24)
    assert batch["A"].dtype == batch["B"].dtype == torch.uint8
    again = data.items(torch.arange(10), torch.Generator().manual_seed(3))
    assert torch.equal(batch["B"], again["B"]) and torch.equal(batch["A"], again["A"])
    for k in range(10):
        hr = batch["B"][k].permute(1, 2, 0).numpy()
        assert np.array_equal(batch["A"][k].permute(1, 2, 0).numpy(), bicubic_downscale(hr, 4))
        source = data.images[k % 5].permute(1, 2, 0).numpy()
        found = any(np.array_equal(source[t:t + 24, s:s + 24], c) for c in (hr, hr[:, ::-1])
                    for t in range(source.shape[0] - 23) for s in range(source.shape[1] - 23))
        assert found, k
    with pytest.raises(GanforgeError, match="crop size 30 must be a multiple of the scale 4"):
        SRPairs(images, names, 30, 4, bicubic_downscale)
    with pytest.raises(GanforgeError, match="No photo of 'photos' is at least 64 pixels"), pytest.warns(UserWarning):
        SRPairs(images, names, 64, 4, bicubic_downscale, name="photos")


def test_held_out_images_are_whole_and_mod_cropped(photos):
    images, names = held_out_images(str(photos), None, "test", 4)
    assert names == ["p4"] and images[0].shape == (36, 60, 3)  # 38 x 60 cut to multiples of 4
    assert np.array_equal(images[0], photo(38, 60, 4)[:36, :60])
    assert mod_crop(np.zeros((10, 13, 3), np.uint8), 3).shape == (9, 12, 3)
