"""Class-conditional GANs: the three discriminators, label handling, class-row grids, --class, per-class metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from conftest import tiny_config
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.families import build_model
from ganforge.metrics.evaluation import Features, per_class_metrics
from ganforge.models.cgan import label_matrix, projection_term

SMALL = {"ngf": 8, "ndf": 8, "nz": 16}


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    from conftest import make_idx_dataset

    base = tmp_path_factory.mktemp("cgan")
    root = make_idx_dataset(base / "fm")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_OFFLINE", "1")
        cfg = tiny_config(root, model="cgan", steps=4, n_samples=20, ema_decay=0.9,
                          model_options={**SMALL, "cond": "projection"})
        ganforge.train(cfg, base / "run")
    return root, base / "run"


@pytest.mark.parametrize("cond", ["concat", "projection", "acgan"])
def test_each_conditioning_builds_and_uses_the_label(cond):
    torch.manual_seed(0)
    nets = build_model("cgan", {**SMALL, "num_classes": 10, "cond": cond, "image_size": 28, "channels": 1})
    G, D = nets["G"].eval(), nets["D"].eval()
    z = torch.randn(4, 16)
    a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.full((4,), 3))
    assert a.shape == (4, 1, 28, 28) and not torch.allclose(a, b)
    # a soft label equal to a one-hot row gives exactly the hard label's output
    assert torch.allclose(G(z, torch.nn.functional.one_hot(torch.full((4,), 3), 10).float()), b)
    out0, out3 = D(a, torch.zeros(4, dtype=torch.long)), D(a, torch.full((4,), 3))
    if cond == "acgan":  # unconditional logit + class logits; the label does not enter D
        assert out0[0].shape == (4,) and out0[1].shape == (4, 10)
        assert torch.equal(out0[0], out3[0])
    else:
        assert out0.shape == (4,) and not torch.allclose(out0, out3)


def test_conditional_batch_norm_scales_and_shifts_by_the_label():
    """g_cond=cbn: each batch norm of G normalises without its own affine, then takes the label's row of
    gains and biases (a soft label blends the rows); the parameters grow by 2 * (K - 1) * channels."""
    torch.manual_seed(0)
    opts = {**SMALL, "num_classes": 10, "image_size": 28, "channels": 1}
    plain = build_model("cgan", opts)["G"]
    G = build_model("cgan", {**opts, "g_cond": "cbn"})["G"].train()
    from ganforge.models.cgan import ConditionalBatchNorm2d

    norms = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 2 and not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in G.modules())
    channels = sum(m.bn.num_features for m in norms)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(G) - count(plain) == 2 * (10 - 1) * channels
    cbn = norms[0]
    x = torch.randn(6, cbn.bn.num_features, 7, 7)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        cbn.gain[3] = 2.0
        cbn.bias[3] = -1.0
    out = cbn(x, label_matrix(y, 10))
    normed = torch.nn.functional.batch_norm(x, None, None, training=True)
    assert torch.allclose(out[3], 2.0 * normed[3] - 1.0, atol=1e-5)
    assert torch.allclose(out[0], normed[0] * cbn.gain[0][:, None, None] + cbn.bias[0][:, None, None], atol=1e-5)
    half = 0.5 * (label_matrix(torch.tensor([3]), 10) + label_matrix(torch.tensor([0]), 10))
    blended = cbn(x[:2], torch.cat([half, half]))
    ref = torch.nn.functional.batch_norm(x[:2], None, None, training=True)
    assert torch.allclose(blended[0], ref[0] * (0.5 * (cbn.gain[3] + cbn.gain[0]))[:, None, None]
                          + (0.5 * (cbn.bias[3] + cbn.bias[0]))[:, None, None], atol=1e-5)
    with pytest.raises(GanforgeError, match="g_cond='film'.*concat, cbn"):
        build_model("cgan", {**opts, "g_cond": "film"})


def test_conditional_batch_norm_trains_resumes_and_samples_by_class(idx_root, tmp_path, monkeypatch):
    """A cbn generator goes through the shared paths: the EMA copy's re-estimated statistics (the inner batch
    norms), a bit-identical resume, --class sampling."""
    from safetensors.torch import load_file

    from conftest import train_interrupted
    from ganforge.checkpoint import resolve_checkpoint

    cfg = tiny_config(idx_root, model="cgan", steps=3, n_samples=20, ema_decay=0.9, ema_bn_batches=2,
                      model_options={**SMALL, "cond": "projection", "g_cond": "cbn"})
    ganforge.train(cfg, tmp_path / "run")
    train_interrupted(cfg, tmp_path / "resumed", stop_at=2, monkeypatch=monkeypatch)
    ganforge.resume(tmp_path / "resumed")
    a, b = (load_file(str(resolve_checkpoint(tmp_path / r) / "weights.safetensors")) for r in ("run", "resumed"))
    assert any(".gain" in k for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = ganforge.load(tmp_path / "run")
    a, b = model.sample(4, seed=1, label=0), model.sample(4, seed=1, label=7)
    assert a.shape == (4, 28, 28, 1) and np.abs(a.astype(int) - b.astype(int)).max() > 0


@pytest.mark.parametrize("cond", ["concat", "projection"])
def test_a_classifier_head_beside_a_conditional_d(cond):
    """model.classifier=true: D keeps its conditional logit (the label still enters it) and adds class logits
    from the same features; without it, D returns its logit alone."""
    torch.manual_seed(0)
    opts = {**SMALL, "num_classes": 10, "cond": cond}
    D = build_model("cgan", {**opts, "classifier": True})["D"].eval()
    x = torch.randn(4, 1, 28, 28)
    (a, ca), (b, cb) = D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.full((4,), 3))
    assert a.shape == (4,) and ca.shape == (4, 10) and not torch.allclose(a, b)
    if cond == "projection":  # the class logits come from phi(x), which the label does not enter
        assert torch.equal(ca, cb)
    plain = build_model("cgan", opts)["D"].eval()
    assert isinstance(plain(x, torch.zeros(4, dtype=torch.long)), torch.Tensor)


@pytest.mark.parametrize("weight", [0.0, 0.25])
def test_cls_weight_scales_the_classification_losses(weight):
    """task.cls_weight multiplies ACGAN's classification terms in both phases (weight 0: the plain game's
    losses); a negative weight is refused in one sentence."""
    from ganforge.train.run import build_task

    cfg = ganforge.resolve_config(flags={"model": "cgan", "task_options": {"cls_weight": weight, "augment": "none"}})
    task = build_task(cfg, {**SMALL, "num_classes": 3, "classifier": True})
    phases = {p.name: p for p in task.phases()}
    batch = {"image": torch.rand(6, 1, 28, 28) * 2 - 1, "label": torch.tensor([0, 1, 2, 0, 1, 2])}
    for phase, adv, cls in (("D", "loss_D", "cls_D"), ("G", "loss_G", "cls_G")):
        torch.manual_seed(0)
        loss, logs = task.loss(phases[phase], batch, task.nets)
        assert float(logs[cls]) > 0
        assert float(loss.detach()) == pytest.approx(float(logs[adv]) + weight * float(logs[cls]), rel=1e-5)


def test_a_negative_cls_weight_is_one_sentence_and_nothing_is_written(idx_root, tmp_path):
    with pytest.raises(GanforgeError, match="cls_weight must be zero or positive, got -1"):
        ganforge.train(tiny_config(idx_root, model="cgan", model_options={**SMALL, "classifier": True},
                                   task_options={"cls_weight": -1.0}), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_projection_term_is_the_inner_product_with_the_class_embedding():
    torch.manual_seed(0)
    D = build_model("cgan", {**SMALL, "num_classes": 5, "cond": "projection"})["D"].eval()
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 2, 4])
    h = D.body(x)
    expected = D.head(h).view(-1) + (h * D.embed.weight[y][:, :, None, None]).sum((1, 2, 3))
    assert torch.allclose(D(x, y), expected, atol=1e-5)


def test_a_channels_last_projection_d_scores_alike_and_sends_back_channels_last_gradients():
    """The presets train in channels_last. The projection term multiplies in the features' memory order, so
    the gradient reaching D's body keeps one layout (a mixed pair made the leaky ReLU's backward 7x slower)."""
    torch.manual_seed(0)
    D = build_model("cgan", {**SMALL, "num_classes": 5, "cond": "projection"})["D"]
    D_cl = build_model("cgan", {**SMALL, "num_classes": 5, "cond": "projection"})["D"]
    D_cl.load_state_dict(D.state_dict())
    D_cl = D_cl.to(memory_format=torch.channels_last)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 2, 4, 1])
    grads = {}
    for name, net, xx in (("plain", D, x), ("cl", D_cl, x.contiguous(memory_format=torch.channels_last))):
        h = net.body(xx)
        seen = []
        h.register_hook(seen.append)  # the gradient as it flows into the body's last layer
        out = net.head(h).view(-1) + projection_term(h, net.embed.weight[y])
        out.square().sum().backward()
        grads[name] = (out.detach(), seen[0])
    torch.testing.assert_close(grads["cl"][0], grads["plain"][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads["cl"][1], grads["plain"][1], rtol=1e-5, atol=1e-5)
    assert grads["cl"][1].is_contiguous(memory_format=torch.channels_last) and not grads["cl"][1].is_contiguous()
    assert grads["plain"][1].is_contiguous()


def test_labels_out_of_range_or_of_the_wrong_shape_are_refused():
    with pytest.raises(GanforgeError, match="0..9"):
        label_matrix(torch.tensor([10]), 10)
    with pytest.raises(GanforgeError, match="float \\[N, 10\\]"):
        label_matrix(torch.zeros(2, 3), 10)


@pytest.mark.parametrize("extra", [{}, {"g_cond": "cbn", "classifier": True}], ids=["preset", "cbn-classifier"])
def test_conditional_networks_compile_without_a_graph_break(extra):
    """compile=true traces G and D whole: the label range check (Python numbers from y.min() / y.max()) is
    skipped while compiling, and still refuses bad labels outside it (the test above)."""
    import torch._dynamo

    nets = build_model("cgan", {**SMALL, "num_classes": 10, "cond": "projection", "image_size": 28, "channels": 1,
                                **extra})
    z, y = torch.randn(4, 16), torch.tensor([0, 3, 9, 1])
    for net, args in ((nets["G"], (z, y)), (nets["D"], (nets["G"](z, y).detach(), y))):
        torch._dynamo.reset()
        explained = torch._dynamo.explain(net)(*args)
        assert explained.graph_break_count == 0, explained.break_reasons


def test_cgan_on_unlabelled_images_is_refused(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(folder / f"{i}.png")
    cfg = ganforge.resolve_config(flags={"model": "cgan", "data": str(folder), "steps": 1, "batch_size": 4,
                                         "image_size": 28, "progress": False, "model_options": SMALL})
    with pytest.raises(GanforgeError, match="class-conditional.*no labels"):
        ganforge.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_class_folders_train_a_cgan_with_their_names(tmp_path):
    root = tmp_path / "classes"
    for c, name in enumerate(["cats", "dogs", "owls"]):
        (root / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((16, 16), 40 * c + i, np.uint8)).save(root / name / f"{i}.png")
    cfg = ganforge.resolve_config(flags={"model": "cgan", "data": str(root), "image_size": 16, "steps": 2,
                                         "batch_size": 6, "n_samples": 6, "progress": False, "model_options": SMALL})
    ganforge.train(cfg, tmp_path / "run")
    model = ganforge.load(tmp_path / "run")
    assert model.num_classes == 3 and model.class_names == ["cats", "dogs", "owls"]
    assert model.inputs(6, 0)["y"].tolist() == [0, 0, 1, 1, 2, 2]  # one row of two per class
    assert model.class_index("OWLS") == 2 and model.class_index("1") == 1


def test_class_folders_named_by_numbers_are_chosen_by_name(tmp_path, capsys):
    root = tmp_path / "numbered"
    for name in ("1", "2", "10"):  # sorted as text: 1, 10, 2
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((16, 16), 20 * i, np.uint8)).save(root / name / f"{i}.png")
    cfg = ganforge.resolve_config(flags={"model": "cgan", "data": str(root), "image_size": 16, "steps": 1,
                                         "batch_size": 4, "n_samples": 3, "progress": False, "model_options": SMALL})
    ganforge.train(cfg, tmp_path / "run")
    model = ganforge.load(tmp_path / "run")
    assert model.class_names == ["1", "10", "2"]
    assert model.class_index("2") == 2 and model.class_index(1) == 1 and model.class_index("10") == 1
    assert main(["sample", str(tmp_path / "run"), "--n", "4", "--class", "2", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["labels"].tolist() == [2] * 4
        assert np.array_equal(z["images"], model.sample(4, seed=0, label="2"))
        assert np.array_equal(z["images"], model.sample(4, seed=0, label=2))
    from ganforge.latent import resolve_class

    assert resolve_class("2", model.class_names) == 2 and resolve_class(2, model.class_names) == 2


def test_training_writes_one_named_row_per_class(cgan_run):
    _, run = cgan_run
    model = ganforge.load(run)
    y = model.inputs(20, 0)["y"]
    assert y.tolist() == [c for c in range(10) for _ in range(2)]
    with Image.open(run / "samples.png") as im:  # row labels widen the grid beyond 2 columns of 28 px
        assert im.width > im.height * 2 / 10 + 40


def test_sample_with_class_gives_that_class_only(cgan_run, tmp_path, capsys):
    _, run = cgan_run
    assert main(["sample", str(run), "--n", "8", "--class", "sandal", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["images"].shape == (8, 28, 28, 1) and z["labels"].tolist() == [5] * 8
        assert list(z["class_names"])[5] == "Sandal"
    model = ganforge.load(run)
    by_name = model.sample(8, seed=0, label="Sandal")
    assert np.array_equal(by_name, model.sample(8, seed=0, label=5))
    assert not np.array_equal(by_name, model.sample(8, seed=0, label=0))
    assert "of class Sandal" in capsys.readouterr().out
    assert main(["sample", str(run), "--n", "20", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").is_file()


def test_unknown_class_and_class_on_an_unconditional_run_are_one_sentence(cgan_run, tmp_path, capsys):
    root, run = cgan_run
    assert main(["sample", str(run), "--class", "Sock", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: Unknown class 'Sock'") and "Ankle boot" in err and "\n" not in err
    ganforge.train(tiny_config(root, steps=1), tmp_path / "plain")
    assert main(["sample", str(tmp_path / "plain"), "--class", "0", "--out", str(tmp_path / "y.png")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_eval_of_a_conditional_run_reports_per_class_accuracy_and_fid(cgan_run):
    root, run = cgan_run
    result = ganforge.evaluate(run, metrics=["fid"], n=200, extractor="fmnist", record=False)
    acc = result["class_accuracy"]
    assert list(acc) == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
    assert all(0.0 <= v <= 1.0 for v in acc.values())
    assert result["class_accuracy_mean"] == pytest.approx(np.mean(list(acc.values())))
    assert set(result["fid_per_class"]) == set(acc) and result["fid_per_class_mean"] > 0
    floor = result["real_vs_real"]  # the same per-class FID between the train and test splits
    assert set(floor["fid_per_class"]) == set(acc)
    assert result["fid_per_class_real_vs_real_mean"] == pytest.approx(np.mean(list(floor["fid_per_class"].values())))
    json.dumps(result)


def test_per_class_metrics_against_a_hand_computation():
    rng = np.random.default_rng(0)
    requested = np.repeat(np.arange(3), 4)
    logits = np.full((12, 3), -5.0)
    predicted = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 0, 0, 0])
    logits[np.arange(12), predicted] = 5.0
    fake = Features(rng.normal(size=(12, 2)), logits)
    real = Features(rng.normal(size=(30, 2)), None, np.repeat(np.arange(3), 10))
    out = per_class_metrics(fake, requested, ["a", "b", "c"], real, ["A", "B", "C"])
    assert out["class_accuracy"] == {"a": 0.75, "b": 1.0, "c": 0.25}
    assert out["class_accuracy_mean"] == pytest.approx(2.0 / 3.0)
    from ganforge.metrics.fid import fid_from_features

    assert out["fid_per_class"]["b"] == pytest.approx(fid_from_features(real.features[10:20], fake.features[4:8]))
    # an extractor whose classes are not the model's gives no accuracy
    assert "class_accuracy" not in per_class_metrics(fake, requested, ["a", "b", "c"], real, ["x", "y", "z"])


@pytest.mark.parametrize("cond", ["concat", "acgan"])
def test_conditioning_is_learned_on_separable_toy_classes(idx_root, tmp_path, cond):
    """Toy class c is a bright block at a class-specific place: after a short run, the samples asked for
    class c are closest (correlation of the mean image) to the mean real image of class c."""
    from conftest import toy_images

    torch.manual_seed(0)
    cfg = tiny_config(idx_root, model="cgan", steps=300, batch_size=32, sample_every=0,
                      ckpt_every=0, log_every=50, model_options={"ngf": 16, "ndf": 16, "nz": 16, "cond": cond},
                      task_options={"augment": "none"})  # the classes differ by place, which translation blurs
    ganforge.train(cfg, tmp_path / "run")
    model = ganforge.load(tmp_path / "run")
    images, labels = toy_images(256)
    templates = np.stack([images[labels == c].astype(float).mean(0).ravel() for c in range(10)])
    templates -= templates.mean(1, keepdims=True)
    hits = 0
    for c in range(10):
        x = model.sample(16, seed=1, label=c)[..., 0].astype(float).mean(0).ravel()
        hits += int(np.argmax(templates @ (x - x.mean())) == c)
    assert hits >= 9, hits

