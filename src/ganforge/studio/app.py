"""The studio's web application: a FastAPI app over the same Python API the command line calls.

Pages (static HTML + hand-written JS under ``static/``) talk to the JSON / PNG endpoints below.
Every endpoint names a run by its id from ``/api/runs``; nothing else on disk can be read. Image work
runs one request at a time; while ``busy_limit`` requests already wait, another gets HTTP 503 with a
sentence instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import warnings
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image

from ..config import preset_names
from ..errors import GanforgeError
from ..viz import read_metrics
from . import pictures
from .lab import Lab
from .runs import RunIndex, StudioError

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096
BUSY = "The studio is busy with other requests; try again in a moment."


class Gate:
    """At most ``limit`` requests inside (one working, the others waiting for the lock); more get 503."""

    def __init__(self, limit: int) -> None:
        self.limit, self.inside = limit, 0
        self._lock = threading.Lock()

    def __enter__(self) -> Gate:
        with self._lock:
            if self.inside >= self.limit:
                raise StudioError(BUSY, 503)
            self.inside += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.inside -= 1


def _picture(p: pictures.Picture, filename: str | None = None) -> Response:
    headers = {"X-Info": json.dumps(p.info), "Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(p.data, media_type=p.media_type, headers=headers)


def read_upload(data: bytes, max_pixels: int) -> torch.Tensor:
    """An uploaded image as uint8 [C, H, W] (C = 1 or 3); oversized or undecodable images are refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise StudioError(f"The image is {w} x {h} = {w * h:,} pixels; the studio takes at most "
                                  f"{max_pixels:,} pixels (a larger image, or a decompression bomb, is refused).", 413)
            im.load()
    except StudioError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise StudioError(f"The image claims far more pixels than the studio takes (at most {max_pixels:,}): a "
                          "decompression bomb or an oversized image, refused unread.", 413) from None
    except Exception:  # noqa: BLE001 - Pillow raises many types on bad data
        raise StudioError("The upload is not an image this studio can read (PNG, JPEG, BMP, GIF, WebP).") from None
    im = im.convert("L") if im.mode in ("1", "L", "I;16", "I", "F", "LA") else im.convert("RGB")
    t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).reshape(h, w, -1)
    return t.permute(2, 0, 1).contiguous()


