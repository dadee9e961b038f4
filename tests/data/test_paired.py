"""Paired data for pix2pix: folder layouts, crops and flips shared by A and B, sizes, downloads."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tar_gz
from ganforge.data.download import safe_extract_tar
from ganforge.data.paired import PAIRED_DATASETS, PairedData, load_paired, pix2pix_url
from ganforge.errors import GanforgeError
from ganforge.io import cache_dir


def _save(path, array):
    """Save uint8 [H, W] or [H, W, 3] losslessly (PNG unless the suffix says otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


def _aligned_folder(folder, n=4, size=8, seed=0, gray=False):
    """Aligned pairs with A = random noise on the left and B = 255 - A on the right."""
    rng = np.random.default_rng(seed)
    halves = []
    for i in range(n):
        a = rng.integers(0, 256, (size, size) if gray else (size, size, 3), dtype=np.uint8)
        _save(folder / f"{i:02d}.png", np.concatenate([a, 255 - a], axis=1))
        halves.append(a)
    return halves


def _offset_of(crop, image):
    """(top, left, flipped) where the [C, c, c] ``crop`` lies in the [C, S, S] ``image``, else None."""
    c, s = crop.shape[-1], image.shape[-1]
    for flipped in (False, True):
        view = image.flip(-1) if flipped else image
        for top in range(s - c + 1):
            for left in range(s - c + 1):
                if torch.equal(view[:, top:top + c, left:left + c], crop):
                    return top, left, flipped
    return None


# ----------------------------------------------------------------------------------------------------
# aligned folders, crops and flips


def test_aligned_split_at_half_width(tmp_path):
    _save(tmp_path / "train" / "x.png", np.concatenate([np.full((6, 6), 10, np.uint8),
                                                        np.full((6, 6), 200, np.uint8)], axis=1))
    data = load_paired(str(tmp_path), flip=False)
    assert isinstance(data, PairedData)
    assert tuple(data.A.shape) == (1, 1, 6, 6) and data.A.dtype == torch.uint8
    assert (data.A == 10).all() and (data.B == 200).all()
    assert data.names == ["x.png"] and data.name == str(tmp_path)
    assert (data.image_size, data.load_size, data.crop_size) == (6, 6, 6)
    assert (data.channels, data.channels_A, data.channels_B) == (1, 1, 1)
    assert data.labels is None and data.class_names == [] and len(data) == 1


def test_crops_and_flips_are_identical_for_A_and_B_and_vary(tmp_path):
    halves = _aligned_folder(tmp_path / "train", n=4, size=8)
    data = load_paired(str(tmp_path), load_size=8, crop_size=5)
    assert data.flip and data.crop_size == 5 and data.load_size == 8
    for i, a in enumerate(halves):
        assert torch.equal(data.A[i], torch.from_numpy(a).permute(2, 0, 1))
    assert torch.equal(data.B, 255 - data.A)

    g = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(25):
        idx = torch.tensor([0, 3, 3, 1])
        out = data.items(idx, g)
        assert tuple(out["A"].shape) == (4, 3, 5, 5) and out["A"].dtype == torch.uint8
        assert torch.equal(out["B"], 255 - out["A"])  # same crop and flip: noise would not match otherwise
        for j, i in enumerate(idx.tolist()):
            where = _offset_of(out["A"][j], data.A[i])
            assert where is not None
            seen.add(where)
    assert len({(t, le) for t, le, _ in seen}) > 5  # positions vary over [0, 3] x [0, 3]
    assert {f for _, _, f in seen} == {False, True}  # both flipped and not


def test_items_are_reproducible_and_differ_per_pair(tmp_path):
    _aligned_folder(tmp_path, n=2, size=12)
    data = load_paired(str(tmp_path), load_size=12, crop_size=4)
    idx = torch.zeros(16, dtype=torch.long)
    a = data.items(idx, torch.Generator().manual_seed(5))
    b = data.items(idx, torch.Generator().manual_seed(5))
    assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
    assert len({tuple(x.flatten().tolist()) for x in a["A"]}) > 1  # one pair, different crops in one batch


def test_no_crop_no_flip_returns_stored_images_without_drawing(tmp_path):
    _aligned_folder(tmp_path, n=3, size=8)
    data = load_paired(str(tmp_path), load_size=8, crop_size=8, flip=False)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    out = data.items(torch.tensor([2, 0]), g)
    assert torch.equal(out["A"], data.A[[2, 0]]) and torch.equal(out["B"], data.B[[2, 0]])
    assert torch.equal(g.get_state(), state)


def test_default_sizes_follow_the_reference(tmp_path):
    _aligned_folder(tmp_path, n=2, size=16)
    train = load_paired(str(tmp_path))  # flip on: load = round(16 * 286 / 256) = 18, crop = own size 16
    assert (train.load_size, train.crop_size) == (18, 16)
    assert (load_paired(str(tmp_path), crop_size=8, flip=False).load_size) == 9  # round(8 * 1.1171875)
    plain = load_paired(str(tmp_path), flip=False)
    assert (plain.load_size, plain.crop_size) == (16, 16)
    evaluation = load_paired(str(tmp_path), load_size=12, crop_size=12, flip=False)
    assert (evaluation.load_size, evaluation.crop_size) == (12, 12)
    assert (load_paired(str(tmp_path), load_size=10).crop_size) == 10
    with pytest.raises(GanforgeError, match="crop_size 20 is larger than load_size 10"):
        load_paired(str(tmp_path), load_size=10, crop_size=20)
    with pytest.raises(GanforgeError, match="crop_size must be a positive"):
        load_paired(str(tmp_path), crop_size=0)


def test_resize_is_bicubic_to_a_square(tmp_path):
    a = np.tile(np.linspace(0, 255, 10).astype(np.uint8), (6, 1))  # a 6x10 half, not square
    _save(tmp_path / "p.png", np.concatenate([a, 255 - a], axis=1))
    data = load_paired(str(tmp_path), load_size=8, crop_size=8, flip=False)
    expected = np.array(Image.fromarray(a).resize((8, 8), Image.Resampling.BICUBIC))
    assert torch.equal(data.A[0, 0], torch.from_numpy(expected))


def test_direction_swaps_A_and_B(tmp_path):
    _aligned_folder(tmp_path, n=3, size=8)
    ab = load_paired(str(tmp_path), flip=False)
    ba = load_paired(str(tmp_path), flip=False, direction="BtoA")
    assert torch.equal(ba.A, ab.B) and torch.equal(ba.B, ab.A)
    with pytest.raises(GanforgeError, match="Unknown direction 'AB'; choose 'AtoB' or 'BtoA'"):
        load_paired(str(tmp_path), direction="AB")


def test_bad_aligned_widths_are_refused(tmp_path):
    _save(tmp_path / "odd" / "o.png", np.zeros((4, 9), np.uint8))
    with pytest.raises(GanforgeError, match="odd width"):
        load_paired(str(tmp_path / "odd"))
    _save(tmp_path / "tall" / "t.png", np.zeros((10, 6), np.uint8))
    with pytest.raises(GanforgeError, match="width smaller than its height"):
        load_paired(str(tmp_path / "tall"))


def test_channels_gray_colour_and_forced(tmp_path):
    _aligned_folder(tmp_path / "gray", n=2, size=6, gray=True)
    gray = load_paired(str(tmp_path / "gray"), flip=False)
    assert (gray.channels_A, gray.channels_B) == (1, 1)
    forced = load_paired(str(tmp_path / "gray"), flip=False, channels_A=3)
    assert (forced.channels_A, forced.channels_B) == (3, 1)
    assert torch.equal(forced.A, gray.A.expand(-1, 3, -1, -1))
    # one colour image in the folder makes both halves RGB (gray images repeat their band)
    _aligned_folder(tmp_path / "mixed", n=1, size=6, gray=True)
    _save(tmp_path / "mixed" / "zz.png", np.zeros((6, 12, 3), np.uint8))
    mixed = load_paired(str(tmp_path / "mixed"), flip=False)
    assert (mixed.channels_A, mixed.channels_B) == (3, 3)
    assert torch.equal(mixed.A[0, 0], mixed.A[0, 2])
    with pytest.raises(GanforgeError, match="channels_B must be 1 .* or 3"):
        load_paired(str(tmp_path / "gray"), channels_B=2)


def test_corrupt_files_are_skipped_with_a_warning(tmp_path):
    _aligned_folder(tmp_path, n=2, size=6)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="Skipped 1 unreadable image file.*broken.png"):
        data = load_paired(str(tmp_path), flip=False)
    assert data.names == ["00.png", "01.png"]


