"""The studio's endpoints through FastAPI's test client: each one's pictures against the Python API that draws
the same thing, and each one's refusals (paths outside the runs, bad values, oversized uploads, busy)."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import numpy as np
import psutil
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from studio_fixtures import studio_data  # noqa: F401  (fixture)

import ganforge
from ganforge import latent
from ganforge.studio.app import create_app
from ganforge.viz import grid_image


@pytest.fixture(scope="module")
def client(studio_data):  # noqa: F811
    app = create_app([], studio_data["root"])
    with TestClient(app) as c:
        yield c


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def info(response) -> dict:
    return json.loads(response.headers["x-info"])


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and message.endswith("."), message


def test_runs_are_listed_with_status_and_kind(client):
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) == {"dcgan", "cgan", "p2p", "cycle"} and "cycle" in runs["cycle"]["offers"]
    assert runs["dcgan"]["status"] == "finished" and runs["dcgan"]["step"] == 60 == runs["dcgan"]["total_steps"]
    assert runs["dcgan"]["checkpoints"] == [30, 60] and "sample" in runs["dcgan"]["offers"]
    assert runs["p2p"]["offers"] == ["export", "translate"] and runs["dcgan"]["img_per_s"] > 0
    best = runs["dcgan"]["best"]
    assert runs["dcgan"]["has_best"] and best["name"] == "fid" and best["step"] in (30, 60)
    assert best["value"] == min(r["eval_fid"] for r in client.get("/api/run/metrics", params={"run": "dcgan"})
                                .json()["rows"] if "eval_fid" in r)
    assert runs["dcgan"]["eval"]["eval_fid"] > 0 and not runs["cgan"]["has_best"]
    assert info(client.get("/api/generate", params={"run": "dcgan", "ckpt": "best", "n": 1}))["step"] == best["step"]
    d = client.get("/api/run", params={"run": "cgan"}).json()
    assert d["info"]["num_classes"] == 10 and d["info"]["nz"] == 16 and d["info"]["image_shape"] == [1, 28, 28]
    assert client.get("/api/run", params={"run": "p2p"}).json()["info"]["input_nc"] == 1


@pytest.mark.parametrize("name", ["../dcgan", "/etc/passwd", "dcgan/../../x", "~/runs", "a\\b"])
def test_paths_outside_the_runs_are_refused(client, name):
    for url in ("/api/run", "/api/generate", "/api/latent/frame", "/api/run/metrics", "/api/run/sample.png"):
        r = client.get(url, params={"run": name})
        assert r.status_code in (400, 403), (url, r.text)
        assert "not" in r.json()["error"]
    refused(client.post("/api/run/resume", json={"run": name}), r.status_code, "")
    refused(client.get("/api/run", params={"run": "nothere"}), 404, "No run 'nothere' here")


def test_generate_is_ganforge_sample(client, studio_data):  # noqa: F811
    r = client.get("/api/generate", params={"run": "dcgan", "n": 16, "seed": 3})
    model = ganforge.load(studio_data["root"] / "dcgan")
    images = torch.from_numpy(model.sample(16, seed=3)).permute(0, 3, 1, 2)
    assert np.array_equal(png(r), np.asarray(grid_image(images, 4, min_width=0)))
    assert info(r)["command"] == "ganforge sample dcgan --n 16 --seed 3 --out samples.png" and info(r)["ema"]
    raw = client.get("/api/generate", params={"run": "dcgan", "n": 16, "seed": 3, "ema": "raw"})
    assert not info(raw)["ema"] and not np.array_equal(png(raw), png(r))
    npz = client.get("/api/generate", params={"run": "dcgan", "n": 5, "seed": 3, "format": "npz", "ckpt": "30"})
    assert npz.headers["content-disposition"] == 'attachment; filename="samples.npz"'
    with np.load(io.BytesIO(npz.content)) as f:
        assert np.array_equal(f["images"], ganforge.load(studio_data["root"] / "dcgan", "30").sample(5, seed=3))
        assert int(f["step"]) == 30


def test_generate_by_seeds_with_class_and_truncation(client, studio_data):  # noqa: F811
    r = client.get("/api/generate", params={"run": "cgan", "seeds": "4-9,20", "cls": "Sandal", "truncation": 0.7})
    model = ganforge.load(studio_data["root"] / "cgan")
    z = latent.z_from_seeds([4, 5, 6, 7, 8, 9, 20], 16, 0.7)
    want = latent.render(model, z, torch.full((7,), 5, dtype=torch.long))
    assert np.array_equal(png(r), np.asarray(grid_image(want, 3, min_width=0)))
    assert info(r)["seeds"] == [4, 5, 6, 7, 8, 9, 20] and info(r)["command"] is None
    rows = client.get("/api/generate", params={"run": "cgan", "n": 20})
    assert info(rows)["columns"] == 2  # one row per class, as ganforge sample draws it


@pytest.mark.parametrize("query, words", [
    ({"run": "dcgan", "n": 0}, "between 1 and 256"),
    ({"run": "dcgan", "n": 1000}, "between 1 and 256"),
    ({"run": "dcgan", "seeds": "0-999"}, "more than 256 seeds"),
    ({"run": "dcgan", "seeds": "a,b"}, "Cannot read the seeds"),
    ({"run": "dcgan", "truncation": 0.5}, "give seeds"),
    ({"run": "dcgan", "seeds": "1", "truncation": -1}, "positive number"),
    ({"run": "dcgan", "cls": "Sandal"}, "unconditional"),
    ({"run": "cgan", "cls": "Spaceship"}, "Spaceship"),
    ({"run": "dcgan", "ckpt": "77"}, "no checkpoint at step 77"),
    ({"run": "dcgan", "ckpt": "newest"}, "Unknown checkpoint"),
    ({"run": "dcgan", "format": "gif"}, "png or npz"),
    ({"run": "dcgan", "ema": "maybe"}, "default, ema or raw"),
    ({"run": "p2p"}, "latent (z) input"),
])
def test_generate_refuses_bad_values_with_a_sentence(client, query, words):
    refused(client.get("/api/generate", params=query), 400, words)


def frame_pixels(response) -> np.ndarray:
    """A latent frame (upscaled by a whole factor to >= 256 pixels) back at the model's 28 x 28."""
    a = png(response)
    return a[::a.shape[0] // 28, ::a.shape[1] // 28][:28, :28]


def test_latent_frames_are_the_columns_of_ganforge_latent_interpolate(client, studio_data):  # noqa: F811
    model = ganforge.load(studio_data["root"] / "dcgan")
    fig = latent.interpolate(model, [1, 2, 7], steps=4, mode="slerp")
    command = "ganforge latent interpolate dcgan --seeds 1,2,7 --steps 4 --mode slerp --out pictures"
    for position in (0, 3, 8):
        r = client.get("/api/latent/frame", params={"run": "dcgan", "seeds": "1,2,7", "steps": 4, "position": position})
        assert np.array_equal(frame_pixels(r), fig.images["grid"][0, position, 0].numpy())
        assert info(r)["command"] == command
    lin = latent.interpolate(model, [1, 2], steps=4, mode="linear")
    r = client.get("/api/latent/frame", params={"run": "dcgan", "seeds": "1,2", "steps": 4, "position": 2,
                                                "mode": "linear"})
    assert np.array_equal(frame_pixels(r), lin.images["grid"][0, 2, 0].numpy())


def test_latent_dimension_pca_and_class_blend_match_the_sweeps(client, studio_data):  # noqa: F811
    model = ganforge.load(studio_data["root"] / "dcgan")
    sweep = latent.sweep_dimension(model, 5, seeds=[1], radius=2.5, steps=2)
    r = client.get("/api/latent/frame", params={"run": "dcgan", "seeds": "1,2", "dims": "5:2.5", "last": "dim"})
    assert np.array_equal(frame_pixels(r), sweep.images["grid"][0, 1, 0].numpy())
    assert info(r)["command"].startswith("ganforge latent sweep dcgan --dim 5 --seeds 1 --range 2.5 --steps 2")
    pca = latent.sweep_pca(model, 2, seeds=[1], radius=1.5, steps=2)
    r = client.get("/api/latent/frame", params={"run": "dcgan", "seeds": "1,2", "pcs": "1:-1.5", "last": "pc"})
    assert np.array_equal(frame_pixels(r), pca.images["grid"][1, 0, 0].numpy())  # row PC2, value -1.5
    cgan = ganforge.load(studio_data["root"] / "cgan")
    blend = latent.interpolate_classes(cgan, [1, 7], seeds=[3], steps=10)
    r = client.get("/api/latent/frame", params={"run": "cgan", "seeds": "3,4", "blend": "1,7", "blend_t": 0.3,
                                                "last": "blend"})
    assert np.array_equal(frame_pixels(r), blend.images["grid"][0, 3, 0].numpy())
    assert "--classes 1,7 --seed 3 --steps 10" in info(r)["command"]


@pytest.mark.parametrize("query, words", [
    ({"seeds": "1"}, "at least two seeds"),
    ({"seeds": "1,2", "position": 99}, "between 0 and 8"),
    ({"seeds": "1,2", "steps": 0}, "between 1 and 64"),
    ({"seeds": "1,2", "mode": "cubic"}, "slerp or linear"),
    ({"seeds": "1,2", "dims": "16:1"}, "indices 0..15"),
    ({"seeds": "1,2", "pcs": "x"}, "INDEX:VALUE"),
    ({"seeds": "1,2", "blend": "1,2"}, "unconditional"),
])
def test_latent_frame_refusals(client, query, words):
    refused(client.get("/api/latent/frame", params={"run": "dcgan", **query}), 400, words)


def upload(client, data: bytes, run: str = "p2p", **extra):
    return client.post("/api/translate", data={"run": run, **extra}, files={"file": ("x.png", data, "image/png")})


def png_file(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_translate_upload_and_held_out(client, studio_data):  # noqa: F811
    rng = np.random.default_rng(0)
    pic = rng.integers(0, 255, (40, 36), dtype=np.uint8)
    r = upload(client, png_file(Image.fromarray(pic)))
    model = ganforge.load(studio_data["root"] / "p2p")
    out = model.translate(torch.from_numpy(pic)[None, None])
    want = np.asarray(grid_image(torch.stack([torch.from_numpy(pic)[None], out[0]]), 2, min_width=0))
    assert np.array_equal(png(r), want) and info(r)["panels"] == 2 and info(r)["output"] == [1, 40, 36]
    held = client.get("/api/translate/heldout", params={"run": "p2p", "index": 2})
    assert info(held)["panels"] == 3 and png(held).shape == (36, 2 + 3 * 34)  # input | output | target, 32 px
    refused(client.get("/api/translate/heldout", params={"run": "p2p", "index": 500}), 400, "beyond it")
    refused(upload(client, b"not an image at all"), 400, "not an image")
    refused(upload(client, png_file(Image.fromarray(pic)), run="dcgan"), 400, "does not translate")
    refused(upload(client, png_file(Image.fromarray(pic)), direction="BtoA"), 400, "one direction")


def test_stylize_an_uploaded_photo_with_an_uploaded_style(client):
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    style = np.zeros((24, 24, 3), dtype=np.uint8)
    style[::4] = (200, 30, 30)  # red stripes
    files = {"content": ("p.png", png_file(Image.fromarray(photo)), "image/png"),
             "style": ("s.png", png_file(Image.fromarray(style)), "image/png")}
    r = client.post("/api/stylize", data={"size": 32, "iterations": 5}, files=files)
    got = info(r)
    assert got["size"] == [24, 32] and got["panels"] == 3 and got["iterations"] >= 5
    assert got["loss_end"] < got["loss_start"] and got["command"].startswith("ganforge stylize")
    # the result is ganforge.stylize's, in the third panel
    want = ganforge.stylize(torch.from_numpy(photo).permute(2, 0, 1), [torch.from_numpy(style).permute(2, 0, 1)],
                            size=32, iterations=5).image
    assert np.array_equal(png(r)[2:26, 2 + 2 * 34:2 + 2 * 34 + 32], want.permute(1, 2, 0).numpy())
    refused(client.post("/api/stylize", data={"size": 999}, files=files), 400, "between 16 and 256")
    refused(client.post("/api/stylize", data={"iterations": 0}, files=files), 400, "between 1 and 300")
    bad = {**files, "style": ("s.png", b"not an image", "image/png")}
    refused(client.post("/api/stylize", files=bad), 400, "not an image")


def test_translate_with_a_cyclegan_in_either_direction(client, studio_data):  # noqa: F811
    d = client.get("/api/run", params={"run": "cycle"}).json()["info"]
    assert "cycle" in d["offers"] and d["directions"] == ["AtoB", "BtoA"]
    pic = np.random.default_rng(2).integers(0, 255, (32, 32), dtype=np.uint8)
    model = ganforge.load(studio_data["root"] / "cycle")
    for direction in ("AtoB", "BtoA"):
        r = upload(client, png_file(Image.fromarray(pic)), run="cycle", direction=direction)
        out = model.translate(torch.from_numpy(pic)[None, None], direction=direction)[0, 0].numpy()
        assert info(r)["direction"] == direction and np.array_equal(png(r)[2:34, 36:68], out)
        held = client.get("/api/translate/heldout", params={"run": "cycle", "direction": direction})
        assert info(held)["direction"] == direction and info(held)["panels"] in (2, 3)
    refused(upload(client, png_file(Image.fromarray(pic)), run="cycle", direction="sideways"), 400, "AtoB or BtoA")


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds none (signature, IHDR, IEND)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_uploads_are_limited_in_bytes_and_pixels(studio_data):  # noqa: F811
    with TestClient(create_app([], studio_data["root"], max_upload_bytes=5000, max_upload_pixels=100 * 100)) as c:
        noise = np.random.default_rng(1).integers(0, 255, (80, 80), dtype=np.uint8)
        refused(upload(c, png_file(Image.fromarray(noise))), 413, "at most 5,000 bytes")
        bomb = png_file(Image.new("L", (2000, 2000)))  # a few kB that decode to 4 million pixels
        assert len(bomb) < 5000
        refused(upload(c, bomb), 413, "2000 x 2000 = 4,000,000 pixels")
    with TestClient(create_app([], studio_data["root"])) as c:  # 400 Mpx in a 57-byte header: refused unread
        refused(upload(c, png_header(20000, 20000)), 413, "decompression bomb or an oversized image")
        refused(upload(c, png_header(5000, 5000)), 413, "5000 x 5000 = 25,000,000 pixels; the studio takes at most "
                                                        "16,777,216")


def test_monitor_metrics_events_and_sample(client, studio_data):  # noqa: F811
    run = studio_data["root"] / "dcgan"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert client.get("/api/run/metrics", params={"run": "dcgan"}).json()["rows"] == rows
    with client.stream("GET", "/api/run/events", params={"run": "dcgan", "poll": 0.05}) as s:
        text = s.read().decode()
    events = [(b.split("\n")[0][7:], json.loads(b.split("\n")[1][6:])) for b in text.strip().split("\n\n")]
    assert [d for e, d in events if e == "row"] == rows
    assert ("sample", {"name": "step_00000060.png", "step": 60}) in events
    assert events[-1][0] == "end" and [d for e, d in events if e == "status"][-1]["status"] == "finished"
    r = client.get("/api/run/sample.png", params={"run": "dcgan"})
    assert r.content == (run / "samples" / "step_00000060.png").read_bytes()


def toy_frame_shape(tmp_path, data: str, **flags) -> tuple[int, int]:
    """The size of a frame that `ganforge toy` (train_toy) writes for ``data``."""
    from ganforge.api import toy_config, train_toy

    train_toy(toy_config(data, {"steps": 2, "sample_every": 2, **flags}), tmp_path / data)
    return np.asarray(Image.open(tmp_path / data / "samples" / "step_00000002.png")).shape[:2]


def test_gan_lab_steps_d_and_g_apart_and_keeps_weights_across_settings(client, tmp_path):
    s = client.post("/api/lab/config", json={"data": "ring2d", "loss": "nonsaturating", "k": 2}).json()
    assert s["step"] == 0 and s["dim"] == 2 and set(s["losses"]) == {"minimax", "nonsaturating", "lsgan", "hinge",
                                                                      "wgan-gp"}
    lab = client.app.state.lab
    weights = lambda name: {k: v.clone() for k, v in lab.run.trainer.raw[name].state_dict().items()}  # noqa: E731
    g0, d0 = weights("G"), weights("D")
    s = client.post("/api/lab/step", json={"what": "D", "n": 3}).json()
    assert s["updates"] == {"D": 3, "G": 0} and all(torch.equal(g0[k], v) for k, v in weights("G").items())
    assert not all(torch.equal(d0[k], v) for k, v in weights("D").items())
    d1 = weights("D")
    s = client.post("/api/lab/step", json={"what": "G", "n": 1}).json()
    assert s["updates"] == {"D": 3, "G": 1} and all(torch.equal(d1[k], v) for k, v in weights("D").items())
    s = client.post("/api/lab/step", json={"what": "both", "n": 2}).json()
    assert s["updates"] == {"D": 7, "G": 3}  # k = 2 D updates per step
    g1 = weights("G")
    s = client.post("/api/lab/config", json={"data": "ring2d", "loss": "hinge", "k": 1, "lr_d": 1e-3}).json()
    assert s["step"] == 6 and all(torch.equal(g1[k], v) for k, v in weights("G").items())  # weights carried over
    r = client.get("/api/lab/frame.png")
    frame = png(r)
    assert frame.shape[:2] == toy_frame_shape(tmp_path, "ring2d")
    assert info(r)["frame"]["step"] == 6 and "js" in info(r)["frame"]
    s = client.post("/api/lab/config", json={"data": "points", "points": [[0, 0], [1, 1], [2, 0.5]]}).json()
    assert s["step"] == 0 and s["dim"] == 2
    s = client.post("/api/lab/config", json={"data": "points", "points": [[0.1], [1.0], [3.0]]}).json()
    assert s["dim"] == 1 and png(client.get("/api/lab/frame.png")).shape[:2] == toy_frame_shape(tmp_path, "gaussian1d")


@pytest.mark.parametrize("body, words", [
    ({"loss": "wasserstein"}, "Unknown loss"), ({"k": 0}, "d_steps must be a positive integer, got 0."),
    ({"k": 50}, "at most 20 in GAN Lab"), ({"lr_g": -1}, "lr_g must be positive, got -1.0."),
    ({"data": "swirl"}, "Unknown toy data"), ({"data": "points", "points": [[1, 2]]}, "at least 2"),
    ({"data": "points", "points": [[1, 2, 3], [4, 5, 6]]}, "[x, y] pairs"), ({"color": "red"}, "Unknown GAN Lab"),
])
def test_gan_lab_refusals(client, body, words):
    refused(client.post("/api/lab/config", json=body), 400, words)
    refused(client.post("/api/lab/step", json={"what": "C"}), 400, "both, D or G")
    refused(client.post("/api/lab/step", json={"n": 1000}), 400, "between 1 and 200")


def test_fifty_concurrent_generates_succeed_or_are_told_busy(studio_data):  # noqa: F811
    app = create_app([], studio_data["root"], busy_limit=4)
    results = []
    with TestClient(app) as c:
        c.get("/api/generate", params={"run": "dcgan", "n": 64})  # loaded once

        def ask():
            results.append(c.get("/api/generate", params={"run": "dcgan", "n": 64}))

        threads = [threading.Thread(target=ask) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    codes = [r.status_code for r in results]
    assert len(codes) == 50 and set(codes) <= {200, 503} and 200 in codes, codes
    for r in results:
        if r.status_code == 503:
            assert r.json()["error"] == "The studio is busy with other requests; try again in a moment."
        else:
            assert png(r).shape == (242, 242)


def test_memory_does_not_grow_over_500_requests(studio_data):  # noqa: F811
    process = psutil.Process(os.getpid())
    with TestClient(create_app([], studio_data["root"])) as c:
        def batch(k: int) -> None:
            for i in range(k):
                r = c.get("/api/generate", params={"run": "dcgan", "n": 4, "seed": i})
                assert r.status_code == 200
        batch(50)
        before = process.memory_info().rss
        t0 = time.perf_counter()
        batch(450)
        seconds = time.perf_counter() - t0
        growth = process.memory_info().rss - before
    print(f"500 requests: RSS grew {growth / 2**20:.1f} MiB over the last 450 ({seconds:.1f} s)")
    assert growth < 20 * 2**20


def test_gan_lab_frame_shows_every_clicked_point(client, monkeypatch):
    # a user's points are tiled to 20,000; a frame once took every 20th, which for 5 points is one point 1000 times
    import ganforge.tasks.toy as toy_task

    shown = {}
    original = toy_task.draw_frame_2d
    monkeypatch.setattr(toy_task, "draw_frame_2d", lambda path, real, *a, **k: (shown.setdefault("real", real),
                                                                                original(path, real, *a, **k)))
    points = [[-1.5, 1.0], [-1.1, 0.8], [0.6, -0.8], [1.0, -1.0], [0.9, 1.2]]
    client.post("/api/lab/config", json={"data": "points", "points": points})
    png(client.get("/api/lab/frame.png"))
    assert len(np.unique(shown["real"], axis=0)) == 5
