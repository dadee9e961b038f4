"""Training from the studio: a run started from a preset in its own ``python -m ganforge train`` process,
streamed while it trains, stopped cleanly (SIGINT: a checkpoint of the step reached) and resumed; and the
``ganforge studio`` command line."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from ganforge.cli import main
from ganforge.studio.app import create_app


def wait_for(check, seconds: float, what: str):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_start_stream_stop_and_resume_a_run(tmp_path, monkeypatch):
    from conftest import make_idx_dataset

    monkeypatch.setenv("GANFORGE_DATA", str(make_idx_dataset(tmp_path / "fmnist")))
    root = tmp_path / "runs"
    root.mkdir()
    with TestClient(create_app([], root)) as c:
        settings = {"steps": 3000, "batch_size": 8, "log_every": 2, "sample_every": 10, "ckpt_every": 100000}
        started = c.post("/api/train", json={"preset": "fmnist-demo", "name": "live", "settings": settings}).json()
        assert started["command"][:6] == ["python", "-m", "ganforge", "train", "--config", "fmnist-demo"]
        assert "steps=3000" in started["command"]
        refused = c.post("/api/train", json={"preset": "fmnist-demo", "name": "live", "settings": {}})
        assert refused.status_code == 409 and "already training" in refused.json()["error"]
        index = c.app.state.index
        wait_for(lambda: len(c.get("/api/run/metrics", params={"run": "live"}).json()["rows"]) >= 2, 120,
                 "two metrics rows")
        summary = c.get("/api/runs").json()["runs"][0]
        assert summary["id"] == "live" and summary["status"] == "running" and summary["eta_s"] > 0
        with c.stream("GET", "/api/run/events", params={"run": "live", "poll": 0.1}) as s:
            first = [line for _, line in zip(range(6), s.iter_lines(), strict=False)]  # a live stream: read a little
        assert first[0] == "event: row" and json.loads(first[1][6:])["step"] == 2
        assert c.post("/api/run/stop", json={"run": "live"}).json()["signal"] == "SIGINT"
        code = index.processes["live"].popen.wait(120)
        assert code == 130, index.log_tail("live")  # ganforge's clean stop after SIGINT
        s = c.get("/api/run", params={"run": "live"}).json()
        assert s["status"] == "stopped" and 0 < s["step"] < 3000 and s["checkpoints"] == [s["step"]]
        assert "interrupted at step" in s["log"]
        refused = c.post("/api/run/stop", json={"run": "live"})
        assert refused.status_code == 409 and "not training" in refused.json()["error"]
        c.post("/api/run/resume", json={"run": "live", "steps": s["step"] + 2})
        assert index.processes["live"].popen.wait(120) == 0, index.log_tail("live")
        done = c.get("/api/run", params={"run": "live"}).json()
        assert done["status"] == "finished" and done["step"] == s["step"] + 2 == done["checkpoints"][-1]


@pytest.mark.parametrize("body, status, words", [
    ({"preset": "nope", "name": "a"}, 400, "Unknown preset"),
    ({"preset": "fmnist-demo", "name": "../a"}, 403, "not allowed"),
    ({"preset": "fmnist-demo", "name": "a/b"}, 400, "one plain folder name"),
    ({"preset": "fmnist-demo", "name": "a", "settings": {"data_root": "/etc"}}, 400, "Unknown training setting"),
    ({"preset": "fmnist-demo", "name": "a", "settings": {"steps": "many"}}, 400, "steps must be an integer"),
])
def test_starting_a_run_refuses_bad_settings(tmp_path, body, status, words):
    with TestClient(create_app([], tmp_path)) as c:
        r = c.post("/api/train", json=body)
        assert r.status_code == status and words in r.json()["error"], r.text
        assert not c.app.state.index.processes
        r = c.post("/api/run/resume", json={"run": "a", "steps": -3})
        assert r.status_code == 404 and r.json()["error"].startswith("No run 'a' here")


def test_the_command_line_serves_the_app_and_warns_off_localhost(monkeypatch, capsys, tmp_path):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: served.update(app=app, host=host, port=port))
    assert main(["studio", "--runs-root", str(tmp_path), "--port", "7999"]) == 0
    assert served["host"] == "127.0.0.1" and served["port"] == 7999
    assert "warning" not in capsys.readouterr().err
    assert main(["studio", "--runs-root", str(tmp_path), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "anyone who can reach this machine on the network can use the studio" in err
    assert main(["studio", str(tmp_path / "missing")]) == 2
    assert "No run folder at" in capsys.readouterr().err
    assert main(["studio", "--port", "0"]) == 2


def test_ganforge_studio_serves_the_page_and_quits_on_ctrl_c(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "studio", "--runs-root", str(tmp_path), "--port",
                             str(port)], stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        def page():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return None

        html = wait_for(page, 60, "the studio to answer")
        assert "<title>ganforge studio</title>" in html and "/static/app.js" in html
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/app.js", timeout=5) as r:
            assert b"EventSource" in r.read()
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, err
    assert f"ganforge studio: http://127.0.0.1:{port}/" in err
