"""The published super-resolution sets (ganforge.data.sr_sets): names, addresses, finding and downloading,
against small archives the tests make and serve as file:// URLs (never the network)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import tar_gz
from ganforge.data.sr_sets import SR_SETS, sr_set_folder, sr_set_url
from ganforge.errors import GanforgeError
from ganforge.io import cache_dir


def png(value: int, size: tuple[int, int] = (12, 8)) -> bytes:
    """A small RGB PNG of one colour (value, 255 - value, 40)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (value, 255 - value, 40)).save(buffer, format="PNG")
    return buffer.getvalue()



def zip_file(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def pixel(path) -> tuple[int, ...]:
    with Image.open(path) as im:
        return tuple(np.asarray(im.convert("RGB"))[0, 0])


def test_published_addresses():
    assert sr_set_url("Set5") == "https://huggingface.co/datasets/eugenesiow/Set5/resolve/main/data/Set5_HR.tar.gz"
    assert sr_set_url("set14") == "https://huggingface.co/datasets/eugenesiow/Set14/resolve/main/data/Set14_HR.tar.gz"
    assert sr_set_url("BSD100").endswith("/eugenesiow/BSD100/resolve/main/data/BSD100_HR.tar.gz")
    assert sr_set_url("DIV2K") == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip"
    assert sr_set_url("div2k-valid") == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"
    assert [s.count for s in SR_SETS.values()] == [5, 14, 100, 800, 100]


def test_download_from_a_folder_url_then_found_offline(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    tar_gz(served / "Set5_HR.tar.gz", {"Set5_HR/baby.png": png(10), "Set5_HR/bird.png": png(200)})
    monkeypatch.setenv("GANFORGE_SR_URL", served.as_uri())  # a folder: the published file name is appended
    assert sr_set_url("Set5") == served.as_uri() + "/Set5_HR.tar.gz"
    monkeypatch.delenv("GANFORGE_OFFLINE")

    folder = sr_set_folder("set5")

    assert folder == cache_dir("data") / "sr" / "Set5_HR"
    assert sorted(p.name for p in folder.iterdir()) == ["baby.png", "bird.png"]
    assert pixel(folder / "bird.png") == (200, 55, 40)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["Set5_HR"]  # no archive or scratch left
    (served / "Set5_HR.tar.gz").unlink()
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")  # the extracted copy is used from now on
    assert sr_set_folder("Set5") == folder


def test_div2k_zip_from_a_template_url(tmp_path, monkeypatch):
    zip_file(tmp_path / "DIV2K_valid_HR.zip", {"DIV2K_valid_HR/0801.png": png(1), "DIV2K_valid_HR/0802.png": png(2)})
    monkeypatch.setenv("GANFORGE_SR_URL", tmp_path.as_uri() + "/{name}.zip")
    monkeypatch.delenv("GANFORGE_OFFLINE")
    folder = sr_set_folder("DIV2K-valid")
    assert folder.name == "DIV2K_valid_HR" and sorted(p.name for p in folder.iterdir()) == ["0801.png", "0802.png"]


def test_an_archive_with_the_images_at_its_top_is_accepted(tmp_path, monkeypatch):
    tar_gz(tmp_path / "Set14_HR.tar.gz", {"baboon.png": png(5), "zebra.png": png(6)})
    monkeypatch.setenv("GANFORGE_SR_URL", tmp_path.as_uri())
    monkeypatch.delenv("GANFORGE_OFFLINE")
    assert sorted(p.name for p in sr_set_folder("Set14").iterdir()) == ["baboon.png", "zebra.png"]


def test_an_archive_without_images_is_refused(tmp_path, monkeypatch):
    tar_gz(tmp_path / "BSD100_HR.tar.gz", {"README.txt": b"no images here"})
    monkeypatch.setenv("GANFORGE_SR_URL", tmp_path.as_uri())
    monkeypatch.delenv("GANFORGE_OFFLINE")
    with pytest.raises(GanforgeError, match=r"holds neither a BSD100_HR/ folder"):
        sr_set_folder("BSD100")


def test_found_under_root_or_data_without_download(tmp_path, monkeypatch):
    (tmp_path / "Set14").mkdir()
    (tmp_path / "Set14" / "comic.png").write_bytes(png(90))
    (tmp_path / "Set5_HR").mkdir()
    (tmp_path / "Set5_HR" / "head.png").write_bytes(png(91))
    assert sr_set_folder("Set14", tmp_path) == tmp_path / "Set14"  # a copy named after the set
    assert sr_set_folder("Set14", tmp_path / "Set14") == tmp_path / "Set14"  # root is the set itself
    assert sr_set_folder("Set5", str(tmp_path)) == tmp_path / "Set5_HR"  # the archive's folder name
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    assert sr_set_folder("Set5") == tmp_path / "Set5_HR"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(GanforgeError, match=r"^Unknown super-resolution set 'Set6'; choose one of: Set5, Set14, "
                                            r"BSD100, DIV2K, DIV2K-valid\.$"):
        sr_set_folder("Set6")


def test_offline_error_says_where_and_how(tmp_path):
    url = r"https://huggingface\.co/datasets/eugenesiow/BSD100/resolve/main/data/BSD100_HR\.tar\.gz"
    with pytest.raises(GanforgeError, match=r"'BSD100_HR' was not found .*GANFORGE_OFFLINE=1 forbids downloading it: "
                                            rf"fetch {url} and extract it there \(giving BSD100_HR/\*\.png\)"):
        sr_set_folder("BSD100", tmp_path)


def test_download_failure_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_OFFLINE")
    monkeypatch.setenv("GANFORGE_SR_URL", (tmp_path / "missing").as_uri())
    with pytest.raises(GanforgeError, match=r"^Downloading the super-resolution dataset 'DIV2K_train_HR' from "
                                            r"file:.*/missing/DIV2K_train_HR\.zip failed \("):
        sr_set_folder("DIV2K")
    assert not list((cache_dir("data") / "sr").glob("*.part"))  # no partial file left
