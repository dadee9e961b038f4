"""The studio's web application: a FastAPI app over the same Python API the command line calls.

Pages (static HTML + hand-written JS under ``static/``) talk to the JSON / PNG endpoints below.
Every endpoint names a run by its id from ``/api/runs``; nothing else on disk can be read, and the
messages sent back name runs by their ids, never by their folders on this machine. Every response carries
a Content-Security-Policy that allows only the studio's own script files. The endpoints that work on
images take a slot when the request arrives, before its body is read: with ``busy_limit`` requests
already in (one working, the others waiting), another gets HTTP 503 with a sentence at once instead of
queueing without bound; request bodies are limited in bytes while they arrive.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
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
from starlette.exceptions import HTTPException

from ..config import preset_names
from ..doctor import monitor_view
from ..errors import GanforgeError
from ..viz import read_metrics
from . import pictures
from .lab import Lab
from .runs import RunIndex, StudioError

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096
MAX_BODY_BYTES = 1024 * 1024  # a request that uploads no image (GAN Lab's clicked points are the largest)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the form's other fields
BUSY = "The studio is busy with other requests; try again in a moment."
# Only the studio's own files may run script; nothing inline, no plugins, no framing by other pages.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer")]
# The endpoints that work on images (or on GAN Lab's networks), and how many images each may upload.
IMAGE_WORK = {"/api/generate": 0, "/api/latent/frame": 0, "/api/translate": 1, "/api/translate/heldout": 0,
              "/api/stylize": 2, "/api/run": 0, "/api/lab/config": 0, "/api/lab/step": 0, "/api/lab/frame.png": 0,
              "/api/lab/state": 0}


class Gate:
    """At most ``limit`` requests inside (one working, the others waiting for the lock); more are refused."""

    def __init__(self, limit: int) -> None:
        self.limit, self.inside = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.inside >= self.limit:
                return False
            self.inside += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1


class SecurityHeaders:
    """ASGI middleware, outermost: every response (errors and 500s included) gets :data:`SECURITY_HEADERS`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ImageWorkGuard:
    """ASGI middleware for the :data:`IMAGE_WORK` endpoints: a declared body over the limit is refused
    (413) and a request beyond the busy limit is refused (503), both before anything is read or queued; the
    slot taken is given back when the response is sent. A body without a declared length is counted while it
    arrives and refused once it passes the limit."""

    def __init__(self, app, gate: Gate, max_upload_bytes: int) -> None:
        self.app, self.gate, self.max_upload_bytes = app, gate, max_upload_bytes

    def limit(self, path: str) -> int:
        files = IMAGE_WORK.get(path, 0)
        return files * self.max_upload_bytes + FORM_OVERHEAD if files else MAX_BODY_BYTES

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit(scope["path"])
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _refuse(send, _too_large(int(length), scope["path"], self.max_upload_bytes), 413)
        if scope["path"] not in IMAGE_WORK:
            return await self.app(scope, _capped(receive, limit, scope["path"], self.max_upload_bytes), send)
        if not self.gate.enter():
            return await _refuse(send, BUSY, 503)
        try:
            await self.app(scope, _capped(receive, limit, scope["path"], self.max_upload_bytes), send)
        finally:
            self.gate.leave()


def _too_large(size: int | None, path: str, max_upload_bytes: int) -> str:
    files = IMAGE_WORK.get(path, 0)
    what = f"{size:,} bytes" if size is not None else "larger than that"
    if files:
        each = " an image" if files > 1 else ""
        return f"The upload is {what}; the studio takes at most {max_upload_bytes:,} bytes{each}."
    return f"The request body is {what}; the studio takes at most {MAX_BODY_BYTES:,} bytes here."


def _capped(receive, limit: int, path: str, max_upload_bytes: int):
    """``receive`` that counts the body's bytes and stops the request once they pass ``limit``."""
    seen = 0

    async def receive_capped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, _too_large(None, path, max_upload_bytes))
        return message

    return receive_capped


async def _refuse(send, message: str, status: int) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