def test_empty_folder_and_unknown_name(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="No image files found in"):
        load_paired(str(tmp_path / "empty"))
    with pytest.raises(GanforgeError, match="Unknown paired dataset 'nope'; choose one of: .*facades"):
        load_paired("nope")


# ----------------------------------------------------------------------------------------------------
# two folders and splits


def _two_folders(dir_a, dir_b, stems, size=6):
    for k, stem in enumerate(stems):
        _save(dir_a / f"{stem}.png", np.full((size, size), 10 * k, np.uint8))
        _save(dir_b / f"{stem}.bmp", np.full((size, size), 255 - 10 * k, np.uint8))


@pytest.mark.parametrize("layout", ["A/B", "split/A", "trainA", "A/split"])
def test_two_folder_layouts_pair_by_name(tmp_path, layout):
    stems = ["c", "a", "b"]
    dirs = {"A/B": ("A", "B"), "split/A": ("train/A", "train/B"), "trainA": ("trainA", "trainB"),
            "A/split": ("A/train", "B/train")}[layout]
    _two_folders(tmp_path / dirs[0], tmp_path / dirs[1], stems)
    data = load_paired(str(tmp_path), flip=False)
    assert data.names == ["a.png", "b.png", "c.png"]
    assert data.A[:, 0, 0, 0].tolist() == [10, 20, 0]
    assert torch.equal(data.B, 255 - data.A)


