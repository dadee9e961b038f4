"""Unaligned data for CycleGAN: folder layouts, domains of different sizes and kinds of image, the
reference's item rule (A[i % |A|], B at random or serial), seeded crops and flips, the offline domains with
a known answer, and published datasets downloaded from a zip archive the test builds."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.data import BatchStream
from ganforge.data.derived import edges, fashion_images
from ganforge.data.download import safe_extract_zip
from ganforge.data.unaligned import cartoon, load_unaligned, translation_split
from ganforge.io import cache_dir


def _save(path: Path, array: np.ndarray) -> Path:
    """uint8 [H, W] (gray), [H, W, 3] (RGB) or [H, W, 4] (RGBA) as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _domains(root: Path, n_a: int = 5, n_b: int = 3, size: int = 20, split: str = "train") -> Path:
    """root/<split>A with n_a RGB images whose red value is 10 * index, root/<split>B with n_b gray ones
    whose value is 200 + 10 * index."""
    for i in range(n_a):
        a = np.zeros((size, size, 3), np.uint8)
        a[..., 0] = 10 * i
        _save(root / f"{split}A" / f"a{i}.png", a)
    for i in range(n_b):
        _save(root / f"{split}B" / f"b{i}.png", np.full((size, size), 200 + 10 * i, np.uint8))
    return root


def test_the_reference_layout_with_domains_of_different_sizes(tmp_path):
    root = _domains(tmp_path / "d")
    _domains(root, 2, 4, split="test")
    data = load_unaligned(str(root), load_size=20, crop_size=16, flip=False)
    assert len(data) == 5  # max(|A|, |B|)
    assert data.A.shape == (5, 3, 20, 20) and data.B.shape == (3, 1, 20, 20)
    assert data.names_A == [f"a{i}.png" for i in range(5)] and data.image_size == 16 and data.channels_B == 1
    test = load_unaligned(str(root), split="test", load_size=20, crop_size=20, flip=False)
    assert (test.A.shape[0], test.B.shape[0]) == (2, 4) and not test.paired
    with pytest.raises(ganforge.GanforgeError, match="no val split; it has: train, test"):
        load_unaligned(str(root), split="val")
    swapped = load_unaligned(str(root), direction="BtoA", load_size=20, crop_size=20, flip=False)
    assert torch.equal(swapped.A, data.B) and swapped.names_B == data.names_A


def test_items_take_a_in_order_and_b_at_random_or_serially(tmp_path):
    data = load_unaligned(str(_domains(tmp_path / "d")), load_size=20, crop_size=20, flip=False)
    idx = torch.arange(5)
    out = data.items(idx, torch.Generator().manual_seed(3))
    assert [int(x) for x in out["A"][:, 0, 0, 0]] == [0, 10, 20, 30, 40]  # A[i % |A|]
    b = [int(x) for x in out["B"][:, 0, 0, 0]]
    assert set(b) <= {200, 210, 220}
    again = data.items(idx, torch.Generator().manual_seed(3))
    assert torch.equal(again["B"], out["B"])  # the batch's generator decides
    draws = {tuple(int(x) for x in data.items(idx, torch.Generator().manual_seed(s))["B"][:, 0, 0, 0])
             for s in range(20)}
    assert len(draws) > 1
    data.serial_batches = True
    serial = data.items(torch.tensor([0, 1, 2, 3, 4, 7]), torch.Generator().manual_seed(0))
    assert [int(x) for x in serial["B"][:, 0, 0, 0]] == [200, 210, 220, 200, 210, 210]  # B[i % |B|]
    assert [int(x) for x in serial["A"][:, 0, 0, 0]] == [0, 10, 20, 30, 40, 20]


def test_crops_and_flips_are_drawn_per_image_and_per_domain(tmp_path):
    root = tmp_path / "d"
    ramp = np.tile(np.arange(24, dtype=np.uint8) * 10, (24, 1))  # brightness grows to the right
    for i in range(8):
        _save(root / "trainA" / f"{i}.png", ramp)
        _save(root / "trainB" / f"{i}.png", ramp)
    data = load_unaligned(str(root), load_size=24, crop_size=16, flip=True)
    out = data.items(torch.arange(8), torch.Generator().manual_seed(0))
    views = {key: {(int(x[0, 0, 0]), bool(x[0, 0, 0] > x[0, 0, -1])) for x in out[key]} for key in "AB"}
    assert all(len(v) > 2 for v in views.values())  # different crop positions
    assert all({flipped for _, flipped in v} == {True, False} for v in views.values())
    assert not torch.equal(out["A"], out["B"])  # A and B are cropped independently
    # no flip and no crop: the stored images, no draws
    plain = load_unaligned(str(root), load_size=24, crop_size=24, flip=False)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    plain.serial_batches = True
    assert torch.equal(plain.items(torch.arange(2), g)["A"], plain.A[:2]) and torch.equal(g.get_state(), state)


