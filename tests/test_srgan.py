"""The srgan family: the paper's schedule, the content loss, upscale (API and command) and the SR evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import ganforge
from ganforge.checkpoint import resolve_checkpoint
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.families.srgan_eval import detail_ratio, lpips_random, tiles
from ganforge.metrics.kid import mmd2_biased, polynomial_kernel
from ganforge.metrics.sr import bicubic_downscale, bicubic_upscale, psnr_y, ssim_y
from ganforge.style.features import IMAGENET_MEAN, IMAGENET_STD, RandomMultiScale
from ganforge.train.run import build_task
from ganforge.viz.sr import detail_box, side_by_side

TINY = {"model_options": {"blocks": 1, "features": 4, "scale": 2, "d_features": 4, "d_dense": 8},
        "image_size": 16, "batch_size": 2, "log_every": 1, "sample_every": 0, "ckpt_every": 1, "n_samples": 2,
        "progress": False, "device": "cpu", "keep_ckpts": 10}


def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 9 + yy * 3) % 256, 128 + 100 * np.sin(yy / 3.0), (xx * yy) % 256], -1)
    return (base + rng.integers(0, 30, (h, w, 3))).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sr") / "photos"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(photo(24 + 2 * i, 30 - i, i)).save(folder / f"p{i}.png")
    return folder


def config(photos, **overrides):
    values = {"model": "srgan", "data": str(photos), "steps": 4, "task_options": {"mse_steps": 2, "random_filters": 4},
              **TINY}
    values.update(overrides)
    return ganforge.resolve_config(flags=values)


@pytest.fixture(scope="module")
def run(photos, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_OFFLINE", "1")
        path = tmp_path_factory.mktemp("runs") / "sr"
        ganforge.train(config(photos), path)
    return path


def _weights(run, step):
    return load_file(str(resolve_checkpoint(run, str(step)) / "weights.safetensors"))


def test_mse_stage_then_gan_stage_and_the_srresnet_is_kept(run):
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r for r in rows if any(k.startswith("loss") for k in r)}
    assert set(losses[1]) >= {"loss_G_mse"} and "loss_D" not in losses[1] and "loss_G_content" not in losses[2]
    assert {"loss_D", "loss_G_content", "loss_G_adv", "D_real", "D_fake"} <= set(losses[3])
    w = {step: _weights(run, step) for step in (1, 2, 3, 4)}
    g = [k[2:] for k in w[2] if k.startswith("G.")]
    # SRResNet stage: D untouched (no gradients), G_mse follows G
    assert all(torch.equal(w[1][k], w[2][k]) for k in w[1] if k.startswith("D."))
    assert all(torch.equal(w[s][f"G.{k}"], w[s][f"G_mse.{k}"]) for s in (1, 2) for k in g)
    # GAN stage: D learns, G moves on, G_mse stays the SRResNet of step 2
    assert any(not torch.equal(w[2][k], w[3][k]) for k in w[2] if k.startswith("D."))
    assert all(torch.equal(w[4][f"G_mse.{k}"], w[2][f"G.{k}"]) for k in g)
    assert any(not torch.equal(w[4][f"G.{k}"], w[2][f"G.{k}"]) for k in g)


def test_content_loss_matches_an_independent_computation(photos):
    task = build_task(config(photos), {**TINY["model_options"], "image_size": 16})
    sr, hr = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    net = RandomMultiScale((3, 5, 7, 11), 4, seed=0)  # the default random network, built again

    def maps(x):
        x = ((x + 1) / 2 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return [F.relu(F.conv2d(x, c.weight, c.bias)) for c in net.convs]

    want = np.mean([float(((a - b) ** 2).mean()) for a, b in zip(maps(sr), maps(hr), strict=True)])
    assert float(task.content_loss(sr, hr)) == pytest.approx(want, rel=1e-5)
    mse = build_task(config(photos, task_options={"content": "mse"}), {**TINY["model_options"], "image_size": 16})
    assert float(mse.content_loss(sr, hr)) == pytest.approx(float(((sr - hr) ** 2).mean()), rel=1e-6)
    scaled = build_task(config(photos, task_options={"feature_scale": 2.0, "random_filters": 4}),
                        {**TINY["model_options"], "image_size": 16})
    assert float(scaled.content_loss(sr, hr)) == pytest.approx(want / 4, rel=1e-5)


def test_bad_task_options_are_one_sentence(photos, tmp_path):
    for options, message in (({"content": "l1"}, "Unknown content loss 'l1' (task.content); choose features or mse."),
                             ({"mse_steps": -1}, "task.mse_steps must be zero or positive, got -1."),
                             ({"network": "vgg19"}, "GANFORGE_OFFLINE=1 forbids downloading them")):
        with pytest.raises(GanforgeError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            ganforge.train(config(photos, task_options=options), tmp_path / "never")
    with pytest.raises(GanforgeError, match="srgan cannot train with precision fp16: its D gets no gradients"):
        ganforge.train(config(photos, precision="fp16"), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_srresnet_trains_on_mse_alone_and_exports_with_the_bicubic_skip(photos, tmp_path):
    from ganforge import export as gexport

    options = {"blocks": 1, "features": 4, "scale": 2, "bicubic_skip": True}
    ganforge.train(config(photos, model="srresnet", steps=2, model_options=options), tmp_path / "r")
    model = ganforge.load(tmp_path / "r")
    assert set(model.nets) == {"G"} and model.networks() == ["srresnet"] and model.nets["G"].bicubic_skip
    rows = [json.loads(r) for r in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all("loss_D" not in r for r in rows) and any("loss_G_mse" in r for r in rows)
    x = torch.rand(3, 3, 5, 9) * 2 - 1
    with torch.no_grad():
        want = model.forward(model.generator().eval(), {"A": x}).numpy()
    for fmt in gexport.FORMATS:  # the bicubic upsampling (ONNX Resize cubic) computes what torch's does
        result = gexport.export(tmp_path / "r", fmt, tmp_path / f"g.{fmt}")
        assert result["max_abs_diff"] <= 1e-4
        if fmt == "onnx":
            import onnxruntime as ort

            got = ort.InferenceSession(str(tmp_path / "g.onnx")).run(None, {"A": x.numpy()})[0]
        else:
            with torch.no_grad():
                got = torch.export.load(str(tmp_path / "g.pt2")).module()(x).numpy()
        assert got.shape == (3, 3, 10, 18) and np.abs(got - want).max() <= 1e-4


def test_upscale_takes_arrays_and_lists_of_any_size(run):
    model = ganforge.load(run)
    assert model.scale == 2 and model.networks() == ["srgan", "srresnet"]
    x = np.random.default_rng(1).integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)
    y = model.upscale(x)
    assert y.shape == (3, 10, 12, 3) and y.dtype == np.uint8
    out = model.upscale([x[0], x[1, :4, :3], x[2, :, :, 0]])  # a gray image becomes RGB
    assert [o.shape for o in out] == [(10, 12, 3), (8, 6, 3), (10, 12, 3)]
    assert np.array_equal(out[0], y[0])
    with torch.no_grad():
        G_mse = model.nets["G_mse"]
        want = ((G_mse(torch.from_numpy(x[:1]).permute(0, 3, 1, 2).float() / 127.5 - 1).clamp(-1, 1) + 1) * 127.5)
    got = model.upscale(x[:1], which="srresnet")[0].astype(float)
    assert np.abs(got - want[0].permute(1, 2, 0).round().numpy()).max() <= 1
    with pytest.raises(GanforgeError, match=r"Images to upscale must be uint8 \[N, h, w, C\] .* got float64"):
        model.upscale(np.zeros((1, 4, 4, 3)))
    with pytest.raises(GanforgeError, match="Unknown network 'esrgan' of this srgan model; choose one of: srgan, "):
        model.upscale(x, which="esrgan")


def test_upscale_command_writes_images_and_the_figure_and_never_overwrites(run, photos, tmp_path, capsys):
    out = tmp_path / "up"
    assert main(["upscale", str(run), str(photos), "--out", str(out), "--originals", "--threads", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 5 and set(printed["psnr_y"]) == {"bicubic", "srresnet", "srgan"}
    hr = np.asarray(Image.open(photos / "p1.png"))
    assert np.asarray(Image.open(out / "p1.png")).shape == (26, 28, 3)  # 26 x 29 mod-cropped to 26 x 28
    lr = bicubic_downscale(hr[:26, :28], 2)
    assert printed["psnr_y"]["bicubic"] == pytest.approx(np.mean([
        psnr_y(bicubic_upscale(bicubic_downscale(h, 2), 2), h, 2) for h in
        [np.asarray(Image.open(photos / f"p{i}.png"))[:24 + 2 * i, :(30 - i) // 2 * 2] for i in range(5)]]))
    figure = Image.open(out / "comparison.png")
    assert figure.width >= 4 * 256 and figure.height > 4 * 256  # 4 columns, 4 rows (images) each tall
    assert main(["upscale", str(run), str(photos / "p1.png"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"ganforge: error: {str(out / 'p1.png')!r} already exists; upscale never overwrites a file, so "
                   "choose another --out or move it.")
    Image.fromarray(lr).save(tmp_path / "small.png")
    assert main(["upscale", str(run), str(tmp_path / "small.png"), "--out", str(tmp_path / "up2")]) == 0
    capsys.readouterr()
    assert np.asarray(Image.open(tmp_path / "up2" / "small.png")).shape == (26, 28, 3)
    assert main(["upscale", str(run), str(tmp_path / "missing.png"), "--out", str(tmp_path / "up3")]) == 2
    assert "is neither an image file nor a folder." in capsys.readouterr().err


def test_eval_gives_the_sr_table_on_held_out_photos(run, photos, capsys):
    result = ganforge.evaluate(run)
    assert [r["method"] for r in result["rows"]] == ["bicubic", "SRResNet", "SRGAN"]
    assert result["split"] == "test" and result["images"] == ["p4"] and result["scale"] == 2
    hr = np.asarray(Image.open(photos / "p4.png"))[:32, :26]
    bicubic = bicubic_upscale(bicubic_downscale(hr, 2), 2)
    row = result["rows"][0]
    assert row["PSNR"] == round(psnr_y(bicubic, hr, 2), 4) and row["SSIM"] == round(ssim_y(bicubic, hr, 2), 4)
    model = ganforge.load(run)
    srgan = model.upscale([bicubic_downscale(hr, 2)])[0]
    assert result["rows"][2]["PSNR"] == round(psnr_y(srgan, hr, 2), 4)
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("x2 super-resolution on 1 whole") and "SRResNet" in out and "LPIPS-rand" in out
    recorded = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum("eval" in r for r in recorded) == 2


def test_perceptual_measures_and_the_zoom_box():
    a, b = photo(40, 40, 1), photo(40, 40, 2)
    net = RandomMultiScale((3, 5), 4, seed=1)
    assert lpips_random(a, a, net) == 0.0 and lpips_random(a, b, net) > 0
    assert lpips_random(a, b, net, 2) == pytest.approx(lpips_random(b, a, net, 2))
    assert detail_ratio(a, a, 2) == 1.0
    blurred = bicubic_upscale(bicubic_downscale(a, 4), 4)
    assert detail_ratio(blurred, a, 4) < 0.5
    flat = np.full((64, 80, 3), 120, np.uint8)
    flat[40:56, 8:24] = photo(16, 16, 3)
    assert detail_box(flat, 16) == (40, 8, 16)
    figure = side_by_side([[("bicubic", flat), ("original", flat)]], title="t", width=100)
    assert figure.size == (206, 18 + 18 + 80 + 4 + 100)


def test_patch_mmd_is_zero_for_the_original_and_grows_with_noise():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    by_hand = sum((x[i] @ x[j] / 4 + 1) ** 3 for i in range(6) for j in range(6)) / 36 + sum(
        (y[i] @ y[j] / 4 + 1) ** 3 for i in range(5) for j in range(5)) / 25 - 2 * sum(
        (x[i] @ y[j] / 4 + 1) ** 3 for i in range(6) for j in range(5)) / 30
    assert mmd2_biased(x, y) == pytest.approx(by_hand, rel=1e-9)
    assert mmd2_biased(x, x) == 0.0 and polynomial_kernel(x, y).shape == (6, 5)
    image = photo(40, 52, 4)
    t = tiles(image, 2, 16)  # 36 x 48 after the shave: 2 x 3 tiles, row by row
    assert t.shape == (6, 16, 16, 3) and (t[4] == image[18:34, 18:34]).all()
    assert tiles(image, 2, 64).shape[0] == 0


def test_eval_adds_the_patch_mmd_with_the_random_network_or_a_named_extractor(run):
    rows = ganforge.evaluate(run, record=False)["rows"]
    assert all(r["MMD-rand"] is not None and r["MMD-rand"] >= 0 for r in rows)
    result = ganforge.evaluate(run, record=False, extractor="fmnist")
    assert result["extractor"] == "fmnist" and all("MMD-fmnist" in r for r in result["rows"])


class Reached(Exception):
    pass


def test_upscale_goes_through_the_thread_policy(run, photos, tmp_path, monkeypatch):
    from ganforge import threads

    calls = []

    def policy(requested=None, recorded=None):
        calls.append((requested, recorded))
        raise Reached

    model = ganforge.load(run)
    monkeypatch.setattr(threads, "choose_threads", policy)
    with pytest.raises(Reached):
        main(["upscale", str(run), str(photos / "p1.png"), "--out", str(tmp_path / "o"), "--threads", "3"])
    assert calls == [("3", None)]
    calls.clear()
    with pytest.raises(Reached):
        model.upscale(np.zeros((1, 4, 4, 3), np.uint8), threads=3)
    assert calls == [(3, None)] and not (tmp_path / "o").exists()


def test_vgg19_content_loss_is_phi_5_4_over_12_75(photos, tmp_path):
    """With weights given (here random ones in torchvision's layout), the content loss is MSE of torchvision's
    VGG19 features up to relu5_4 (features.35), each map divided by 12.75; conv5_4 takes them before the ReLU."""
    import torchvision.models.vgg as tv

    torch.manual_seed(0)
    features = tv.make_layers(tv.cfgs["E"])  # torchvision's vgg19().features
    weights = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, weights)
    sr, hr = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1

    def phi(x, last):
        x = ((x + 1) / 2 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.no_grad():
            for layer in list(features)[:last + 1]:
                x = layer(x.clone())
        return x

    for layers, last in ((None, 35), (["conv5_4"], 34)):
        options = {"network": "vgg19", "weights": str(weights), "content_layers": layers}
        task = build_task(config(photos, task_options=options), {**TINY["model_options"], "image_size": 16})
        want = float(((phi(sr, last) / 12.75 - phi(hr, last) / 12.75) ** 2).mean())
        with torch.no_grad():
            assert float(task.content_loss(sr, hr)) == pytest.approx(want, rel=1e-4)


def test_eval_against_another_source_reads_its_test_split(run, tmp_path):
    other = tmp_path / "other"
    for split, n in (("train", 1), ("test", 3)):
        (other / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(photo(20 + 2 * i, 22, 10 + i)).save(other / split / f"{split}{i}.png")
    result = ganforge.evaluate(run, against=str(other), record=False)
    assert result["images"] == ["test0", "test1", "test2"] and result["n"] == 3 and result["data"] == str(other)
    assert result["protocol"].startswith(f"x2 super-resolution on 3 whole {other} images")
    assert ganforge.evaluate(run, n=1, record=False)["n"] == 1
