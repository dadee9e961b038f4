"""MNIST-format files: decoding, where they are found, download code, batches and conversion."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_idx_dataset, toy_images, write_idx
from ganforge import GanforgeError, load_dataset
from ganforge.data import BatchStream, ImageData, convert_images
from ganforge.data.idx import read_idx

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def test_read_idx_plain_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert (read_idx(write_idx(tmp_path / "a", a, compress=False)) == a).all()
    assert (read_idx(write_idx(tmp_path / "b", a, compress=True)) == a).all()


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    p = write_idx(tmp_path / "a", np.zeros((4, 28, 28), np.uint8), compress=False)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(GanforgeError, match="truncated or corrupt"):
        read_idx(p)
    q = tmp_path / "b"
    q.write_bytes(b"PNG not idx")
    with pytest.raises(GanforgeError, match="not an unsigned-byte IDX file"):
        read_idx(q)
    g = tmp_path / "c.gz"
    g.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 8)[:-6])
    with pytest.raises(GanforgeError, match="Cannot read IDX file"):
        read_idx(g)


def test_dataset_found_in_data_root_and_env(tmp_path, monkeypatch):
    root = make_idx_dataset(tmp_path / "here", n_train=40, n_test=20)
    d = load_dataset("fashion-mnist", str(root))
    assert d.images.shape == (40, 1, 28, 28) and d.images.dtype == torch.uint8
    assert d.labels.tolist()[:11] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"
    assert load_dataset("fashion-mnist", str(root), split="test").images.shape[0] == 20
    # $GANFORGE_DATA/<name>/ works too, and so does torchvision's layout <root>/FashionMNIST/raw
    env_root = tmp_path / "env"
    make_idx_dataset(env_root / "mnist", n_train=30)
    monkeypatch.setenv("GANFORGE_DATA", str(env_root))
    assert len(load_dataset("mnist")) == 30
    make_idx_dataset(tmp_path / "tv" / "FashionMNIST" / "raw", n_train=50)
    assert len(load_dataset("fashion-mnist", str(tmp_path / "tv"))) == 50
    with pytest.raises(GanforgeError, match="Unknown split 'val'"):
        load_dataset("fashion-mnist", str(root), split="val")


@pytest.fixture
def no_system_data(monkeypatch):
    monkeypatch.setattr("ganforge.data.idx.SYSTEM_DIRS", [])


def test_download_code_fetches_and_verifies_files(tmp_path, monkeypatch, no_system_data, request):
    """The online path, against a mirror served on loopback: torchvision downloads and checks MD5s,
    ganforge reads the result."""
    from torchvision import datasets

    mirror = make_idx_dataset(tmp_path / "mirror", n_train=30, n_test=10)
    resources = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(mirror.glob("*.gz"))]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request.addfinalizer(server.shutdown)
    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    monkeypatch.setattr(datasets.FashionMNIST, "resources", resources)
    monkeypatch.setenv("GANFORGE_OFFLINE", "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    d = load_dataset("fashion-mnist", str(tmp_path / "nowhere"))
    assert len(d) == 30
    assert (tmp_path / "cache/ganforge/data/FashionMNIST/raw/train-images-idx3-ubyte.gz").is_file()
    # a corrupted mirror fails the checksum with one sentence
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))
    monkeypatch.setattr(datasets.FashionMNIST, "resources", [(n, "0" * 32) for n, _ in resources])
    with pytest.raises(GanforgeError, match="Downloading fashion-mnist failed"):
        load_dataset("fashion-mnist", str(tmp_path / "nowhere"))


def test_missing_data_names_files_and_the_install_hint(tmp_path, no_system_data):
    with pytest.raises(GanforgeError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", str(tmp_path))


def test_batch_stream_is_reproducible_and_shards_ranks():
    images, labels = toy_images(100)
    data = ImageData(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))
    s = BatchStream(data, 10, seed=3)
    assert s.batches_per_epoch == 10
    a = s.batch(7)
    assert torch.equal(a["image"], BatchStream(data, 10, seed=3).batch(7)["image"])  # fresh object, same batch
    epoch0 = torch.cat([s.batch(i)["label"] for i in range(10)])
    assert sorted(epoch0.tolist()) == sorted(labels.tolist())  # one epoch = every image once
    assert not torch.equal(s.batch(0)["image"], s.batch(10)["image"])  # next epoch reshuffled
    r0 = BatchStream(data, 10, seed=3, rank=0, world_size=2)
    r1 = BatchStream(data, 10, seed=3, rank=1, world_size=2)
    assert r0.batches_per_epoch == r1.batches_per_epoch == 5
    with pytest.raises(GanforgeError, match="larger than the dataset"):
        BatchStream(data, 101)


def test_rank_shards_are_disjoint():
    n = 64
    data = ImageData(torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous())
    r0 = BatchStream(data, 8, seed=1, rank=0, world_size=2)
    r1 = BatchStream(data, 8, seed=1, rank=1, world_size=2)
    ids0 = {int(v) for i in range(4) for v in r0.batch(i)["image"][:, 0, 0, 0]}
    ids1 = {int(v) for i in range(4) for v in r1.batch(i)["image"][:, 0, 0, 0]}
    assert len(ids0) == len(ids1) == 32 and not ids0 & ids1


def test_convert_images_resizes_and_changes_channels():
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 7:21, 7:21] = 255
    y = convert_images(x, 32, 3)
    assert y.shape == (2, 3, 32, 32) and y.dtype == torch.uint8
    assert torch.equal(y[:, 0], y[:, 1])
    assert y[0, 0, 16, 16] == 255 and y[0, 0, 0, 0] == 0  # resized, not cropped
    rgb = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    rgb[:, 1] = 255
    assert int(convert_images(rgb, None, 1)[0, 0, 0, 0]) == round(0.587 * 255)
    with pytest.raises(GanforgeError, match="Cannot convert 3-channel images to 4"):
        convert_images(rgb, None, 4)


def test_real_fashion_mnist_from_the_debian_package():
    """`make test` installs dataset-fashion-mnist; its decoded arrays are the standard ones."""
    assert DEBIAN.is_dir(), "dataset-fashion-mnist is not installed (make data installs it)"
    train = load_dataset("fashion-mnist", str(DEBIAN))
    test = load_dataset("fashion-mnist", str(DEBIAN), split="test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert train.labels[:5].tolist() == [9, 0, 0, 3, 0]  # the standard first labels: ankle boot, T-shirt ...
