"""The studio in a real browser, opened on a folder of runs with hostile names: nothing from the server runs as
script (names are shown as text, and the Content-Security-Policy blocks inline script); a panel shows that
it is busy and draws only its latest request's answer; a finished run offers "continue to N steps"."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from studio_fixtures import serve, studio_data  # noqa: F401  (fixture)
from test_studio_browser import browser, natural_size, pixels  # noqa: F401  (fixtures and helpers)

from ganforge.studio.app import create_app

TITLE = "ganforge studio"
EVIL_RUN = "<img src=x onerror=document.title='XSS'+1>"
EVIL_CLASSES = ["</option></select><img src=x onerror=document.title='XSS'+2>",
                "<script>document.title='XSS3'</script>", "\" autofocus onfocus=\"document.title='XSS4'", "Trouser",
                "Pullover", "Dress", "Coat", "Sandal", "Shirt", "<b>bold</b>"]


def hostile_root(base: Path, runs: Path) -> Path:
    """A runs root holding the dcgan run under a name that is HTML, and the cgan run with HTML class names."""
    root = base / "hostile"
    shutil.copytree(runs / "dcgan", root / EVIL_RUN)
    shutil.copytree(runs / "cgan", root / "classes")
    shutil.copytree(runs / "p2p", root / "p2p")
    for meta in (root / "classes" / "checkpoints").glob("step_*/meta.json"):
        data = json.loads(meta.read_text())
        data.setdefault("pipeline", {})["class_names"] = EVIL_CLASSES
        meta.write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def hostile(studio_data, tmp_path_factory):  # noqa: F811
    root = hostile_root(tmp_path_factory.mktemp("hostile"), studio_data["root"])
    with serve(create_app([], root)) as port:
        yield f"http://127.0.0.1:{port}", root


@pytest.fixture
def page(browser, hostile):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors, violations = [], []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    pg.violations = violations
    yield pg
    context.close()
    assert not errors, errors


def ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def nothing_ran(page) -> None:
    assert page.title() == TITLE
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"], script:not([src]), b, i').length") == 0


def test_hostile_run_and_class_names_are_shown_as_text(page, hostile):
    server, _ = hostile
    ready(page, f"{server}/#generate")
    runs = page.locator("#gen-form select[name=run] option")
    expect(runs).to_have_text([EVIL_RUN, "classes"])  # the runs that sample from noise, by their literal names
    page.select_option("#gen-form select[name=run]", "classes")
    expect(page.locator("#gen-form label.cond")).to_be_visible()
    expect(page.locator("#gen-form select[name=cls] option")).to_have_text(["one row per class", *EVIL_CLASSES])
    page.select_option("#gen-form select[name=cls]", label=EVIL_CLASSES[0])
    page.click("#gen-go")
    expect(page.locator("#gen-info")).to_contain_text("images, step 4")
    page.goto(f"{server}/#latent")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#lat-form select[name=run]", "classes")
    expect(page.locator("#lat-blend-a option")).to_have_text(EVIL_CLASSES)
    nothing_ran(page)
    # the monitor's table and title
    page.goto(f"{server}/#monitor")
    page.wait_for_selector("body[data-ready='1']")
    first = page.locator("#mon-runs tbody tr td:first-child")
    expect(first).to_have_text([EVIL_RUN, "classes", "p2p"])
    page.locator("#mon-runs tbody tr").nth(0).click()
    expect(page.locator("#mon-title")).to_have_text(EVIL_RUN)
    expect(page.locator("#mon-info")).to_contain_text("finished: step 60/60")
    page.wait_for_function("() => document.querySelector('#mon-sample').naturalWidth > 0")
    # an error about the hostile run, shown as text
    page.goto(f"{server}/#generate")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#gen-form select[name=run]", EVIL_RUN)
    expect(page.locator("#gen-form label.cond")).to_be_hidden()  # the run's details have arrived
    page.check("#gen-form input[value=seeds]")
    page.fill("#gen-form input[name=seeds]", "<i>a</i>")
    page.click("#gen-go")
    expect(page.locator("#error")).to_have_text(
        "Cannot read the seeds '<i>a</i>'; write seeds as 1,5,9 or a range such as 0-15.")
    time.sleep(0.3)  # any handler that slipped in has had its chance to run
    nothing_ran(page)
    assert not page.violations, page.violations  # nothing even tried to run inline


def test_the_policy_blocks_inline_script_that_gets_into_the_page(page, hostile):
    """Were a string ever inserted as HTML, the Content-Security-Policy still keeps its handler from running."""
    server, _ = hostile
    ready(page, f"{server}/#generate")
    page.evaluate("""() => {
        window.blocked = [];
        document.addEventListener('securitypolicyviolation', (e) => window.blocked.push(e.violatedDirective));
        document.body.insertAdjacentHTML('beforeend', `<img src="x" onerror="document.title='XSS'">`);
        const s = document.createElement('script'); s.textContent = "document.title = 'XSS2'"; document.body.append(s);
    }""")
    page.wait_for_function("() => window.blocked.length >= 2")
    assert page.title() == TITLE
    assert all(d.startswith("script-src") for d in page.evaluate("window.blocked"))


def test_a_panel_is_busy_and_draws_only_its_latest_answer(page, hostile, tmp_path):
    """A held-out image asked for first and answered last must not replace the upload asked for after it."""
    server, _ = hostile
    ready(page, f"{server}/#translate")
    page.select_option("#tr-form select[name=run]", "p2p")
    held = []
    page.route("**/api/translate/heldout*", lambda route: held.append(route))  # held back until released
    page.click("#tr-held")
    page.wait_for_function("() => document.querySelector('#tr-panel').getAttribute('aria-busy') === 'true'")
    expect(page.locator("#tr-panel")).to_have_attribute("aria-busy", "true")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the held-out request was not sent"
    photo = tmp_path / "shirt.png"
    arr = np.zeros((40, 36), np.uint8)
    arr[6:34, 8:28] = 200
    Image.fromarray(arr).save(photo)
    page.set_input_files("#tr-file", str(photo))
    expect(page.locator("#tr-info")).to_contain_text("input | output: input 1x40x36")
    expect(page.locator("#tr-panel")).to_have_attribute("aria-busy", "false")
    upload = pixels(page, "#tr-img")
    try:
        held[0].continue_()  # the older answer arrives now (its request was given up: the page must ignore it)
    except Exception:  # noqa: BLE001 - an aborted request may no longer be continued
        pass
    page.unroute("**/api/translate/heldout*")
    page.wait_for_timeout(1500)
    expect(page.locator("#tr-info")).to_contain_text("input | output: input 1x40x36")
    assert np.array_equal(pixels(page, "#tr-img"), upload) and natural_size(page, "#tr-img") == (2 + 2 * 38, 44)
    # the other way round: the newer request is the held-out one, and it is drawn
    page.click("#tr-held")
    expect(page.locator("#tr-info")).to_contain_text("input | output | target")


def test_a_finished_run_offers_continue_to_n_steps(page, hostile):
    server, root = hostile
    ready(page, f"{server}/#monitor")
    row = page.locator("#mon-runs tbody tr").nth(0)
    expect(row.locator(".status")).to_have_text("finished")
    expect(row.locator("button")).to_have_text("Continue")
    steps = row.locator("input.mon-steps")
    expect(steps).to_have_attribute("min", "61")
    steps.fill("40")
    row.locator("button").click()
    expect(page.locator("#error")).to_have_text(
        f"{EVIL_RUN!r} is already at step 60; --steps is the total to reach, so give more than 60 to train further.")
    assert str(root) not in page.inner_text("#error")
    expect(row.locator(".status")).to_have_text("finished")
    expect(page.locator("#mon-runs tbody tr").nth(1).locator("input.mon-steps")).to_have_attribute("min", "5")
    nothing_ran(page)