def test_two_folders_with_unmatched_names(tmp_path):
    _two_folders(tmp_path / "A", tmp_path / "B", ["a", "b", "c", "d", "e"])
    for stem in ("b", "c", "d", "e"):
        (tmp_path / "B" / f"{stem}.bmp").rename(tmp_path / "B" / f"{stem}x.bmp")
    with pytest.raises(GanforgeError, match=r"^8 image\(s\) in .* have no partner .*\(e\.g\. A/b\.png, A/c\.png, "
                                            r"A/d\.png, \.\.\.\); pairs are matched by file name"):
        load_paired(str(tmp_path))


def test_split_folders_are_found_and_missing_ones_named(tmp_path):
    _aligned_folder(tmp_path / "train", n=3, size=6, seed=0)
    _aligned_folder(tmp_path / "test", n=2, size=6, seed=1)
    assert len(load_paired(str(tmp_path), split="train")) == 3
    assert len(load_paired(str(tmp_path), split="test")) == 2
    with pytest.raises(GanforgeError, match="has no val split; it has: train, test"):
        load_paired(str(tmp_path), split="val")
    with pytest.raises(GanforgeError, match="Unknown split 'dev'"):
        load_paired(str(tmp_path), split="dev")
    # a folder without split folders serves every split
    _aligned_folder(tmp_path / "flat", n=2, size=6)
    assert len(load_paired(str(tmp_path / "flat"), split="val")) == 2


# ----------------------------------------------------------------------------------------------------
# published datasets: download, extraction, offline


