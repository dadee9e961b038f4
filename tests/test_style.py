"""Neural style transfer (issue 12): the Gram matrix and losses against hand computations, the Gatys
optimisation (L-BFGS and Adam lower the loss, seeds, colour preservation, texture synthesis), VGG weights in
torchvision's layout (found, loaded, downloaded with the checksum checked; never the network), the fast-style
TransformerNet and the ``ganforge stylize`` command's outputs and refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.models.transformer_net import TransformerNet
from ganforge.style import build_features, content_loss, gram, rgb_to_yiq, style_loss, tv_loss
from ganforge.style.features import VGGFeatures
from ganforge.style.weights import download, find_vgg_weights

SMALL = {"size": 24, "random_sizes": (3, 5), "random_filters": 8, "frames": 4}  # a run of well under a second


def _photo(seed: int = 0, h: int = 20, w: int = 28) -> np.ndarray:
    """A smooth colourful picture, uint8 [h, w, 3]."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    img = np.stack([np.sin(6 * xx + seed) * 0.5 + 0.5, yy, 0.5 + 0.4 * np.cos(5 * (xx + yy))], -1)
    return ((img + rng.normal(0, 0.02, img.shape)).clip(0, 1) * 255).astype(np.uint8)


def _stripes(h: int = 24, w: int = 24) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx + yy) % 8 < 4, (xx - yy) % 6 < 3, yy % 5 < 2], -1).astype(np.uint8) * 255


def _save(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


def one_sentence(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    assert lines[0].startswith("ganforge: error: ") and lines[0].endswith("."), text
    return lines[0]


# ---------------------------------------------------------------------------------------------- pure functions
def test_gram_of_a_known_tensor_is_the_hand_computation():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])  # [1, C=2, 2, 2]
    # F = [[1, 2, 3, 4], [0, 1, 0, -1]]: F F^T = [[30, -2], [-2, 2]], divided by C * H * W = 8
    expected = torch.tensor([[[30.0, -2.0], [-2.0, 2.0]]]) / 8
    torch.testing.assert_close(gram(f), expected)


def test_gram_is_invariant_to_shuffling_positions_and_style_loss_of_itself_is_zero():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 5, 6, 7, generator=g)
    perm = torch.randperm(42, generator=g)
    shuffled = f.reshape(2, 5, 42)[:, :, perm].reshape(2, 5, 6, 7)
    torch.testing.assert_close(gram(shuffled), gram(f))
    assert float(style_loss(f, gram(f))) == 0.0
    assert float(style_loss(shuffled, gram(f))) < 1e-12
    assert float(content_loss(f, f)) == 0.0 and float(content_loss(shuffled, f)) > 0.1
    assert float(style_loss(f * 2, gram(f))) > 0


def test_tv_loss_is_the_sum_of_neighbour_differences():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 3.0]]]])  # |1-0| + |3-1| across, |1-0| + |3-1| down
    assert float(tv_loss(x)) == 6.0
    assert float(tv_loss(torch.ones(2, 3, 5, 5))) == 0.0


# ---------------------------------------------------------------------------------------------- optimisation
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_lbfgs_and_adam_lower_the_total_loss(optimizer):
    result = ganforge.stylize(_photo(), [_stripes()], optimizer=optimizer, iterations=30, **SMALL)
    h = result.history
    assert 30 <= len(h) <= 30 + 25 and h[-1]["total"] < 0.5 * h[0]["total"]  # L-BFGS: a line search may overrun
    assert result.final["total"] < 0.5 * h[0]["total"]  # the written picture, clamped to [0, 1]
    assert set(h[0]) >= {"iteration", "total", "style_k3", "style_k5"}
    assert result.image.dtype == torch.uint8 and tuple(result.image.shape) == (3, 17, 24)  # longest side 24
    if optimizer == "adam":  # the TF tutorial's TV term is on by default with Adam
        assert "tv" in h[0] and result.settings.lr == 0.02
    else:
        assert "tv" not in h[0] and result.settings.style_weight == 1e6 and result.settings.content_weight == 1


