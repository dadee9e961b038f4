"""Toy GANs: the 1-D / 2-D distributions, users' point files, the 1-D optimum of the lectures, the
saturating loss's vanishing gradient, and ``ganforge toy`` end to end (single runs and comparisons)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from scipy.spatial.distance import jensenshannon

import ganforge
from ganforge.api import parse_variants, toy_config, train_toy
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data.toy import N_POINTS, TOY, load_toy, read_points
from ganforge.errors import GanforgeError
from ganforge.pipelines.noise import latent
from ganforge.tasks.toy import histogram_js, sliced_w1
from ganforge.train.run import build_task


# ----------------------------------------------------------------------------- distributions
@pytest.mark.parametrize("name", TOY.names())
def test_every_toy_distribution_loads_as_float_points(name):
    data = load_dataset(name)
    dim = TOY.get(name).dim
    assert data.images.dtype == torch.float32 and tuple(data.images.shape) == (N_POINTS, dim)
    assert torch.isfinite(data.images).all()
    target = load_toy(name)
    assert np.array_equal(target.points, load_toy(name).points)  # the same set every time
    assert not np.array_equal(target.points, load_toy(name, split="test").points)
    for (lo, hi), column in zip(target.limits, target.points.T, strict=True):
        assert np.mean((column >= lo) & (column <= hi)) > 0.995  # the plot box holds the data
    if dim == 2:
        (x0, x1), (y0, y1) = target.limits
        assert x1 - x0 == pytest.approx(y1 - y0)  # square, so circles stay round


def test_1d_statistics_and_densities():
    g = load_toy("gaussian1d")
    assert g.points.mean() == pytest.approx(1.0, abs=0.02) and g.points.std() == pytest.approx(0.5, abs=0.01)
    m = load_toy("mixture1d").points[:, 0]
    assert np.mean(m < 0) == pytest.approx(0.5, abs=0.02)
    assert m[m > 0].mean() == pytest.approx(1.5, abs=0.02) and m[m > 0].std() == pytest.approx(0.35, abs=0.02)
    u = load_toy("uniform1d").points[:, 0]
    assert u.min() >= -1.5 and u.max() <= 1.5 and u.std() == pytest.approx(3 / np.sqrt(12), abs=0.01)
    for name in ("gaussian1d", "mixture1d", "uniform1d"):
        xs = np.linspace(-6, 6, 24001)
        assert np.trapezoid(TOY.get(name).density(xs), xs) == pytest.approx(1.0, abs=1e-3), name


def test_2d_shapes():
    ring = load_toy("ring2d").points
    radius = np.linalg.norm(ring, axis=1)
    assert radius.mean() == pytest.approx(2.0, abs=0.01) and radius.std() < 0.08
    modes = np.round(np.arctan2(ring[:, 1], ring[:, 0]) / (2 * np.pi / 8)) % 8
    assert np.bincount(modes.astype(int), minlength=8).min() > N_POINTS / 8 * 0.9  # 8 equally likely modes
    grid = load_toy("grid2d").points
    nearest = np.round(grid)
    assert np.abs(grid - nearest).max() < 0.3 and len({tuple(p) for p in nearest}) == 25
    assert np.abs(nearest).max() == 2
    line = load_toy("line2d").points
    assert np.abs(line[:, 1] - line[:, 0] / 2).max() < 0.25 and np.abs(line[:, 0]).max() < 2.0
    spiral_r = np.linalg.norm(load_toy("spiral2d").points, axis=1)
    assert 0.1 < spiral_r.min() and spiral_r.max() < 2.3
    moons = load_toy("moons2d").points
    assert np.abs(moons.mean(0)).max() < 0.1 and moons.std(0).min() > 0.3


# ----------------------------------------------------------------------------- users' files
def test_user_files_load_standardised(tmp_path):
    rng = np.random.default_rng(0)
    samples = rng.normal(170.0, 10.0, 500)
    csv = tmp_path / "heights.csv"
    csv.write_text("height_cm\n" + "\n".join(f"{v:.4f}" for v in samples) + "\n")
    one = load_toy("points", str(csv))
    assert one.dim == 1 and one.points.shape[0] >= N_POINTS and one.density is not None
    assert one.points[:500, 0] == pytest.approx((samples - samples.mean()) / samples.std(), abs=1e-4)
    assert one.points.mean() == pytest.approx(0.0, abs=1e-4) and one.points.std() == pytest.approx(1.0, abs=1e-4)

    drawn = np.array([[100, 200], [150, 260], [300, 250], [320, 120], [90, 90]], dtype=float)
    txt = tmp_path / "drawn.txt"
    txt.write_text("# clicks\n" + "\n".join(f"{x} {y}" for x, y in drawn))
    npy = tmp_path / "drawn.npy"
    np.save(npy, drawn)
    a, b = load_toy("points", str(txt)), load_toy("points", str(npy))
    assert a.dim == 2 and np.array_equal(a.points, b.points)
    assert a.points.std(0).max() == pytest.approx(1.0, abs=1e-5)  # one scale for both axes
    # through the dataset registry and the command-line path
    data = load_dataset("points", str(npy))
    assert tuple(data.images.shape[1:]) == (2,)
    cfg = toy_config(str(npy))
    assert cfg.data.name == "points" and cfg.data.root == str(npy) and cfg.steps == 5000


@pytest.mark.parametrize("name, content, message", [
    ("three.csv", "1,2,3\n4,5,6\n", "shape"),
    ("nan.csv", "1\nnan\n3\n", "NaN"),
    ("words.csv", "x\n1\ntwo\n", "line 3"),
    ("ragged.txt", "1 2\n3\n", "same number"),
    ("same.csv", "4\n4\n4\n", "2 different points"),
    ("empty.csv", "# nothing\n", "no points"),
    ("binary.csv", b"\xff\xfe\x00\x81", "not a text file"),
])
def test_bad_point_files_are_explained(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(GanforgeError, match=message):
        read_points(path)


def test_bad_files_and_names_at_the_boundary(tmp_path):
    with pytest.raises(GanforgeError, match="No points file"):
        read_points(tmp_path / "missing.csv")
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    with pytest.raises(GanforgeError, match="numbers"):
        read_points(tmp_path / "strings.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(GanforgeError, match="not a readable .npy"):
        read_points(tmp_path / "bad.npy")
    with pytest.raises(GanforgeError, match="data_root"):
        load_dataset("points")
    with pytest.raises(GanforgeError, match="Unknown toy data 'ring3d'.*ring2d"):
        toy_config("ring3d")
    cfg = toy_config("gaussian1d", overrides=["model.dim=2", "steps=2"])
    with pytest.raises(GanforgeError, match="dim=2 does not match the data, which is 1-D"):
        ganforge.train(cfg, tmp_path / "run")
    with pytest.raises(GanforgeError, match="Unknown loss 'saturating'"):
        parse_variants("minimax,saturating")
    with pytest.raises(GanforgeError, match="two or more"):
        parse_variants("minimax")
    with pytest.raises(GanforgeError, match="LOSS:K"):
        parse_variants("minimax:0,hinge")
    assert parse_variants("minimax, nonsaturating:5") == [("minimax", "minimax", None),
                                                         ("nonsaturating-k5", "nonsaturating", 5)]


# ----------------------------------------------------------------------------- divergence estimates
def test_divergences_match_independent_computations():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (5000, 1)), rng.normal(0.5, 1.2, (5000, 1))
    limits = ((-4.0, 4.0),)
    edges = np.linspace(-4, 4, 41)
    p = np.histogram(np.clip(a[:, 0], -4, np.nextafter(4, 0)), edges)[0]
    q = np.histogram(np.clip(b[:, 0], -4, np.nextafter(4, 0)), edges)[0]
    assert histogram_js(a, b, limits, 40) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9)
    assert histogram_js(a, a, limits, 40) == 0.0
    assert histogram_js(a, a + 100, limits, 40) == pytest.approx(np.log(2))  # disjoint (edge bins)
    assert sliced_w1(a, b) == pytest.approx(stats.wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-9)
    shift = np.array([[0.3, 0.0]])
    x = rng.normal(0, 1, (4000, 2))
    # a shift by 0.3 along x projects to 0.3 |cos(angle)|, whose mean over directions is 0.3 * 2 / pi
    assert sliced_w1(x, x + shift) == pytest.approx(0.3 * 2 / np.pi, rel=0.02)


# ----------------------------------------------------------------------------- the lectures' facts
def test_1d_optimum_pg_matches_the_data_and_d_is_one_half(tmp_path):
    """Goodfellow et al.'s proposition: at the optimum p_g = p_data and D = 1/2. After 2000 steps on
    N(1, 0.5^2) (nonsaturating loss, seed 0) the averaged generator (EMA 0.999) is within W1 0.03 of the
    target (6% of its standard deviation; two samples of the target itself differ by about 0.005), the raw
    generator, which oscillates around it, within 0.15, and D(x) is within 0.05 of 1/2 on the support."""
    cfg = toy_config("gaussian1d", {"steps": 2000, "sample_every": 0, "log_every": 100, "seed": 0,
                                    "device": "cpu", "ema_decay": 0.999, "loss": "nonsaturating"})
    run = train_toy(cfg, tmp_path / "run")
    averaged = ganforge.load(tmp_path / "run").ema["G"]
    z = latent(20_000, 1, "uniform", generator=torch.Generator().manual_seed(123))
    target = np.random.default_rng(7).normal(1.0, 0.5, 20_000)  # fresh samples, not the training set
    with torch.no_grad():
        w1_avg = stats.wasserstein_distance(averaged(z)[:, 0].numpy(), target)
        w1_raw = stats.wasserstein_distance(run["nets"]["G"](z)[:, 0].numpy(), target)
        xs = np.linspace(0.0, 2.0, 201)  # mean +- 2 standard deviations
        d = torch.sigmoid(run["nets"]["D"](torch.tensor(xs, dtype=torch.float32)[:, None])).numpy()
    gap = np.average(np.abs(d - 0.5), weights=stats.norm.pdf(xs, 1.0, 0.5))
    print(f"W1 averaged G {w1_avg:.4f}, raw G {w1_raw:.4f}; mean |D - 1/2| on the support {gap:.4f}")
    assert w1_avg < 0.03
    assert w1_raw < 0.15
    assert gap < 0.05
    assert run["w1"] < 0.2 and run["js"] < 0.2  # the logged estimates of the last frame (EMA G) agree


def ganforge_task(cfg, nets):
    """The toy task of ``cfg`` around the networks ``nets`` (another loss on the same G and D)."""
    task = build_task(cfg, {"dim": 1})
    task.nets.update(nets)
    return task


def test_saturating_loss_has_vanishing_gradients_when_d_is_confident():
    """Early in training D rejects G's samples easily; the minimax G loss log(1 - D(G(z))) then gives G
    almost no gradient, the non-saturating -log D(G(z)) a strong one (the lectures' point)."""
    torch.manual_seed(0)
    ns = build_task(toy_config("gaussian1d", {"loss": "nonsaturating"}), {"dim": 1})
    nets = ns.nets
    G, D = nets["G"], nets["D"]
    real = torch.from_numpy(load_toy("gaussian1d").points)
    opt = torch.optim.Adam(D.parameters(), 2e-3)
    for i in range(60):  # train D only: G stays at its initialisation
        z = ns._noise(256, "cpu")
        loss = ns.gan_loss.d_loss(D(real[i * 256:(i + 1) * 256]), D(G(z).detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    z = ns._noise(1024, "cpu")
    assert torch.sigmoid(D(G(z))).mean() < 0.1  # D is confident
    norms = {}
    for loss in ("minimax", "nonsaturating"):
        G.zero_grad()
        task = ganforge_task(toy_config("gaussian1d", {"loss": loss}), nets)
        task.gan_loss.g_loss(D(G(z))).backward()
        norms[loss] = torch.sqrt(sum(p.grad.pow(2).sum() for p in G.parameters())).item()
        norms[loss + "_x"] = task.sample_gradients(D, G(z)).norm(dim=1).mean().item()
    assert norms["minimax"] < 0.1 * norms["nonsaturating"]
    assert norms["minimax_x"] < 0.1 * norms["nonsaturating_x"]


# ----------------------------------------------------------------------------- ganforge toy
def test_cli_single_run_writes_frames_gif_and_plots(tmp_path, capsys):
    out = tmp_path / "g1"
    assert main(["toy", "--data", "gaussian1d", "--steps", "200", "--frames", "4", "--out", str(out),
                 "--loss", "minimax", "log_every=20"]) == 0
    assert "minimax: step 200, W1" in capsys.readouterr().out
    frames = sorted(p.name for p in (out / "samples").glob("step_*.png"))
    assert frames == [f"step_{s:08d}.png" for s in (0, 67, 134, 200)]  # --frames 4: the first and last included
    for name in ("progress.gif", "samples.png", "real_samples.png", "losses.png", "divergence.png"):
        assert (out / name).is_file(), name
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 4
    rows = [json.loads(line) for line in (out / "toy_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 67, 134, 200]
    assert {"js", "js_floor", "w1", "w1_floor", "grad_g"} <= set(rows[0])
    assert rows[0]["js"] > rows[-1]["js"]  # it learns something even in 200 steps
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "toy" and config["model_options"]["dim"] == 1
    assert config["config"]["task_options"]["loss"] == "minimax" and config["config"]["batch_size"] == 256


def test_cli_compare_mode_writes_each_run_and_the_side_by_side(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["toy", "--data", "ring2d", "--compare", "minimax,nonsaturating:2", "--steps", "40",
                 "--frames", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "minimax: step 40" in printed and "nonsaturating-k2: step 40, sliced W1" in printed
    for label in ("minimax", "nonsaturating-k2"):
        assert (out / label / "progress.gif").is_file() and (out / label / "divergence.png").is_file()
    assert json.loads((out / "nonsaturating-k2" / "config.json").read_text())["config"]["task_options"]["d_steps"] == 2
    with Image.open(out / "compare.gif") as gif, Image.open(out / "minimax" / "samples.png") as one:
        assert gif.n_frames == 2 and gif.width == 2 * one.width  # --frames 2: step 0 and step 40
    assert (out / "compare.png").is_file() and (out / "compare_curves.png").is_file()
    assert main(["toy", "--data", "ring2d", "--compare", "minimax,hinge", "--steps", "4", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_cli_unknown_toy_data_is_one_sentence(capsys):
    assert main(["toy", "--data", "ring3d", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: Unknown toy data 'ring3d'") and "Traceback" not in err


def test_same_seed_gives_identical_weights(tmp_path):
    def weights(name: str, seed: int) -> dict[str, torch.Tensor]:
        cfg = toy_config("moons2d", {"steps": 30, "sample_every": 0, "seed": seed, "device": "cpu",
                                     "loss": "wgan-gp", "d_steps": 2})
        nets = train_toy(cfg, tmp_path / name)["nets"]
        return {f"{n}.{k}": v.clone() for n, net in nets.items() for k, v in net.state_dict().items()}

    a, b, c = weights("a", 3), weights("b", 3), weights("c", 4)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_sampling_a_toy_run_as_images_is_one_clear_error(tmp_path, capsys):
    from ganforge.cli import main as cli_main

    run = tmp_path / "toy"
    assert cli_main(["toy", "--data", "gaussian1d", "--steps", "20", "--out", str(run)]) == 0
    capsys.readouterr()
    assert cli_main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "generates points, not images" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
