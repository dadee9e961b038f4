"""The studio in a real browser (Playwright driving Debian's headless chromium): each page used as a person
would, checking that the picture changed and shows what the Python API draws for the same settings.
Screenshots go to $STUDIO_SCREENS (default: a temporary folder) for a person to look at."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright
from studio_fixtures import serve, studio_data  # noqa: F401  (fixture)

import ganforge
from ganforge import latent
from ganforge.studio.app import create_app

_ROOT: dict[str, Path] = {}
CHROMIUM = os.environ.get("STUDIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(studio_data):  # noqa: F811
    with serve(create_app([], studio_data["root"])) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _root(studio_data):  # noqa: F811
    _ROOT["runs"] = studio_data["root"]


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM, ("The browser tests need Debian's chromium (apt-get install chromium, or `make browser`); "
                      "set STUDIO_CHROMIUM to another chromium binary.")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    where = Path(os.environ.get("STUDIO_SCREENS") or tmp_path_factory.mktemp("studio-screens"))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def open_page(page, server, name):
    page.goto(f"{server}/#{name}")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#error")).to_be_hidden()


def natural_size(page, selector) -> tuple[int, int]:
    return tuple(page.eval_on_selector(selector, "img => [img.naturalWidth, img.naturalHeight]"))


def pixels(page, selector, step: int = 1) -> np.ndarray:
    """The <img>'s pixels (R channel), every ``step``-th row and column, read back through a canvas."""
    data = page.eval_on_selector(selector, """(img, step) => {
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data, out = [];
        for (let y = 0; y < c.height; y += step) { const row = [];
          for (let x = 0; x < c.width; x += step) row.push(d[4 * (y * c.width + x)]); out.push(row); }
        return out; }""", step)
    return np.array(data, dtype=np.uint8)


def test_generate_page_draws_the_grid_asked_for(page, server, screens):
    open_page(page, server, "generate")
    page.select_option("#gen-form select[name=run]", "dcgan")
    page.fill("#gen-form input[name=n]", "64")
    page.click("#gen-go")
    expect(page.locator("#gen-info")).to_contain_text("64 images")
    assert natural_size(page, "#gen-img") == (242, 242)  # 8 x 8 images of 28 px, 2 px padding
    first = pixels(page, "#gen-img")
    page.fill("#gen-form input[name=n]", "9")
    page.fill("#gen-form input[name=seed]", "5")
    page.click("#gen-go")
    expect(page.locator("#gen-info")).to_contain_text("9 images")
    assert natural_size(page, "#gen-img") == (92, 92)
    model = ganforge.load(_ROOT["runs"] / "dcgan")
    want = model.sample(9, seed=5)[..., 0]
    got = pixels(page, "#gen-img")
    assert np.array_equal(got[2:30, 2:30], want[0]) and np.array_equal(got[62:90, 62:90], want[8])
    assert first.shape != got.shape
    assert "format=npz" in page.get_attribute("#gen-npz", "href")
    page.screenshot(path=str(screens / "generate.png"), full_page=True)