def test_the_same_seed_gives_the_same_image_and_another_seed_another():
    def run(seed):
        return ganforge.stylize(_photo(), [_stripes()], init="noise", seed=seed, iterations=8, **SMALL).image

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_preserve_color_keeps_the_content_chroma():
    content = _photo(1)
    kwargs = dict(iterations=25, style_weight=1e8, **SMALL)
    kept = ganforge.stylize(content, [_stripes()], preserve_color=True, **kwargs).image
    plain = ganforge.stylize(content, [_stripes()], **kwargs).image
    resized = ganforge.stylize(content, [_stripes()], iterations=1, style_weight=0.0, **SMALL).image  # ~ content

    def iq(img):
        return rgb_to_yiq(img.float()[None] / 255)[0, 1:]

    kept_err = float((iq(kept) - iq(resized)).abs().mean())
    plain_err = float((iq(plain) - iq(resized)).abs().mean())
    assert kept_err < 0.01 < plain_err  # chroma within rounding and clamping; without it the style's colours
    luma_change = float((rgb_to_yiq(kept.float()[None] / 255)[0, 0] - rgb_to_yiq(resized.float()[None] / 255)[0, 0])
                        .abs().mean())
    assert luma_change > 0.02  # the style went into the luminance


def test_texture_synthesis_needs_no_content_and_blends_styles():
    result = ganforge.stylize(None, [_stripes(), _photo()], style_blend=(0.8, 0.2), iterations=15, **SMALL)
    assert tuple(result.image.shape) == (3, 24, 24) and "content" not in result.history[0]
    assert result.settings.init == "noise" and result.history[-1]["total"] < result.history[0]["total"]
    with pytest.raises(GanforgeError, match="one style weight per style image: 2 images, 1 weights"):
        ganforge.stylize(None, [_stripes(), _photo()], style_blend=(1.0,), **SMALL)
    with pytest.raises(GanforgeError, match="cannot start from the content image"):
        ganforge.stylize(None, [_stripes()], init="content", **SMALL)
    with pytest.raises(GanforgeError, match="Unknown style layer 'relu1_1'.*k3, k5"):
        ganforge.stylize(_photo(), [_stripes()], style_layers=("relu1_1",), **SMALL)


# ---------------------------------------------------------------------------------------------- VGG weights
def _vgg_file(path: Path, arch: str = "vgg16", seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in torchvision's layout: features.N.weight/bias and a classifier."""
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in VGGFeatures(arch).features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 3)  # torchvision's files hold the classifier too
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_vgg_weights_are_found_in_the_torch_hub_cache_and_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    state = _vgg_file(tmp_path / "torch/hub/checkpoints/vgg16-397923af.pth")
    net = build_features("vgg16", pool="avg")
    assert net.weights_file == str(tmp_path / "torch/hub/checkpoints/vgg16-397923af.pth")
    assert torch.equal(net.features[28].weight, state["features.28.weight"])
    assert isinstance(net.features[4], torch.nn.AvgPool2d)
    maps = net(torch.rand(1, 3, 32, 32), ["relu2_2", "relu4_3"])
    assert maps["relu2_2"].shape == (1, 128, 16, 16) and maps["relu4_3"].shape == (1, 512, 4, 4)
    # --weights FILE, and a file of another network refused in one sentence
    other = tmp_path / "mine.pth"
    _vgg_file(other, "vgg19", seed=1)
    assert build_features("vgg19", weights=str(other)).features[34].weight.shape == (512, 512, 3, 3)
    with pytest.raises(GanforgeError, match="is not a torchvision vgg16 state dict: it (lacks|has) features"):
        build_features("vgg16", weights=str(other))


