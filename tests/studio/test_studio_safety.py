"""The studio as a local server that is safe to open on any folder of runs: security headers on every answer,
the busy limit taken before an upload is read, bodies bounded while they arrive, messages that name runs by
their ids, finished runs that continue only to a number of steps beyond theirs, and training settings
checked by the same configuration code as the command line's."""

from __future__ import annotations

import io
import re
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from studio_fixtures import serve, studio_data  # noqa: F401  (fixture)

from ganforge.api import toy_config
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.studio.app import BUSY, CSP, create_app
from ganforge.studio.runs import RunIndex

BUSY_SENTENCE = "The studio is busy with other requests; try again in a moment."


def png_file(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def raw_request(port: int, head: bytes, seconds: float = 5.0) -> tuple[int, bytes, float]:
    """Send ``head`` (request line and headers, no body) and read the answer: (status, body, seconds taken)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1], time.monotonic() - t0


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


# ----------------------------------------------------------------------------- headers
def test_every_answer_carries_the_content_security_policy(studio_data):  # noqa: F811
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP and "object-src 'none'" in CSP
    with TestClient(create_app([], studio_data["root"], busy_limit=0)) as c:
        answers = [c.get("/"), c.get("/static/app.js"), c.get("/static/style.css"), c.get("/api/runs"),
                   c.get("/api/run/metrics", params={"run": "nothere"}), c.get("/nowhere"),
                   c.get("/api/generate", params={"run": "dcgan"})]  # busy_limit 0: every image request is busy
        for r in answers:
            assert r.headers["content-security-policy"] == CSP, r.url
            assert r.headers["x-content-type-options"] == "nosniff"
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 404, 404, 503]
        assert answers[-1].json() == {"error": BUSY}
        html = answers[0].text
    # the page holds no inline script, handler or style, which the policy would block
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/app.js">']
    assert '<script src="/static/app.js"></script>' in html
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html, re.IGNORECASE) and "style=" not in html and "<style" not in html
    assert "javascript:" not in html.lower()


# ----------------------------------------------------------------------------- the busy limit on uploads
def test_the_ninth_concurrent_translate_or_stylize_is_told_busy_at_once(studio_data):  # noqa: F811
    """30 translates and 10 stylizes of a large PNG at once while the model lock is held: 8 are let in (and wait),
    the other 32 are answered 503 while those 8 still wait, and the 8 are drawn once the lock is free."""
    big = png_file(np.random.default_rng(0).integers(0, 255, (700, 700), dtype=np.uint8))
    assert len(big) > 400_000
    small = png_file(np.zeros((24, 24, 3), np.uint8))
    app = create_app([], studio_data["root"])
    results: list[tuple[str, int, float, dict]] = []
    with TestClient(app) as c:
        assert c.post("/api/translate", data={"run": "p2p"}, files={"file": ("x.png", small, "image/png")}).is_success

        def translate():
            t0 = time.monotonic()
            r = c.post("/api/translate", data={"run": "p2p"}, files={"file": ("x.png", big, "image/png")})
            results.append(("translate", r.status_code, time.monotonic() - t0, {} if r.is_success else r.json()))

        def stylize():
            t0 = time.monotonic()
            r = c.post("/api/stylize", data={"size": 16, "iterations": 1},
                       files={"content": ("p.png", big, "image/png"), "style": ("s.png", small, "image/png")})
            results.append(("stylize", r.status_code, time.monotonic() - t0, {} if r.is_success else r.json()))

        lock = app.state.models.lock
        lock.acquire()  # the one image job "working": everything let in waits behind it
        try:
            threads = [threading.Thread(target=translate) for _ in range(30)]
            threads += [threading.Thread(target=stylize) for _ in range(10)]
            for t in threads:
                t.start()
            end = time.monotonic() + 120
            while len(results) < 32 and time.monotonic() < end:
                time.sleep(0.05)
            busy = list(results)
            assert app.state.gate.inside == 8  # the 8 let in still wait for the lock
        finally:
            lock.release()
        for t in threads:
            t.join(120)
    assert len(busy) == 32 and {code for _, code, _, _ in busy} == {503}, busy
    assert all(body == {"error": BUSY_SENTENCE} for *_, body in busy)
    assert {kind for kind, *_ in busy} == {"translate", "stylize"}
    codes = sorted(code for _, code, _, _ in results)
    assert codes == [200] * 8 + [503] * 32 and app.state.gate.inside == 0
    print(f"busy answers within {max(s for _, _, s, _ in busy):.2f} s while 8 requests waited")


def test_a_busy_upload_is_refused_before_its_body_is_read(studio_data):  # noqa: F811
    """A request that declares 5 MB and sends none of it gets its 503 (or its 413) at once: nothing waits for the
    body. The one slot is held by a generate waiting for the model lock."""
    app = create_app([], studio_data["root"], busy_limit=1, max_upload_bytes=2_000_000)
    with serve(app) as port:
        import urllib.request

        lock = app.state.models.lock
        lock.acquire()
        waiting = threading.Thread(target=lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/generate?run=dcgan&n=1", timeout=60).read())
        try:
            waiting.start()
            end = time.monotonic() + 20
            while app.state.gate.inside < 1 and time.monotonic() < end:
                time.sleep(0.02)
            assert app.state.gate.inside == 1
            for path in ("/api/translate", "/api/stylize"):
                head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                        f"Content-Length: 1900000\r\n\r\n").encode()
                status, body, seconds = raw_request(port, head)
                assert status == 503 and seconds < 2, (status, body, seconds)
                assert BUSY_SENTENCE.encode() in body
        finally:
            lock.release()
            waiting.join(60)
        head = (b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 999999999\r\n\r\n")
        status, body, seconds = raw_request(port, head)
        assert status == 413 and seconds < 2
        assert b"The upload is 999,999,999 bytes; the studio takes at most 2,000,000 bytes." in body


def test_a_body_without_a_declared_length_is_cut_off_at_the_limit(studio_data):  # noqa: F811
    sent = []

    def chunks():  # 2 MB in chunked transfer encoding (no Content-Length)
        for _ in range(32):
            sent.append(1)
            yield b"--b\r\n" + b"x" * 65536

    with TestClient(create_app([], studio_data["root"], max_upload_bytes=5000)) as c:
        r = c.post("/api/translate", content=chunks(),
                   headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413, r.text
        assert r.json()["error"] == "The upload is larger than that; the studio takes at most 5,000 bytes." \
            or "at most 5,000 bytes" in r.json()["error"]
        assert c.app.state.gate.inside == 0
        r = c.post("/api/lab/config", content=(b" " * 65536 for _ in range(40)),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "at most 1,048,576 bytes" in r.json()["error"]


# ----------------------------------------------------------------------------- runs named by their ids
def test_messages_name_runs_by_id_never_by_their_folder(studio_data, tmp_path):  # noqa: F811
    root = studio_data["root"]
    elsewhere = tmp_path / "elsewhere" / "given-run"
    shutil.copytree(root / "p2p", elsewhere)
    with TestClient(create_app([elsewhere], root)) as c:
        for run in ("p2p", "given-run"):
            r = c.get("/api/generate", params={"run": run})
            message = r.json()["error"]
            assert r.status_code == 400 and f"'{run}/checkpoints/step_" in message, message
            assert str(root) not in message and str(tmp_path) not in message
        index = c.app.state.index
        text = (f"'{root / 'dcgan'}' is already at step 60; and {elsewhere}/checkpoints/step_30 and {root} and "
                f"{tmp_path / 'data' / 'edges'} and http://127.0.0.1:7860/ and dcgan/samples and 1/2.")
        assert index.public(text) == ("'dcgan' is already at step 60; and given-run/checkpoints/step_30 and the runs "
                                      "root and .../edges and http://127.0.0.1:7860/ and dcgan/samples and 1/2.")
        r = c.post("/api/run/resume", json={"run": "dcgan", "steps": 30})
        message = r.json()["error"]
        assert r.status_code == 400 and message.startswith("'dcgan' is already at step 60"), message
        assert str(root) not in message


def test_the_runs_index_maps_a_given_folder_with_a_longer_sibling(tmp_path):
    for name in ("a", "a-b"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
    index = RunIndex([tmp_path / "a", tmp_path / "a-b"], None)
    assert index.public(f"{tmp_path / 'a-b'} then {tmp_path / 'a'}.") == "a-b then a."
    odd = "x>y (1)"
    (tmp_path / "root" / odd / "checkpoints").mkdir(parents=True)
    index = RunIndex([], tmp_path / "root")
    text = f'"{tmp_path / "root" / odd}/checkpoints/step_1" is odd.'
    assert index.public(text) == f'"{odd}/checkpoints/step_1" is odd.'


# ----------------------------------------------------------------------------- finished runs
def test_a_finished_run_continues_only_to_more_steps_and_stays_finished(studio_data, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")
    root = tmp_path / "runs"
    shutil.copytree(studio_data["root"] / "dcgan", root / "done")
    with TestClient(create_app([], root)) as c:
        def listed():
            return {r["id"]: r for r in c.get("/api/runs").json()["runs"]}["done"]

        run = listed()
        assert run["status"] == "finished" and run["offer"] == {"action": "continue", "min_steps": 61}
        for steps, words in ((None, "already at step 60"), (60, "already at step 60"),
                             (12, "already at step 60"), ("abc", "steps must be an integer")):
            r = c.post("/api/run/resume", json={"run": "done", "steps": steps})
            assert r.status_code == 400 and words in r.json()["error"], r.text
            assert r.json()["error"].count(".") >= 1 and str(root) not in r.json()["error"]
            assert not c.app.state.index.processes and listed()["status"] == "finished"
        started = c.post("/api/run/resume", json={"run": "done", "steps": 62})
        assert started.status_code == 200 and "steps=62" in started.json()["command"], started.text
        index = c.app.state.index
        assert index.processes["done"].popen.wait(180) == 0, index.log_tail("done")
        run = listed()
        assert run["status"] == "finished" and run["step"] == 62 and run["checkpoints"][-1] == 62
        assert run["offer"] == {"action": "continue", "min_steps": 63}


def test_a_stopped_run_is_offered_resume(tmp_path):
    root = tmp_path / "runs"
    (root / "half" / "checkpoints" / "step_00000010").mkdir(parents=True)
    (root / "half" / "config.json").write_text('{"model": "dcgan", "total_steps": 100}')
    with TestClient(create_app([], root)) as c:
        run = c.get("/api/runs").json()["runs"][0]
    assert run["status"] == "stopped" and run["offer"] == {"action": "resume", "min_steps": None}


# ----------------------------------------------------------------------------- settings: the command line's checks
def cli_error(capsys, tmp_path, *overrides: str) -> str:
    assert main(["train", "--config", "fmnist-demo", "--out", str(tmp_path / "never"), *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: "), err
    return err[len("ganforge: error: "):]


@pytest.mark.parametrize("settings, override", [
    ({"lr_g": -1}, "lr_g=-1"), ({"steps": "abc"}, "steps=abc"), ({"lr_d": "fast"}, "lr_d=fast"),
    ({"batch_size": 0}, "batch_size=0"), ({"ema_decay": 1.5}, "ema_decay=1.5"), ({"precision": "fp8"}, "precision=fp8"),
    ({"steps": 10, "epochs": 2}, "epochs=2"), ({"max_minutes": 0}, "max_minutes=0"),
    ({"max_minutes": "soon"}, "max_minutes=soon"),
])
def test_a_bad_setting_gets_the_command_lines_sentence(tmp_path, capsys, settings, override):
    extra = ["steps=10"] if "epochs" in settings else []
    want = cli_error(capsys, tmp_path, *extra, override)
    with TestClient(create_app([], tmp_path)) as c:
        r = c.post("/api/train", json={"preset": "fmnist-demo", "name": "a", "settings": settings})
        assert r.status_code == 400 and r.json()["error"] == want, (r.text, want)
        assert not c.app.state.index.processes


def test_the_studio_sets_the_train_config_fields_and_nothing_else(tmp_path):
    import dataclasses

    from ganforge.config import TrainConfig
    from ganforge.studio import runs

    loop = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(runs.SETTABLE) <= loop and {"lr_g", "lr_d", "steps", "batch_size", "optimizer", "beta1"} <= set(
        runs.SETTABLE)
    assert not hasattr(runs, "TRAIN_SETTINGS")
    with TestClient(create_app([], tmp_path)) as c:
        for key in ("data_root", "model", "model_options", "out"):
            r = c.post("/api/train", json={"preset": "fmnist-demo", "name": "a", "settings": {key: "x"}})
            assert r.status_code == 400 and f"Unknown training setting {key!r}" in r.json()["error"]


@pytest.mark.parametrize("body, flags", [
    ({"lr_g": "abc"}, {"lr_g": "abc"}), ({"lr_d": -1}, {"lr_d": -1}), ({"seed": 1.5}, {"seed": 1.5}),
    ({"lr_g": 0}, {"lr_g": 0}),
])
def test_gan_lab_settings_are_checked_by_the_toy_config(body, flags):
    with pytest.raises(GanforgeError) as e:
        toy_config("ring2d", flags)
    with TestClient(create_app([], None)) as c:
        r = c.post("/api/lab/config", json=body)
    assert r.status_code == 400 and r.json()["error"] == str(e.value)
