"""load_image_folder: layouts, image modes, channels, resizing, bad files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_dataset
from ganforge.data.folders import load_image_folder
from ganforge.data.paired import load_paired
from ganforge.errors import GanforgeError
from ganforge.io import skipped_message


def _save(path, mode="RGB", size=(8, 8), color=(10, 20, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_flat_folder_is_unlabelled(tmp_path):
    for name in ["b.png", "a.jpg", "c.bmp"]:
        _save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    _save(tmp_path / ".hidden.png")

    data = load_image_folder(tmp_path, image_size=8)

    assert data.images.dtype == torch.uint8
    assert tuple(data.images.shape) == (3, 3, 8, 8)
    assert data.labels is None
    assert data.class_names == []
    assert data.name == str(tmp_path)


def test_class_subfolders_give_sorted_labels(tmp_path):
    _save(tmp_path / "zebra" / "1.png", color=(200, 200, 200))
    _save(tmp_path / "ant" / "x.png", color=(0, 0, 0))
    _save(tmp_path / "ant" / "deeper" / "y.png", color=(0, 0, 0))
    _save(tmp_path / "Moth" / "m.PNG", color=(90, 90, 90))
    (tmp_path / "empty").mkdir()

    data = load_image_folder(tmp_path, image_size=8)

    assert data.class_names == ["Moth", "ant", "zebra"]
    assert data.labels.dtype == torch.int64
    assert data.labels.tolist() == [0, 1, 1, 2]
    assert data.images[:, 0, 0, 0].tolist() == [90, 0, 0, 200]


def test_loose_images_next_to_class_folders_are_an_error(tmp_path):
    _save(tmp_path / "cats" / "a.png")
    _save(tmp_path / "stray.png")

    with pytest.raises(GanforgeError, match="class folder"):
        load_image_folder(tmp_path, image_size=8)


def test_all_grayscale_gives_one_channel(tmp_path):
    _save(tmp_path / "a.png", mode="L", color=77)
    _save(tmp_path / "b.pgm", mode="L", color=5)
    _save(tmp_path / "c.png", mode="LA", color=(40, 255))

    data = load_image_folder(tmp_path, image_size=8)

    assert data.channels == 1
    assert data.images[:, 0, 0, 0].tolist() == [77, 5, 40]


def test_any_colour_image_gives_three_channels(tmp_path):
    _save(tmp_path / "a.png", mode="L", color=77)
    _save(tmp_path / "b.png", mode="RGB", color=(255, 0, 0))

    data = load_image_folder(tmp_path, image_size=8)

    assert data.channels == 3
    assert data.images[0, :, 0, 0].tolist() == [77, 77, 77]
    assert data.images[1, :, 0, 0].tolist() == [255, 0, 0]


def test_explicit_channels(tmp_path):
    _save(tmp_path / "a.png", mode="RGB", color=(255, 0, 0))
    _save(tmp_path / "b.png", mode="L", color=50)

    gray = load_image_folder(tmp_path, image_size=8, channels=1)
    rgb = load_image_folder(tmp_path, image_size=8, channels=3)

    assert gray.channels == 1
    assert gray.images[0, 0, 0, 0].item() == 76  # ITU-R 601 luma of pure red
    assert rgb.channels == 3
    assert rgb.images[1, :, 0, 0].tolist() == [50, 50, 50]


def test_rgba_is_composited_onto_white(tmp_path):
    im = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    im.putpixel((1, 1), (0, 0, 0, 255))
    im.putpixel((2, 2), (0, 0, 0, 128))
    im.save(tmp_path / "a.png")

    data = load_image_folder(tmp_path, image_size=8)

    assert data.channels == 3
    assert data.images[0, :, 0, 0].tolist() == [255, 255, 255]
    assert data.images[0, :, 1, 1].tolist() == [0, 0, 0]
    assert data.images[0, :, 2, 2].tolist() == [127, 127, 127]


def test_palette_image_with_transparency_is_composited_onto_white(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (3 * 254))
    im.putpixel((3, 3), 1)
    im.save(tmp_path / "a.gif", transparency=0)

    data = load_image_folder(tmp_path, image_size=8)

    assert data.images[0, :, 0, 0].tolist() == [255, 255, 255]
    assert data.images[0, :, 3, 3].tolist() == [255, 0, 0]


def test_sixteen_bit_grayscale_is_scaled(tmp_path):
    values = np.array([[0, 32768, 65535, 65535]] * 4, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "a.png")
    Image.fromarray(values).save(tmp_path / "b.tif")
    assert Image.open(tmp_path / "a.png").mode.startswith("I")

    data = load_image_folder(tmp_path, image_size=4)

    assert data.channels == 1
    for row in data.images[:, 0, 0]:
        assert row[0].item() == 0
        assert abs(row[1].item() - 128) <= 1
        assert row[2].item() == 255


def test_cmyk_jpeg_and_other_formats_load_as_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "a.jpg")
    _save(tmp_path / "b.webp", color=(255, 255, 255))
    _save(tmp_path / "c.tiff", color=(255, 255, 255))
    _save(tmp_path / "d.ppm", color=(255, 255, 255))

    data = load_image_folder(tmp_path, image_size=8)

    assert tuple(data.images.shape) == (4, 3, 8, 8)
    assert (data.images.int() - 255).abs().max().item() <= 3


def test_resize_shorter_side_then_center_crop(tmp_path):
    # 40x20, columns: 0-9 white, 10-19 black, 20-29 white, 30-39 black. The center square is
    # columns 10-29, so the output's left half is black and its right half white; squashing the
    # whole width or cropping the left edge would give a different picture.
    wide = np.zeros((20, 40), dtype=np.uint8)
    wide[:, 0:10] = 255
    wide[:, 20:30] = 255
    Image.fromarray(wide).save(tmp_path / "a.png")
    Image.fromarray(np.ascontiguousarray(wide.T)).save(tmp_path / "b.png")  # 20x40, the same turned

    data = load_image_folder(tmp_path, image_size=10)

    assert tuple(data.images.shape) == (2, 1, 10, 10)
    wide_out, tall_out = data.images[0, 0].int(), data.images[1, 0].int()
    assert wide_out[:, 2].max().item() <= 2
    assert wide_out[:, 7].min().item() >= 253
    assert tall_out[2, :].max().item() <= 2
    assert tall_out[7, :].min().item() >= 253


def test_exif_orientation_is_applied(tmp_path):
    # Stored 20 wide x 10 tall, left half white; orientation 6 shows it turned 90 degrees clockwise,
    # so the white half ends up on top.
    stored = np.zeros((10, 20), dtype=np.uint8)
    stored[:, :10] = 255
    im = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "a.png", exif=exif)

    out = load_image_folder(tmp_path, image_size=10).images[0, 0].int()

    assert out[1, :].min().item() >= 253
    assert out[8, :].max().item() <= 2


def test_corrupt_file_is_skipped_with_one_warning(tmp_path):
    _save(tmp_path / "a.png")
    (tmp_path / "x.png").write_bytes(b"this is not a png at all")
    _save(tmp_path / "z.png")

    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable image file.*x\.png") as record:
        data = load_image_folder(tmp_path, image_size=8)

    assert len([w for w in record if issubclass(w.category, UserWarning)]) == 1
    assert len(data) == 2


def test_every_folder_loader_words_skipped_files_the_same_way(tmp_path):
    """Image folders, paired folders and derive= folders: one warning, worded by ganforge.io.skipped_message."""
    for name in ("a.png", "b.png"):
        _save(tmp_path / name, size=(16, 8))  # twice as wide as high: also an aligned pair of 8x8 halves
    (tmp_path / "x.png").write_bytes(b"this is not a png at all")
    loaders = {
        "image folder": lambda: load_image_folder(tmp_path, image_size=8),
        "paired folder": lambda: load_paired(str(tmp_path), flip=False),
        "derive=": lambda: load_paired(str(tmp_path), derive="gray2color", load_size=8, flip=False),
    }
    for what, load in loaders.items():
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            load()
        assert [str(w.message) for w in record] == [skipped_message(["x.png"], tmp_path)], what
    assert skipped_message(["x.png"], tmp_path) == f"Skipped 1 unreadable image file in {tmp_path}: x.png"


def test_corrupt_file_in_class_keeps_labels_aligned(tmp_path):
    _save(tmp_path / "a" / "1.png", color=(0, 0, 0))
    (tmp_path / "a" / "2.jpg").write_bytes(b"\xff\xd8 truncated")
    _save(tmp_path / "b" / "1.png", color=(255, 255, 255))

    with pytest.warns(UserWarning, match=r"a/2\.jpg"):
        data = load_image_folder(tmp_path, image_size=8)

    assert data.labels.tolist() == [0, 1]
    assert data.images[:, 0, 0, 0].tolist() == [0, 255]


def test_no_warning_when_every_file_loads(tmp_path):
    _save(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(tmp_path, image_size=8)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(GanforgeError, match=r"No readable images found in .*\.png, \.jpg"):
        load_image_folder(tmp_path, image_size=8)


def test_only_corrupt_files_is_an_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(GanforgeError, match=r"No readable images.*x\.png"):
        load_image_folder(tmp_path, image_size=8)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        load_image_folder(tmp_path / "nope", image_size=8)


def test_file_instead_of_folder_is_an_error(tmp_path):
    path = _save(tmp_path / "a.png")
    with pytest.raises(GanforgeError, match="not a folder"):
        load_image_folder(path, image_size=8)


def test_load_dataset_reads_a_folder_at_the_requested_size(tmp_path):
    _save(tmp_path / "a.png", size=(30, 20))
    _save(tmp_path / "b.jpg", size=(50, 64))

    data = load_dataset(str(tmp_path), image_size=16)

    assert tuple(data.images.shape) == (2, 3, 16, 16)
    assert data.images.dtype == torch.uint8