def test_latent_page_walks_the_interpolation_of_ganforge_latent(page, server, screens):
    open_page(page, server, "latent")
    page.select_option("#lat-form select[name=run]", "dcgan")
    page.fill("#lat-form input[name=seeds]", "3,8")
    page.fill("#lat-form input[name=steps]", "6")
    page.press("#lat-form input[name=steps]", "Tab")  # a change event: the walk is resized
    slider = page.locator("#lat-pos")
    model = ganforge.load(_ROOT["runs"] / "dcgan")
    fig = latent.interpolate(model, [3, 8], steps=6)
    trips = []
    for key, position in (("Home", 0), ("End", 6), ("ArrowLeft", 5), ("ArrowLeft", 4)):
        slider.focus()
        t0 = time.perf_counter()
        page.keyboard.press(key)
        expect(page.locator("#lat-pos-text")).to_have_text(f"{position} / 6")
        trips.append(time.perf_counter() - t0)
        assert np.array_equal(pixels(page, "#lat-img", 10)[:28, :28], fig.images["grid"][0, position, 0].numpy())
    command = "ganforge latent interpolate dcgan --seeds 3,8 --steps 6 --mode slerp --out pictures"
    expect(page.locator("#lat-cmd")).to_have_text(command)
    page.click("#lat-copy")
    expect(page.locator("#lat-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == command
    before = pixels(page, "#lat-img", 10)
    page.locator(".lat-pc").first.focus()
    page.keyboard.press("End")  # PC1 to +3
    expect(page.locator("#lat-cmd")).to_contain_text("--pca 1")
    assert not np.array_equal(pixels(page, "#lat-img", 10), before)
    ms = page.evaluate("window.studio.lastRoundTripMs")
    print(f"latent slider: key press to new frame {1000 * min(trips):.0f}-{1000 * max(trips):.0f} ms "
          f"(fetch round trip {ms} ms)")
    page.screenshot(path=str(screens / "latent.png"), full_page=True)


def test_translate_page_shows_input_and_output(page, server, screens, tmp_path):
    open_page(page, server, "translate")
    page.select_option("#tr-form select[name=run]", "p2p")
    photo = tmp_path / "shirt.png"
    arr = np.zeros((48, 40), np.uint8)
    arr[8:40, 10:30] = 255
    Image.fromarray(arr).save(photo)
    page.set_input_files("#tr-file", str(photo))
    expect(page.locator("#tr-info")).to_contain_text("input | output: input 1x48x40 -> output 1x48x40")
    assert natural_size(page, "#tr-img") == (2 + 2 * 42, 52)
    got = pixels(page, "#tr-img")
    assert np.array_equal(got[2:50, 2:42], arr)  # the input panel is the upload
    model = ganforge.load(_ROOT["runs"] / "p2p")
    import torch

    out = model.translate(torch.from_numpy(arr)[None, None])[0, 0].numpy()
    assert np.array_equal(got[2:50, 44:84], out)
    page.fill("#tr-form input[name=index]", "1")
    page.click("#tr-held")
    expect(page.locator("#tr-info")).to_contain_text("input | output | target")
    assert natural_size(page, "#tr-img") == (2 + 3 * 34, 36)
    # Stylize: a photo and a style uploaded, the result drawn beside them (ganforge.stylize's picture)
    style = tmp_path / "stripes.png"
    stripes = np.zeros((24, 24, 3), np.uint8)
    stripes[::4] = (200, 30, 30)
    Image.fromarray(stripes).save(style)
    page.set_input_files("#st-content", str(photo))
    page.set_input_files("#st-style", str(style))
    page.fill("#st-form input[name=size]", "32")
    page.fill("#st-form input[name=iterations]", "5")
    page.click("#st-go")
    expect(page.locator("#st-info")).to_contain_text("photo | style | result 32x27", timeout=60_000)
    want = ganforge.stylize(torch.from_numpy(arr)[None].expand(3, -1, -1).contiguous(),
                            [torch.from_numpy(stripes).permute(2, 0, 1)], size=32, iterations=5).image
    got = pixels(page, "#st-img")
    assert np.array_equal(got[2:34, 2 + 2 * 29:2 + 2 * 29 + 27], want[0].numpy())  # red channel of the result
    page.screenshot(path=str(screens / "translate.png"), full_page=True)


def test_the_start_form_sends_the_time_budget_with_the_other_settings(page, server):
    import json

    sent = []

    def answer(route):
        sent.append(json.loads(route.request.post_data))
        route.fulfill(status=400, content_type="application/json", body=json.dumps({"error": "Not started (a test)."}))

    open_page(page, server, "monitor")
    page.route("**/api/train", answer)
    page.fill("#mon-start input[name=name]", "budgeted")
    page.fill("#mon-start input[name=steps]", "26600")
    page.fill("#mon-start input[name=max_minutes]", "2.5")
    page.click("#mon-start button[type=submit]")
    expect(page.locator("#error")).to_contain_text("Not started (a test).")
    assert len(sent) == 1 and sent[0]["name"] == "budgeted"
    assert sent[0]["settings"] == {"steps": "26600", "max_minutes": "2.5"}


def test_monitor_page_lists_runs_and_draws_curves(page, server, screens):
    open_page(page, server, "monitor")
    rows = page.locator("#mon-runs tbody tr")
    expect(rows).to_have_count(4)
    page.click("#mon-runs tr[data-run=dcgan]")
    expect(page.locator("#mon-info")).to_contain_text("finished: step 60/60")
    page.wait_for_function("() => document.querySelector('#mon-sample').naturalWidth > 0")
    colour = """(c, rgb) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2]) n++;
        return n; }"""
    assert page.eval_on_selector("#mon-loss", colour, [0x21, 0x66, 0xac]) > 50  # the loss_D curve (blue)
    assert page.eval_on_selector("#mon-loss", colour, [0xb2, 0x18, 0x2b]) > 50  # loss_G (red)
    assert page.eval_on_selector("#mon-d", colour, [0x1b, 0x78, 0x37]) > 50  # D(x) (green)
    assert natural_size(page, "#mon-sample") == Image.open(_ROOT["runs"] / "dcgan" / "samples.png").size
    expect(page.locator("#mon-runs tr[data-run=dcgan] .status")).to_have_text("finished")
    expect(page.locator("#mon-runs tr[data-run=dcgan] button")).to_have_text("Continue")  # finished: to N steps
    cells = page.locator("#mon-runs tr[data-run=dcgan] td")
    expect(cells.nth(6)).to_contain_text("fid ")  # the evaluation numbers
    expect(cells.nth(7)).to_contain_text("fid ")  # the best checkpoint: metric, value @ step
    assert "fmnist-demo" in page.inner_text("#mon-presets")
    page.screenshot(path=str(screens / "monitor.png"), full_page=True)


def test_gan_lab_trains_live_and_steps_each_player(page, server, screens):
    open_page(page, server, "lab")
    expect(page.locator("#lab-info")).to_contain_text("step 0")
    page.select_option("#lab-data", "moons2d")
    expect(page.locator("#lab-info")).to_contain_text("D updates 0")
    start = pixels(page, "#lab-img", 4)
    page.click("#lab-step-d")
    expect(page.locator("#lab-info")).to_contain_text("D updates 1, G updates 0")
    page.click("#lab-step-g")
    expect(page.locator("#lab-info")).to_contain_text("D updates 1, G updates 1")
    page.click("#lab-play")
    t0 = time.perf_counter()
    page.wait_for_function("() => /step ([3-9]\\d|\\d{3,})/.test(document.querySelector('#lab-info').textContent)",
                           timeout=60000)
    seconds = time.perf_counter() - t0
    page.click("#lab-play")
    expect(page.locator("#lab-play")).to_have_text("Play")
    assert not np.array_equal(pixels(page, "#lab-img", 4), start)
    print(f"GAN Lab: {page.inner_text('#lab-info')} ({seconds:.1f} s of play)")
    page.screenshot(path=str(screens / "lab.png"), full_page=True)
    box = page.locator("#lab-points").bounding_box()
    for fx, fy in ((0.2, 0.2), (0.3, 0.25), (0.7, 0.7), (0.8, 0.75), (0.75, 0.2)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    expect(page.locator("#lab-npoints")).to_have_text("5 points")
    page.click("#lab-use-points")
    expect(page.locator("#lab-info")).to_contain_text("step 0 (D updates 0")
    page.select_option("#lab-loss", "wgan-gp")
    page.click("#lab-step")
    expect(page.locator("#lab-info")).to_contain_text("step 1 ")
    page.screenshot(path=str(screens / "lab-points.png"), full_page=True)


def test_conditional_runs_get_class_controls_and_blend(page, server, screens):
    open_page(page, server, "generate")
    page.select_option("#gen-form select[name=run]", "dcgan")
    expect(page.locator("#gen-form label.cond")).to_be_hidden()  # an unconditional run: no class to choose
    page.select_option("#gen-form select[name=run]", "cgan")
    expect(page.locator("#gen-form label.cond")).to_be_visible()
    page.select_option("#gen-form select[name=cls]", label="Sandal")
    page.check("#gen-form input[value=seeds]")
    page.fill("#gen-form input[name=seeds]", "0-3")
    page.click("#gen-go")
    expect(page.locator("#gen-info")).to_contain_text("4 images")
    model = ganforge.load(_ROOT["runs"] / "cgan")
    import torch

    want = latent.render(model, latent.z_from_seeds([0, 1, 2, 3], 16), torch.full((4,), 5))
    got = pixels(page, "#gen-img")
    assert np.array_equal(got[2:30, 2:30], want[0, 0].numpy()) and np.array_equal(got[32:60, 32:60], want[3, 0].numpy())
    page.goto(f"{server}/#latent")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#lat-form select[name=run]", "cgan")
    expect(page.locator("#lat-form fieldset.cond")).to_be_visible()
    page.fill("#lat-form input[name=seeds]", "3,4")
    page.press("#lat-form input[name=seeds]", "Tab")
    page.select_option("#lat-blend-a", label="Trouser")
    page.select_option("#lat-blend-b", label="Sneaker")
    page.check("#lat-blend-on")
    page.locator("#lat-blend").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # 0.3 of the way from Trouser to Sneaker
    expect(page.locator("#lat-cmd")).to_contain_text("--classes 1,7 --seed 3 --steps 10")
    blend = latent.interpolate_classes(model, [1, 7], seeds=[3], steps=10)
    want = blend.images["grid"][0, 3, 0].numpy()
    end = time.monotonic() + 10  # the frames of the three presses arrive in turn; the last one must be this
    while not np.array_equal(pixels(page, "#lat-img", 10)[:28, :28], want):
        assert time.monotonic() < end, "the class blend at 0.3 was not shown"
        time.sleep(0.1)
    page.screenshot(path=str(screens / "latent-classes.png"), full_page=True)
