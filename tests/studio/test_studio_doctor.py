"""The doctor on the studio's monitor page: /api/run/doctor, and the banner (severity, sentence, fix, evidence plot
with the onset marked) in a real browser for a run made to diverge (learning rates of 5), nothing for a healthy
run, and text that looks like HTML shown as text. The banner's screenshot goes to $STUDIO_SCREENS/doctor_banner.png.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect, sync_playwright
from studio_fixtures import serve
from test_studio_browser import CHROMIUM

import ganforge
from conftest import make_idx_dataset, tiny_config
from ganforge.studio.app import create_app

HOSTILE = '<img src=x onerror="document.body.dataset.owned=1">'


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/diverged (learning rates of 5: the weights blow up), runs/healthy (the same, lr 2e-4), and runs/crafted
    (hand-written rows: a NaN loss, with a precision in config.json that is an HTML tag)."""
    base = tmp_path_factory.mktemp("doctor-studio")
    data = make_idx_dataset(base / "fmnist")
    root = base / "runs"
    common = {"steps": 8, "log_every": 2, "health_every": 2, "sample_every": 4, "ckpt_every": 0}
    ganforge.train(tiny_config(data, lr_g=5.0, lr_d=5.0, **common), root / "diverged")
    ganforge.train(tiny_config(data, **common), root / "healthy")
    crafted = root / "crafted"
    crafted.mkdir()
    rows = [{"step": s, "loss_D": 1.0, "loss_G": 1.0} for s in (2, 4)] + [{"step": 6, "loss_D": float("nan"),
                                                                          "loss_G": 1.0}]
    (crafted / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (crafted / "config.json").write_text(json.dumps({"model": "dcgan", "config": {"precision": HOSTILE}}))
    return root


def test_the_doctor_endpoint_gives_findings_with_their_evidence_plot(runs):
    with TestClient(create_app([], runs)) as c:
        d = c.get("/api/run/doctor", params={"run": "diverged"}).json()
        assert d["step"] == 8
        [f] = d["findings"]
        assert (f["kind"], f["severity"], f["first_step"]) == ("divergence", "error", 2)
        assert f["plot"]["onset"] == 2 and f["plot"]["series"]["weight_norm G"][0][0] == 0  # from the step-0 probe
        assert f["evidence"]["growth"] > 10
        assert c.get("/api/run/doctor", params={"run": "healthy"}).json()["findings"] == []
        assert c.get("/api/run/doctor", params={"run": "elsewhere"}).status_code == 404


@pytest.fixture(scope="module")
def page(runs):
    assert CHROMIUM, "The browser tests need Debian's chromium (apt-get install chromium)."
    with serve(create_app([], runs)) as port, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(f"http://127.0.0.1:{port}/#monitor")
        pg.wait_for_selector("body[data-ready='1']")
        yield pg
        browser.close()
        assert not errors, errors


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    where = Path(os.environ.get("STUDIO_SCREENS") or tmp_path_factory.mktemp("doctor-screens"))
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_the_monitor_shows_a_diverged_runs_finding_as_a_banner_with_its_plot(page, screens):
    page.click("#mon-runs tr[data-run=diverged]")
    card = page.locator("#mon-doctor .finding.error[data-kind=divergence]")
    expect(card).to_be_visible()
    expect(card).to_contain_text("ERROR divergence (from step 2): Training blew up")
    expect(card).to_contain_text("Fix: lr_g=0.5 lr_d=0.5")
    expect(card).to_contain_text("growth=")
    orange = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4)
          if (Math.abs(d[i] - 0xe6) < 40 && Math.abs(d[i + 1] - 0x51) < 40 && d[i + 2] < 40) n++;
        return n; }"""
    assert card.locator("canvas").evaluate(orange) > 50  # the onset's dashed line and its label
    expect(page.locator("#mon-info")).to_contain_text("finished: step 8/8")  # the loss curves are drawn too
    page.locator("#page-monitor").screenshot(path=str(screens / "doctor_banner.png"))


def test_a_healthy_run_shows_no_banner(page):
    page.click("#mon-runs tr[data-run=healthy]")
    expect(page.locator("#mon-doctor")).to_have_attribute("data-run", "healthy")  # the doctor's answer is in
    expect(page.locator("#mon-doctor")).to_be_hidden()
    expect(page.locator("#mon-doctor .finding")).to_have_count(0)


def test_strings_in_the_banner_are_text_never_html(page):
    page.click("#mon-runs tr[data-run=crafted]")
    card = page.locator("#mon-doctor .finding[data-kind=divergence]")
    expect(card).to_contain_text(f"precision={HOSTILE}")
    expect(card.locator("canvas")).to_have_attribute("aria-label", "evidence: the losses")  # no weight norms logged
    assert card.locator("img").count() == 0
    assert page.evaluate("document.body.dataset.owned") is None