def test_missing_vgg_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(GanforgeError, match="vgg19-dcbb9e9d.pth were not found.*GANFORGE_OFFLINE=1.*--network random"):
        find_vgg_weights("vgg19")
    with pytest.raises(GanforgeError, match="does not exist"):
        find_vgg_weights("vgg19", tmp_path / "nope.pth")


def test_download_checks_the_hash_prefix_and_keeps_nothing_wrong(tmp_path):
    src = tmp_path / "src"
    _vgg_file(src / "tmp.pth")
    sha = hashlib.sha256((src / "tmp.pth").read_bytes()).hexdigest()
    good = src / f"vgg16-{sha[:8]}.pth"
    (src / "tmp.pth").rename(good)
    dest = tmp_path / "dest"
    path = download(good.as_uri(), dest)
    assert path == dest / good.name and path.read_bytes() == good.read_bytes()
    bad = src / "vgg16-00000000.pth"
    bad.write_bytes(good.read_bytes())
    with pytest.raises(GanforgeError, match="not 00000000.*discarded"):
        download(bad.as_uri(), dest)
    assert sorted(p.name for p in dest.iterdir()) == [good.name]  # no partial or wrong file left
    with pytest.raises(GanforgeError, match="Downloading .* failed"):
        download((src / "vgg16-12345678.pth").as_uri(), dest)


# ---------------------------------------------------------------------------------------------- fast style
def test_transformer_net_has_johnsons_parameter_count_and_keeps_the_size():
    G = TransformerNet()
    assert count_parameters(G) == 1_679_235
    assert G(torch.rand(1, 3, 20, 28) * 2 - 1).shape == (1, 3, 20, 28)


