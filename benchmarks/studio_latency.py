"""Studio latency: each endpoint's server-side time against the bare API call that computes the same picture,
side by side, and the browser round trip of the latent explorer's slider.

    .venv/bin/python benchmarks/studio_latency.py                 # about a minute on a laptop CPU
    .venv/bin/python benchmarks/studio_latency.py --no-browser    # without Playwright / chromium

Runs trained here for a few steps (the timings do not depend on how well a model is trained):

    dcgan     the fmnist-demo architecture (ngf = ndf = 64, 28 x 28): a 64-image grid (GET /api/generate?n=64)
              against model.sample(64) + the PNG grid; one interpolation frame (GET /api/latent/frame)
              against latent.render of one latent
    pix2pix   unet_256, ngf 64, 256 x 256 (edges derived from the images, upscaled): one uploaded 256 x 256
              image (POST /api/translate) against model.translate of it
    GAN Lab   ring2d: one frame (GET /api/lab/frame.png) against the toy task's render_samples, and 10 steps

Each is the median of --repeat calls through FastAPI's test client (in process: no network), after one
warm-up call. The slider: Playwright presses the arrow key on the slider of a page served by uvicorn and
waits for the frame of the new position to be shown; median of 20 presses.
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ganforge
from ganforge import latent

warnings.filterwarnings("ignore")


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def make_runs(base: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import make_idx_dataset

    data = make_idx_dataset(base / "fmnist", n_train=128, n_test=8)
    root = base / "runs"
    flags = {"data": "fashion-mnist", "data_root": str(data), "steps": 2, "batch_size": 16, "progress": False,
             "log_every": 1, "sample_every": 2, "ckpt_every": 2, "n_samples": 16}
    ganforge.train(ganforge.resolve_config("fmnist-demo", flags=flags), root / "dcgan")
    p2p = {**flags, "model": "pix2pix", "data": "edges2fashion", "image_size": 256, "batch_size": 1, "steps": 1,
           "sample_every": 1, "ckpt_every": 1, "n_samples": 1, "model_options": {"netG": "unet_256"}}
    ganforge.train(ganforge.resolve_config(flags=p2p), root / "p2p")
    return root


def browser_round_trip(app, presses: int = 20) -> list[float]:
    import shutil

    import uvicorn
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/#latent")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#lat-form select[name=run]", "dcgan")
        page.fill("#lat-form input[name=steps]", "32")
        page.press("#lat-form input[name=steps]", "Tab")
        page.wait_for_function("document.querySelector('#lat-pos-text').textContent !== ''")
        slider = page.locator("#lat-pos")
        for i in range(1, presses + 1):
            slider.focus()
            t0 = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(f"document.querySelector('#lat-pos-text').textContent === '{i} / 32'")
            times.append(1000 * (time.perf_counter() - t0))
        browser.close()
    server.should_exit = True
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from ganforge.studio.app import create_app
    from ganforge.studio.pictures import image_png

    with tempfile.TemporaryDirectory() as tmp:
        root = make_runs(Path(tmp))
        app = create_app([], root)
        c = TestClient(app)
        rows = []
        dcgan = ganforge.load(root / "dcgan")

        def direct_grid():
            image_png(torch.from_numpy(dcgan.sample(64, seed=0)).permute(0, 3, 1, 2), 8)

        rows.append(("64-image grid, DCGAN 28x28 (ngf 64)",
                     median_ms(lambda: c.get("/api/generate", params={"run": "dcgan", "n": 64}), args.repeat),
                     median_ms(direct_grid, args.repeat)))
        z = latent.interpolation_path(latent.z_from_seeds([1, 2], dcgan.nz), 8)[3:4]
        rows.append(("interpolation frame 28x28",
                     median_ms(lambda: c.get("/api/latent/frame", params={"run": "dcgan", "seeds": "1,2",
                                                                         "position": 3}), args.repeat),
                     median_ms(lambda: latent.render(dcgan, z), args.repeat)))
        p2p = ganforge.load(root / "p2p")
        photo = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format="PNG")
        files = {"file": ("x.png", buf.getvalue(), "image/png")}
        rows.append(("pix2pix unet_256 at 256x256",
                     median_ms(lambda: c.post("/api/translate", data={"run": "p2p"}, files=files), args.repeat),
                     median_ms(lambda: p2p.translate(torch.from_numpy(photo)[None, None]), args.repeat)))
        c.post("/api/lab/config", json={"data": "ring2d"})
        lab = app.state.lab
        frame_path = Path(tmp) / "lab" / "samples" / "f.png"
        frame_path.parent.mkdir(parents=True)

        def direct_frame():
            net = lab.run.trainer.sample_net()
            with torch.no_grad():
                lab.run.task.render_samples(net, lab.run.trainer.fixed, frame_path, 0)

        rows.append(("GAN Lab frame, ring2d",
                     median_ms(lambda: c.get("/api/lab/frame.png"), args.repeat), median_ms(direct_frame, args.repeat)))
        rows.append(("GAN Lab 10 steps", median_ms(lambda: c.post("/api/lab/step", json={"n": 10}), args.repeat),
                     float("nan")))
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{'':40s} {'studio ms':>10s} {'API ms':>10s} {'ratio':>7s}")
        for name, studio, direct in rows:
            print(f"{name:40s} {studio:10.1f} {direct:10.1f} {studio / direct:7.2f}")
        if not args.no_browser:
            t = browser_round_trip(app)
            print(f"slider round trip in chromium (key press -> new frame shown): median {statistics.median(t):.0f} ms,"
                  f" min {min(t):.0f}, max {max(t):.0f} over {len(t)} presses")


if __name__ == "__main__":
    main()