def test_batches_are_reproducible_by_index(tmp_path):
    data = load_unaligned(str(_domains(tmp_path / "d", 7, 4, size=24)), load_size=24, crop_size=16)
    s1, s2 = BatchStream(data, 2, seed=1), BatchStream(data, 2, seed=1)
    assert s1.batches_per_epoch == 3  # 7 items, batches of 2
    later = s2.batch(4)
    for i in range(5):
        b = s1.batch(i)
    assert all(torch.equal(b[k], later[k]) for k in "AB")
    assert not torch.equal(BatchStream(data, 2, seed=2).batch(4)["A"], later["A"])


def test_gray_rgba_and_16_bit_images_become_one_channel_count_per_domain(tmp_path):
    root = tmp_path / "mixed"
    _save(root / "trainA" / "gray1.png", np.full((16, 16), 100, np.uint8))
    _save(root / "trainA" / "gray2.png", np.full((16, 16), 50, np.uint8))
    sixteen = np.full((16, 16), 65535, np.uint16)
    Image.fromarray(sixteen).save(root / "trainA" / "deep.png")  # 16-bit gray
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 255
    rgba[:8, :, 3] = 0  # top half transparent: white
    _save(root / "trainB" / "rgba.png", rgba)
    _save(root / "trainB" / "rgb.png", np.full((16, 16, 3), 30, np.uint8))
    _save(root / "trainB" / "gray.png", np.full((16, 16), 7, np.uint8))
    data = load_unaligned(str(root), load_size=16, crop_size=16, flip=False)
    assert data.channels_A == 1 and data.channels_B == 3  # the majority of each domain
    assert sorted(int(x) for x in data.A[:, 0, 0, 0]) == [50, 100, 255]  # 16-bit scaled to 0..255
    b = dict(zip(data.names_B, data.B, strict=True))
    assert b["rgba.png"][:, 0, 0].tolist() == [255, 255, 255] and b["rgba.png"][:, -1, 0].tolist() == [255, 0, 0]
    assert b["gray.png"][:, 0, 0].tolist() == [7, 7, 7]
    forced = load_unaligned(str(root), load_size=16, crop_size=16, flip=False, channels=1)
    assert forced.channels_A == forced.channels_B == 1 and int(forced.B[0, 0, 0, 0]) == 7  # gray.png first