def test_fast_style_trains_and_stylises_a_file_through_the_cli(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        _save(_photo(i, 32, 32), photos / f"p{i}.png")
    style = _save(_stripes(), tmp_path / "style.png")
    rc = main(["train", "fast-style", "--data", str(photos), "--out", str(tmp_path / "run"), "--steps", "2",
               "--batch-size", "2", "--no-progress", "image_size=32", f"task.style={style}", "task.random_filters=8",
               "model.ngf=4", "model.n_blocks=1", "sample_every=1", "n_samples=2"])
    assert rc == 0, capsys.readouterr().err
    photo = _save(_photo(9, 30, 42), tmp_path / "photo.png")
    out = tmp_path / "styled.png"
    assert main(["stylize", "--model", str(tmp_path / "run"), str(photo), "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (42, 30) and im.mode == "RGB"
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["method"] == "fast-style" and record["step"] == 2 and record["images_per_s"] > 0
    model = ganforge.load(tmp_path / "run")
    expected = model.stylize([torch.from_numpy(np.array(Image.open(photo))).permute(2, 0, 1)])[0]
    with Image.open(out) as im:
        assert torch.equal(torch.from_numpy(np.array(im)).permute(2, 0, 1), expected)
    capsys.readouterr()
    assert main(["stylize", "--model", str(tmp_path / "run"), str(photo), "--out", str(out)]) == 2  # never replaced
    assert "already exists" in one_sentence(capsys.readouterr().err)


def test_fast_style_without_a_style_image_is_one_sentence(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    _save(_photo(), tmp_path / "photos" / "a.png")
    rc = main(["train", "fast-style", "--data", str(tmp_path / "photos"), "--out", str(tmp_path / "run"),
               "--steps", "1"])
    assert rc == 2 and "task.style=STYLE.jpg" in one_sentence(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------- the command
def test_stylize_writes_the_picture_gif_loss_plot_and_a_record_that_remakes_it(tmp_path, capsys):
    content = _save(_photo(), tmp_path / "content.png")
    style = _save(_stripes(), tmp_path / "style.png")
    out = tmp_path / "out" / "result.png"
    args = ["stylize", str(content), str(style), "--out", str(out), "--size", "24", "--iterations", "12",
            "--random-sizes", "3,5", "--random-filters", "8", "--frames", "3"]
    assert main(args) == 0, capsys.readouterr().err
    for p in (out, out.with_suffix(".gif"), out.with_name("result_losses.png"), out.with_suffix(".json")):
        assert p.is_file(), p
    with Image.open(out.with_suffix(".gif")) as gif:
        assert gif.n_frames == 4  # iterations 0, 4, 8, 12
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["network"] == "random" and record["settings"]["iterations"] == 12
    assert record["iterations_run"] >= 12 and record["loss_end"]["total"] < record["loss_start"]["total"]
    assert record["inputs"]["sha256"][str(content)] == hashlib.sha256(content.read_bytes()).hexdigest()
    # the recorded command makes the same picture again
    import shlex

    again = shlex.split(record["command"])[1:]
    again[again.index("--out") + 1] = str(tmp_path / "again.png")
    capsys.readouterr()
    assert main(again) == 0, capsys.readouterr().err
    with Image.open(out) as a, Image.open(tmp_path / "again.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("extra, words", [
    (["--network", "vgg13"], "Unknown feature network 'vgg13'; choose one of: random, vgg16, vgg19"),
    (["--optimizer", "sgd"], "Unknown optimizer 'sgd'; choose lbfgs or adam"),
    (["--init", "zeros"], "Unknown start 'zeros'; choose content, noise or style"),
    (["--style-blend", "a,b"], "--style-blend takes comma-separated numbers"),
    (["--style-blend", "1,2"], "one style weight per style image: 1 images, 2 weights"),
    (["--content", "photo.jpg"], "--content takes only none"),
    (["--size", "0"], "size must be a positive integer, got 0"),
    (["--style-weight", "-1"], "style_weight must be zero or positive, got -1.0"),
])
def test_bad_stylize_input_is_one_sentence_and_writes_nothing(tmp_path, capsys, extra, words):
    content = _save(_photo(), tmp_path / "content.png")
    style = _save(_stripes(), tmp_path / "style.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(content), str(style), "--out", str(out), *extra]) == 2
    assert words in one_sentence(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]


def test_stylize_refuses_missing_files_and_never_replaces_a_users_file(tmp_path, capsys):
    style = _save(_stripes(), tmp_path / "style.png")
    assert main(["stylize", str(tmp_path / "none.jpg"), str(style), "--out", str(tmp_path / "o.png")]) == 2
    assert "content image" in one_sentence(capsys.readouterr().err)
    (tmp_path / "notes.txt").write_text("x")
    assert main(["stylize", str(style), str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o.png")]) == 2
    assert "cannot be read as an image" in one_sentence(capsys.readouterr().err)
    mine = tmp_path / "mine.gif"  # the GIF beside --out mine.png is the user's own file
    mine.write_bytes(b"GIF89a")
    assert main(["stylize", str(style), str(style), "--out", str(tmp_path / "mine.png")]) == 2
    assert "'" + str(mine) + "' already exists" in one_sentence(capsys.readouterr().err)
    assert mine.read_bytes() == b"GIF89a" and not (tmp_path / "mine.png").exists()
    assert main(["stylize", str(style), "--out", str(tmp_path / "o.png")]) == 2
    assert "at least one style image" in one_sentence(capsys.readouterr().err)


def test_cli_texture_synthesis_from_the_style_alone(tmp_path, capsys):
    style = _save(_stripes(), tmp_path / "style.png")
    out = tmp_path / "texture.png"
    assert main(["stylize", "--content", "none", str(style), "--out", str(out), "--size", "16", "--iterations", "3",
                 "--random-sizes", "3", "--random-filters", "4"]) == 0, capsys.readouterr().err
    with Image.open(out) as im:
        assert im.size == (16, 16)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["method"] == "texture" and record["inputs"]["content"] is None
    assert "--content none" in record["command"] and record["settings"]["content_layers"] == []