def create_app(runs: list[str | Path] = (), runs_root: str | Path | None = "runs", device: str = "cpu",
               busy_limit: int = 8, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_upload_pixels: int = MAX_UPLOAD_PIXELS) -> FastAPI:
    """The studio over the run folders ``runs`` and those under ``runs_root``."""
    index = RunIndex(runs, runs_root)
    models = pictures.Models(device=device)
    gate = Gate(busy_limit)
    lab = Lab()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        index.close()  # training processes this studio started stop cleanly, with a checkpoint
        lab.close()

    app = FastAPI(title="ganforge studio", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.index, app.state.models, app.state.lab = index, models, lab

    @app.exception_handler(GanforgeError)
    async def _refused(request: Request, e: GanforgeError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=getattr(e, "status", 400))

    def work(fn, *args):
        """Run ``fn`` through the gate and the model lock (one image job at a time)."""
        with gate, models.lock:
            return fn(*args)

    # ------------------------------------------------------------------ pages
    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ runs and the monitor
    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        return {"runs": [index.summary(r) for r in index.ids()], "presets": preset_names(),
                "can_start": index.root is not None}

    @app.get("/api/run")
    def run_info(run: str, ckpt: str = "latest") -> dict[str, Any]:
        summary = index.summary(run)
        model = None
        if summary["checkpoints"] or summary["has_best"]:
            model = work(lambda: pictures.describe(models.get(index.path(run), ckpt)))
        return {**summary, "info": model, "log": index.log_tail(run)}

    @app.get("/api/run/metrics")
    def run_metrics(run: str) -> dict[str, Any]:
        path = index.path(run) / "metrics.jsonl"
        return {"rows": read_metrics(path) if path.is_file() else []}

    @app.get("/api/run/sample.png")
    def run_sample(run: str) -> FileResponse:
        return FileResponse(index.newest_sample(run), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/run/events")
    async def run_events(run: str, after: int = -1, poll: float = 0.5) -> StreamingResponse:
        """Server-sent events: ``row`` (each new metrics row), ``sample`` (a new fixed-noise grid),
        ``status`` (the run's summary); ``end`` once the run is not training and every row was sent."""
        path = index.path(run)
        poll = min(max(poll, 0.05), 5.0)

        async def stream():
            sent_step, sent_sample, sent_rows, last_status = after, None, 0, 0.0
            while True:
                rows = read_metrics(path / "metrics.jsonl") if (path / "metrics.jsonl").is_file() else []
                for r in rows[sent_rows:]:
                    if r.get("step", 0) > sent_step or any(k.startswith("eval_") for k in r):
                        yield f"event: row\ndata: {json.dumps(r)}\n\n"
                        sent_step = max(sent_step, r.get("step", 0))
                sent_rows = len(rows)
                summary = index.summary(run)
                sample = None
                try:
                    sample = index.newest_sample(run).name
                except StudioError:
                    pass
                if sample != sent_sample and sample is not None:
                    yield f"event: sample\ndata: {json.dumps({'name': sample, 'step': summary['step']})}\n\n"
                    sent_sample = sample
                if time.monotonic() - last_status > 2 or summary["status"] not in ("running", "active"):
                    yield f"event: status\ndata: {json.dumps(summary)}\n\n"
                    last_status = time.monotonic()
                if summary["status"] not in ("running", "active"):
                    yield "event: end\ndata: {}\n\n"
                    return
                await asyncio.sleep(poll)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post("/api/train")
    async def train_start(request: Request) -> dict[str, Any]:
        body = await _json(request)
        return index.start(str(body.get("preset", "")), str(body.get("name", "")), dict(body.get("settings") or {}))

    @app.post("/api/run/stop")
    async def run_stop(request: Request) -> dict[str, Any]:
        return index.stop(str((await _json(request)).get("run", "")))

    @app.post("/api/run/resume")
    async def run_resume(request: Request) -> dict[str, Any]:
        body = await _json(request)
        steps = body.get("steps")
        if steps not in (None, "") and (not str(steps).isdigit() or int(steps) < 1):
            raise StudioError(f"steps must be a positive integer, got {steps!r}.")
        return index.resume(str(body.get("run", "")), int(steps) if steps not in (None, "") else None)

    # ------------------------------------------------------------------ Generate
    @app.get("/api/generate")
    def generate(run: str, ckpt: str = "latest", seeds: str | None = None, seed: int | None = None,
                 n: int | None = None, cls: str | None = None, truncation: float | None = None,
                 ema: str | None = None, format: str = "png") -> Response:
        ema_flag = pictures.parse_ema(ema)

        def job():
            pipe = models.get(index.path(run), ckpt)
            return pictures.generate(pipe, run, seeds, seed, n, cls, truncation, ema_flag, ckpt, format)

        p = work(job)
        return _picture(p, f"samples.{format}" if format == "npz" else None)

    # ------------------------------------------------------------------ Latent explorer
    @app.get("/api/latent/frame")
    def latent_frame(run: str, seeds: str = "0,1", position: int = 0, steps: int = 8, mode: str = "slerp",
                     ckpt: str = "latest", cls: str | None = None, dims: str | None = None, pcs: str | None = None,
                     blend: str | None = None, blend_t: float = 0.0, ema: str | None = None,
                     last: str = "walk") -> Response:
        ema_flag = pictures.parse_ema(ema)

        def job():
            pipe = models.get(index.path(run), ckpt)
            return pictures.latent_frame(models, pipe, run, ckpt, seeds, position, steps, mode, cls, dims, pcs, blend,
                                         blend_t, ema_flag, last)

        return _picture(work(job))

    # ------------------------------------------------------------------ Translate
    @app.post("/api/translate")
    async def translate(request: Request, run: Annotated[str, Form()], file: Annotated[UploadFile, File()],
                        ckpt: Annotated[str, Form()] = "latest", direction: Annotated[str, Form()] = "") -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes + 64 * 1024:
            raise StudioError(f"The upload is {int(length):,} bytes; the studio takes at most "
                              f"{max_upload_bytes:,} bytes.", 413)
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise StudioError(f"The upload is too large; the studio takes at most {max_upload_bytes:,} bytes.", 413)
        image = read_upload(data, max_upload_pixels)

        def job():
            return pictures.translate(models.get(index.path(run), ckpt), image, None, direction or None)

        return _picture(await asyncio.to_thread(work, job))

    async def _upload(request: Request, *files: UploadFile) -> list[torch.Tensor]:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > len(files) * max_upload_bytes + 64 * 1024:
            raise StudioError(f"The upload is {int(length):,} bytes; the studio takes at most "
                              f"{max_upload_bytes:,} bytes an image.", 413)
        images = []
        for f in files:
            data = await f.read(max_upload_bytes + 1)
            if len(data) > max_upload_bytes:
                raise StudioError(f"The upload is too large; the studio takes at most {max_upload_bytes:,} bytes "
                                  "an image.", 413)
            images.append(read_upload(data, max_upload_pixels))
        return images

    @app.post("/api/stylize")
    async def stylize(request: Request, content: Annotated[UploadFile, File()], style: Annotated[UploadFile, File()],
                      size: Annotated[int, Form()] = 128, iterations: Annotated[int, Form()] = 100) -> Response:
        photo, painting = await _upload(request, content, style)
        return _picture(await asyncio.to_thread(work, pictures.stylize, photo, painting, size, iterations))

    @app.get("/api/translate/heldout")
    def translate_heldout(run: str, index_: Annotated[int, Query(alias="index")] = 0, ckpt: str = "latest",
                          direction: str = "") -> Response:
        def job():
            pipe = models.get(index.path(run), ckpt)
            image, target = pictures.held_out(pipe, index_, direction or None)
            return pictures.translate(pipe, image, target, direction or None)

        return _picture(work(job))

    # ------------------------------------------------------------------ GAN Lab
    @app.get("/api/lab/state")
    def lab_state() -> dict[str, Any]:
        with lab.lock:
            if lab.run is None:
                lab.configure()
            return lab.state()

    @app.post("/api/lab/config")
    async def lab_config(request: Request) -> dict[str, Any]:
        body = await _json(request)
        allowed = {"data", "loss", "k", "lr_g", "lr_d", "seed", "points"}
        unknown = set(body) - allowed
        if unknown:
            raise StudioError(f"Unknown GAN Lab setting {sorted(unknown)[0]!r}; the settings are: "
                              f"{', '.join(sorted(allowed))}.")

        def job():
            with lab.lock:
                return lab.configure(**body)

        return await asyncio.to_thread(job)

    @app.post("/api/lab/step")
    async def lab_step(request: Request) -> dict[str, Any]:
        body = await _json(request)
        n = body.get("n", 1)
        if not isinstance(n, int):
            raise StudioError(f"n must be an integer, got {n!r}.")

        def job():
            with lab.lock:
                return lab.step(str(body.get("what", "both")), n)

        return await asyncio.to_thread(job)

    @app.get("/api/lab/frame.png")
    def lab_frame() -> Response:
        with lab.lock:
            t0 = time.perf_counter()
            png = lab.frame()
            info = {**lab.state(), "render_ms": round(1000 * (time.perf_counter() - t0), 1)}
        return Response(png, media_type="image/png", headers={"X-Info": json.dumps(info), "Cache-Control": "no-store"})

    return app


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise StudioError("The request body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise StudioError("The request body must be a JSON object.")
    return body