def _jpeg_pair(a_value, b_value, size=8):
    buf = io.BytesIO()
    image = np.concatenate([np.full((size, size, 3), a_value, np.uint8), np.full((size, size, 3), b_value, np.uint8)],
                           axis=1)
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()



def test_download_extract_and_load_from_a_file_url(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    tar_gz(served / "facades.tar.gz", {
        "facades/train/1.jpg": _jpeg_pair(30, 220),
        "facades/train/2.jpg": _jpeg_pair(60, 190),
        "facades/val/1.jpg": _jpeg_pair(90, 160),
    })
    monkeypatch.setenv("GANFORGE_PIX2PIX_URL", served.as_uri())  # a folder URL: <name>.tar.gz is appended
    assert pix2pix_url("facades") == served.as_uri() + "/facades.tar.gz"
    monkeypatch.delenv("GANFORGE_OFFLINE")

    data = load_paired("facades", load_size=8, crop_size=8, flip=False)

    assert data.name == "facades" and data.names == ["1.jpg", "2.jpg"]
    assert tuple(data.A.shape) == (2, 3, 8, 8)
    assert (data.A.float() - torch.tensor([30.0, 60.0]).view(2, 1, 1, 1)).abs().max() <= 3
    assert (data.B.float() - torch.tensor([220.0, 190.0]).view(2, 1, 1, 1)).abs().max() <= 3
    target = cache_dir("data") / "pix2pix" / "facades"
    assert (target / "train" / "1.jpg").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["facades"]  # no archive or scratch left

    monkeypatch.setenv("GANFORGE_OFFLINE", "1")  # the extracted copy is used from now on
    val = load_paired("facades", split="val", direction="BtoA", load_size=8, flip=False)
    assert len(val) == 1 and (val.A.float() - 160).abs().max() <= 3
    with pytest.raises(GanforgeError, match="has no test split; it has: train, val"):
        load_paired("facades", split="test")


def test_offline_error_says_where_and_how(monkeypatch):
    monkeypatch.setenv("GANFORGE_PIX2PIX_URL", "file:///nowhere/{name}.tgz")
    with pytest.raises(GanforgeError, match=r"'maps' was not found .*GANFORGE_OFFLINE=1 .*file:///nowhere/maps\.tgz"):
        load_paired("maps")


def test_download_failure_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_OFFLINE")
    monkeypatch.setenv("GANFORGE_PIX2PIX_URL", (tmp_path / "missing").as_uri())
    with pytest.raises(GanforgeError, match="Downloading the pix2pix dataset 'night2day' from file:"):
        load_paired("night2day")


def test_published_dataset_found_under_root_without_download(tmp_path, monkeypatch):
    _aligned_folder(tmp_path / "edges2shoes" / "val", n=2, size=6)
    data = load_paired("edges2shoes", root=str(tmp_path), split="val", flip=False)
    assert len(data) == 2 and data.name == "edges2shoes"
    assert len(load_paired("edges2shoes", root=str(tmp_path / "edges2shoes"), split="val")) == 2
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    assert len(load_paired("edges2shoes", split="val")) == 2
    assert set(PAIRED_DATASETS.names()) >= {"facades", "cityscapes", "maps", "edges2shoes", "edges2handbags",
                                            "night2day"}


@pytest.mark.parametrize("bad", ["../evil.png", "/abs/evil.png", "facades/../../evil.png"])
def test_unsafe_archive_members_are_refused(tmp_path, bad):
    archive = tar_gz(tmp_path / "bad.tar.gz", {"facades/train/1.jpg": _jpeg_pair(1, 2), bad: b"x"})
    dest = tmp_path / "out" / "inner"
    dest.mkdir(parents=True)
    with pytest.raises(GanforgeError, match="outside the target folder"):
        safe_extract_tar(archive, dest)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "out" / "evil.png").exists()
    assert not any(dest.iterdir())