class StudioApp(FastAPI):
    """FastAPI with :class:`SecurityHeaders` around its whole stack (Starlette's error pages included)."""

    def build_middleware_stack(self):
        return SecurityHeaders(super().build_middleware_stack())


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


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite number replaced by None: a run that blew up logs NaN losses, which JSON
    (and so the browser's JSON.parse) does not accept."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


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

    app = StudioApp(title="ganforge studio", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.index, app.state.models, app.state.lab, app.state.gate = index, models, lab, gate
    app.add_middleware(ImageWorkGuard, gate=gate, max_upload_bytes=max_upload_bytes)

    @app.exception_handler(GanforgeError)
    async def _refused(request: Request, e: GanforgeError) -> JSONResponse:
        return JSONResponse({"error": index.public(str(e))}, status_code=getattr(e, "status", 400))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": index.public(str(e.detail))}, status_code=e.status_code, headers=e.headers)

    def work(fn, *args):
        """Run ``fn`` under the model lock (one image job at a time; the guard has let the request in)."""
        with models.lock:
            return fn(*args)

    # ------------------------------------------------------------------ pages
    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ runs and the monitor
    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        return {"runs": [finite(index.summary(r)) for r in index.ids()], "presets": preset_names(),
                "can_start": index.root is not None}

    @app.get("/api/run")
    def run_info(run: str, ckpt: str = "latest") -> dict[str, Any]:
        summary = index.summary(run)
        model = None
        if summary["checkpoints"] or summary["has_best"]:
            model = work(lambda: pictures.describe(models.get(index.path(run), ckpt)))
        return finite({**summary, "info": model, "log": index.public(index.log_tail(run))})

    @app.get("/api/run/metrics")
    def run_metrics(run: str) -> dict[str, Any]:
        path = index.path(run) / "metrics.jsonl"
        return {"rows": [finite(r) for r in read_metrics(path)] if path.is_file() else []}

    @app.get("/api/run/doctor")
    def run_doctor(run: str) -> dict[str, Any]:
        """The doctor's findings over the run's metrics so far, each with its evidence plot (no model loaded)."""
        path = index.path(run)
        if not (path / "metrics.jsonl").is_file():
            return {"step": None, "findings": []}
        return finite(monitor_view(path))

    @app.get("/api/run/sample.png")
    def run_sample(run: str) -> FileResponse:
        return FileResponse(index.newest_sample(run), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/run/events")
    async def run_events(run: str, after: int = -1, poll: float = 0.5) -> StreamingResponse:
        """Server-sent events: ``row`` (each new metrics row, from the first after step ``after``), ``sample`` (a
        new fixed-noise grid), ``status`` (the run's summary); ``end`` once the run is not training and every row
        was sent."""
        path = index.path(run)
        poll = min(max(poll, 0.05), 5.0)

        async def stream():
            sent_step, sent_sample, sent_rows, last_status = after, None, 0, 0.0
            while True:
                rows = read_metrics(path / "metrics.jsonl") if (path / "metrics.jsonl").is_file() else []
                if len(rows) < sent_rows:  # a resumed run rewrote metrics.jsonl: on from the steps not sent yet
                    sent_rows = next((i for i, r in enumerate(rows) if r.get("step", 0) > sent_step), len(rows))
                for r in rows[sent_rows:]:  # every row once (several share a step: probe, training, health rows)
                    if r.get("step", 0) > after or any(k.startswith("eval_") for k in r):
                        yield f"event: row\ndata: {json.dumps(finite(r))}\n\n"
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
                    yield f"event: status\ndata: {json.dumps(finite(summary))}\n\n"
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
        return index.resume(str(body.get("run", "")), body.get("steps"))

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
    async def _upload(*files: UploadFile) -> list[torch.Tensor]:
        """Each uploaded file as an image (the guard has bounded the whole body already)."""
        images = []
        for f in files:
            data = await f.read(max_upload_bytes + 1)
            if len(data) > max_upload_bytes:
                each = " an image" if len(files) > 1 else ""
                raise StudioError(f"The upload is too large; the studio takes at most {max_upload_bytes:,} bytes"
                                  f"{each}.", 413)
            images.append(read_upload(data, max_upload_pixels))
        return images

    @app.post("/api/translate")
    async def translate(run: Annotated[str, Form()], file: Annotated[UploadFile, File()],
                        ckpt: Annotated[str, Form()] = "latest", direction: Annotated[str, Form()] = "") -> Response:
        (image,) = await _upload(file)

        def job():
            return pictures.translate(models.get(index.path(run), ckpt), image, None, direction or None)

        return _picture(await asyncio.to_thread(work, job))

    @app.post("/api/stylize")
    async def stylize(content: Annotated[UploadFile, File()], style: Annotated[UploadFile, File()],
                      size: Annotated[int, Form()] = 128, iterations: Annotated[int, Form()] = 100) -> Response:
        photo, painting = await _upload(content, style)
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