def test_two_folders_joined_by_a_comma_and_the_a_b_layout(tmp_path):
    root = _domains(tmp_path / "d")
    pair = load_unaligned(f"{root / 'trainA'},{root / 'trainB'}", load_size=20, crop_size=20, flip=False)
    assert (pair.A.shape[0], pair.B.shape[0]) == (5, 3) and pair.name == f"{root / 'trainA'},{root / 'trainB'}"
    (root / "trainA").rename(root / "A")
    (root / "trainB").rename(root / "B")
    (root / "testA").mkdir()  # an empty half-layout is not a split
    ab = load_unaligned(str(root), split="test", load_size=20, crop_size=20, flip=False)
    assert torch.equal(ab.A, pair.A)  # A/ and B/ serve every split
    with pytest.raises(ganforge.GanforgeError, match="does not exist or is not a folder"):
        load_unaligned(f"{root / 'A'},{root / 'nothing'}")
    with pytest.raises(ganforge.GanforgeError, match="Unknown unaligned dataset 'nowhere'.*fashion2edges"):
        load_unaligned("nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ganforge.GanforgeError, match="neither trainA/ and trainB/"):
        load_unaligned(str(tmp_path / "empty"))


def test_fashion2edges_never_shows_a_pair_in_training_and_keeps_pairs_for_testing(idx_root):
    train = load_unaligned("fashion2edges", str(idx_root), "train", load_size=32, crop_size=32, flip=False)
    garments, _ = fashion_images(str(idx_root), "train", 32, garment=28)
    half = garments.shape[0] // 2
    assert torch.equal(train.A, garments[:half])  # A: the first half
    assert torch.equal(train.B, edges(garments[half:]))  # B: edges of the other half
    assert train.channels_A == train.channels_B == 1 and not train.paired
    test = load_unaligned("fashion2edges", str(idx_root), "test", load_size=32, crop_size=32, flip=False)
    assert test.paired and torch.equal(test.B, edges(test.A)) and test.pair_labels.shape == (test.A.shape[0],)
    inputs, names, targets = translation_split("fashion2edges", "test", str(idx_root), direction="BtoA", size=32,
                                               n=5)
    assert len(inputs) == 5 and torch.equal(inputs[0], test.B[0]) and torch.equal(targets[0], test.A[0])
    jitter = load_unaligned("fashion2edges", str(idx_root), "train", crop_size=32)
    assert jitter.load_size == 36 and jitter.image_size == 32  # the reference's 286/256, garments still 28 px


def test_photo2cartoon_and_the_cartoon_rendering():
    x = torch.full((1, 3, 32, 32), 100, dtype=torch.uint8)
    x[..., 8:24, 8:24] = 200  # a bright square on gray: posterised to 170 on 85, outlined in black
    y = cartoon(x)
    assert y.shape == x.shape and set(torch.unique(y).tolist()) == {0, 85, 170}
    assert int(y[0, 0, 16, 16]) == 170 and int(y[0, 0, 1, 1]) == 85
    black = (y[0, 0] == 0).nonzero()
    assert len(black) > 16 and all(5 <= int(v) <= 26 for v in black.flatten())  # only around the square's edge
    test = load_unaligned("photo2cartoon", split="test", load_size=32, crop_size=32, flip=False)
    assert test.paired and torch.equal(test.B, cartoon(test.A)) and test.channels_A == 3
    train = load_unaligned("photo2cartoon", split="train", load_size=32, crop_size=32, flip=False)
    assert train.A.shape[0] == train.B.shape[0] == 500  # 5 photos, crops 0-99 as A, 100-199 rendered as B
    assert train.names_A[0] == "astronaut-000" and train.names_B[0] == "astronaut-100"


def _archive(path: Path, name: str, extra: list[tuple[str, bytes]] = (), link: str | None = None) -> Path:
    import io

    with zipfile.ZipFile(path, "w") as zf:
        for folder, value in (("trainA", 40), ("trainB", 90), ("testA", 140), ("testB", 190)):
            for i in range(2 if "test" in folder else 3):
                buf = io.BytesIO()
                Image.fromarray(np.full((12, 12, 3), value + i, np.uint8)).save(buf, "PNG")
                zf.writestr(f"{name}/{folder}/{i}.png", buf.getvalue())
        for member, data in extra:
            zf.writestr(member, data)
        if link:
            info = zipfile.ZipInfo(f"{name}/trainA/link.png")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, link)
    return path


def test_a_published_dataset_downloads_from_its_zip_archive(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    _archive(served / "horse2zebra.zip", "horse2zebra", extra=[("__MACOSX/horse2zebra/._x", b"junk")],
             link="/etc/passwd")
    monkeypatch.setenv("GANFORGE_CYCLEGAN_URL", served.as_uri())
    with pytest.raises(ganforge.GanforgeError, match=r"GANFORGE_OFFLINE=1 forbids downloading it: fetch "
                                                     r"file:.*horse2zebra\.zip and unzip it there"):
        load_unaligned("horse2zebra")
    monkeypatch.delenv("GANFORGE_OFFLINE")
    data = load_unaligned("horse2zebra", load_size=12, crop_size=12, flip=False)
    assert (data.A.shape[0], data.B.shape[0]) == (3, 3) and int(data.A[0, 0, 0, 0]) == 40
    cached = cache_dir("data") / "cyclegan" / "horse2zebra"
    assert sorted(p.name for p in cached.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert not (cached / "trainA" / "link.png").exists() and not (cached.parent / "horse2zebra.zip").exists()
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")  # now found in the cache
    assert load_unaligned("horse2zebra", split="test", load_size=12, crop_size=12).A.shape[0] == 2


def test_unsafe_archives_are_refused(tmp_path):
    bad = _archive(tmp_path / "bad.zip", "x", extra=[("x/../../escape.png", b"data")])
    with pytest.raises(ganforge.GanforgeError, match="outside the target folder"):
        safe_extract_zip(bad, tmp_path / "out")
    assert not (tmp_path / "escape.png").exists()
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ganforge.GanforgeError, match="Cannot extract"):
        safe_extract_zip(tmp_path / "junk.zip", tmp_path / "out2")
