"""Contract tests over the registries: every registered model (and so every registered task) builds,
trains two steps, writes and reloads a checkpoint, resumes bit-identically, and generates through the
inference object that ``ganforge.load`` returns. The models are taken from the registry itself: a new
model fails here until it has a tiny configuration below and passes every check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ganforge
from conftest import train_interrupted
from ganforge.checkpoint import resolve_checkpoint
from ganforge.families import FAMILIES, MODELS, family_of
from ganforge.train.run import build_run

# model -> settings of a run that trains in about a second on the tests' tiny data ("{root}": its folder)
TINY: dict[str, dict] = {
    "gan": {"data": "fashion-mnist", "model_options": {"g_hidden": [32], "d_hidden": [32], "nz": 8}},
    "dcgan": {"data": "fashion-mnist", "model_options": {"ngf": 4, "ndf": 4, "nz": 8}, "ema_decay": 0.9},
    "cgan": {"data": "fashion-mnist", "n_samples": 10, "task_options": {"cls_weight": 0.2},  # cgan-fmnist's networks
             "model_options": {"ngf": 4, "ndf": 4, "nz": 8, "g_cond": "cbn", "classifier": True}},
    "pix2pix": {"data": "edges2fashion", "image_size": 32, "batch_size": 2,
                "model_options": {"netG": "unet_32", "ngf": 4, "ndf": 4, "n_layers_D": 1}},
    "cyclegan": {"data": "fashion2edges", "image_size": 32, "batch_size": 2, "task_options": {"pool_size": 3},
                 "model_options": {"netG": "resnet_1blocks", "ngf": 4, "ndf": 4, "netD": "n_layers", "n_layers_D": 1}},
    "fast-style": {"data": "fashion-mnist", "image_size": 32, "channels": 3, "batch_size": 2,
                   "model_options": {"ngf": 4, "n_blocks": 1},
                   "task_options": {"style": "{root}/style.png", "random_filters": 8}},
    "srresnet": {"data": "fashion-mnist", "image_size": 16, "batch_size": 2,
                 "model_options": {"blocks": 1, "features": 4, "scale": 2}},
    "srgan": {"data": "fashion-mnist", "image_size": 16, "batch_size": 2,
              "model_options": {"blocks": 1, "features": 4, "scale": 2, "d_features": 4, "d_dense": 8},
              "task_options": {"mse_steps": 1, "random_filters": 4}},
    "toy": {"data": "ring2d", "data_root": None, "batch_size": 32, "n_samples": 64,
            "model_options": {"g_hidden": [16], "d_hidden": [16]}},
}


def tiny(name: str, root, **overrides):
    values = {"model": name, "data_root": str(root), "steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 1,
              "ckpt_every": 1, "n_samples": 4, "progress": False, "device": "cpu"}
    values.update(TINY[name])
    values.update(overrides)
    if "{root}/style.png" in str(values.get("task_options")):  # fast-style: a small style image in the data folder
        _style_image(root / "style.png")
        values["task_options"] = {k: v.format(root=root) if isinstance(v, str) else v
                                  for k, v in values["task_options"].items()}
    return ganforge.resolve_config(flags=values)


def _style_image(path):
    from PIL import Image

    yy, xx = np.mgrid[0:24, 0:24]
    stripes = np.stack([(xx + yy) % 8 < 4, (xx - yy) % 6 < 3, yy % 5 < 2], -1).astype(np.uint8) * 255
    Image.fromarray(stripes).save(path)


def _weights(run, which="latest"):
    return load_file(str(resolve_checkpoint(run, which) / "weights.safetensors"))


def test_every_registered_model_has_a_tiny_configuration_and_every_family_a_model():
    missing = [m for m in MODELS.names() if m not in TINY]
    assert not missing, f"add a tiny configuration for the new model(s) {missing} to TINY in {__file__}"
    assert {family_of(m).name for m in MODELS.names()} == set(FAMILIES.names())
    assert sorted(m.name for f in FAMILIES.names() for m in FAMILIES.get(f).models) == MODELS.names()


@pytest.mark.parametrize("name", MODELS.names())
def test_model_trains_checkpoints_reloads_and_generates(name, idx_root, tmp_path):
    run_dir = tmp_path / "run"
    run = build_run(tiny(name, idx_root), run_dir)
    try:
        result = run.fit()
    finally:
        run.close()
    assert result.step == 2
    assert (run_dir / "checkpoints/step_00000002/weights.safetensors").is_file()
    assert (run_dir / "samples.png").is_file() and (run_dir / "losses.png").is_file()

    model = ganforge.load(run_dir)
    assert type(model) is family_of(name).pipeline
    assert model.step == 2 and model.name == name
    # the loaded weights are the trained ones, EMA copies included
    for net_name, net in run.task.nets.items():
        for k, v in net.state_dict().items():
            assert torch.equal(model.nets[net_name].state_dict()[k], v)
    assert set(model.ema) == set(run.pipeline.ema)

    # generating through the loaded object gives what the training run's own object gives
    inputs = model.example_inputs(3, seed=1)
    with torch.no_grad():
        G_live = run.pipeline.generator().eval()
        expected = run.pipeline.forward(G_live, inputs)
        got = model.forward(model.generator().eval(), inputs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    out_spec = model.output_spec()
    assert got.shape[0] == 3 and len(got.shape) == len(out_spec.shape)
    assert all(s == -1 or s == g for s, g in zip(out_spec.shape[1:], got.shape[1:], strict=True))
    if out_spec.range is not None:
        lo, hi = out_spec.range
        assert float(got.min()) >= lo and float(got.max()) <= hi

    if model.kind == "noise":
        images = model.sample(5, seed=2)
        assert images.dtype.name == "uint8" and images.shape[0] == 5
        assert (images == model.sample(5, seed=2)).all()
    elif model.kind == "translation":
        x = torch.randint(0, 256, (2, model.input_nc, 32, 32), dtype=torch.uint8)
        y = model.translate(x)
        assert y.dtype == torch.uint8 and tuple(y.shape) == (2, model.output_nc, 32, 32)
    elif model.kind == "stylization":
        x = torch.randint(0, 256, (2, 3, 30, 34), dtype=torch.uint8)  # sides not multiples of 4: padded, cropped
        y = model.stylize(x)
        assert [tuple(im.shape) for im in y] == [(3, 30, 34)] * 2 and y[0].dtype == torch.uint8
    elif model.kind == "super-resolution":
        x = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)  # any size: fully convolutional
        y = model.upscale(x)
        assert y.dtype == np.uint8 and y.shape == (2, 5 * model.scale, 7 * model.scale, 3)
    else:
        with pytest.raises(ganforge.GanforgeError, match="points, not images"):
            model.sample(4)


@pytest.mark.parametrize("name", MODELS.names())
def test_model_resumes_bit_identically(name, idx_root, tmp_path, monkeypatch):
    cfg = tiny(name, idx_root, steps=3)
    ganforge.train(cfg, tmp_path / "straight")
    train_interrupted(cfg, tmp_path / "resumed", stop_at=2, monkeypatch=monkeypatch)
    assert resolve_checkpoint(tmp_path / "resumed").name == "step_00000002"
    ganforge.resume(tmp_path / "resumed")
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{name}: resumed weights differ from the uninterrupted run's in {different[:3]}"
