"""TrainConfig: precedence of presets, flags and overrides; value parsing; validation messages."""

from __future__ import annotations

import math

import pytest

from ganforge.config import (
    PRESET_DIR,
    TrainConfig,
    config_from_dict,
    load_preset,
    parse_override,
    preset_names,
    resolve_config,
)
from ganforge.errors import GanforgeError
from ganforge.families import model_config


def test_defaults():
    cfg = resolve_config()
    assert cfg == TrainConfig()
    assert (cfg.model, cfg.data.name, cfg.task_options, cfg.batch_size, cfg.lr_g, cfg.beta1) == (
        "dcgan", "fashion-mnist", {}, None, 2e-4, 0.5)  # batch None: 64, or a smaller dataset's size
    assert cfg.steps is None and cfg.epochs is None


def test_precedence_preset_then_flags_then_overrides():
    preset = resolve_config("fmnist-demo")
    steps = load_preset("fmnist-demo")["steps"]
    assert preset.batch_size == load_preset("fmnist-demo")["batch_size"] and preset.steps == steps
    ema = load_preset("fmnist-demo")["ema_decay"]
    assert preset.ema_decay == ema and ema > 0

    flags = resolve_config("fmnist-demo", flags={"batch_size": 48, "seed": 5})
    assert flags.batch_size == 48 and flags.seed == 5
    assert flags.ema_decay == ema  # the rest of the preset stays

    both = resolve_config("fmnist-demo", flags={"batch_size": 48, "seed": 5},
                          overrides=["batch_size=16", "ema_decay=0.9"])
    assert both.batch_size == 16 and both.ema_decay == 0.9
    assert both.seed == 5 and both.steps == steps


def test_flags_that_are_none_mean_not_given():
    cfg = resolve_config("fmnist-demo", flags={"batch_size": None, "steps": None, "precision": None})
    preset = load_preset("fmnist-demo")
    assert cfg.batch_size == preset["batch_size"] == 32 and cfg.steps == preset["steps"]
    assert cfg.precision == preset["precision"] == "auto"


def test_model_dot_overrides_go_to_model_options_and_merge():
    cfg = resolve_config("fmnist-demo", flags={"model_options": {"nz": 16}},
                         overrides=["model.ngf=48", "model.arch=examples"])
    assert cfg.model_options == {"ngf": 48, "ndf": 48, "nz": 16, "arch": "examples",  # ndf ... from the preset
                                 "cond": "projection", "g_cond": "cbn", "clusters": 50}
    assert "model.ngf" not in cfg.to_dict()
    # the options are the model's constructor options
    assert model_config(cfg.model, cfg.model_options).ngf == 48


def test_another_model_than_the_presets_leaves_the_presets_model_options_out():
    """fmnist-demo's options (cond, clusters) are cgan's: naming dcgan used to be refused over options the
    user never wrote. They are left out, with a warning naming them, and the options given again apply."""
    with pytest.warns(UserWarning, match=r"preset 'fmnist-demo' is for model 'cgan'.*model\.clusters=50.*'dcgan'"):
        cfg = resolve_config("fmnist-demo", flags={"model": "dcgan"}, overrides=["model.ngf=32"])
    assert cfg.model == "dcgan" and cfg.model_options == {"ngf": 32} and cfg.task_options == {}
    assert cfg.batch_size == load_preset("fmnist-demo")["batch_size"]  # the rest of the recipe stays
    model_config(cfg.model, cfg.model_options)  # dcgan accepts what is left
    with pytest.warns(UserWarning, match="left out for model 'dcgan'"):
        assert resolve_config("fmnist-demo", overrides=["model=dcgan"]).model_options == {}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the preset's own model keeps its options, silently
        assert resolve_config("fmnist-demo", flags={"model": "cgan"}).model_options["clusters"] == 50


def test_model_dot_overrides_parse_lists():
    cfg = resolve_config(flags={"model": "gan"}, overrides=["model.g_hidden=[64, 128]", "model.dropout=0"])
    assert cfg.model_options == {"g_hidden": [64, 128], "dropout": 0}


def test_steps_on_the_command_line_clears_a_presets_epochs():
    preset = resolve_config("dcgan-examples-64")
    assert preset.epochs == 25 and preset.steps is None
    cfg = resolve_config("dcgan-examples-64", flags={"steps": 10})
    assert cfg.steps == 10 and cfg.epochs is None
    cfg = resolve_config("dcgan-examples-64", overrides=["steps=7"])
    assert cfg.steps == 7 and cfg.epochs is None
    # and the other way round: epochs override a preset's steps
    cfg = resolve_config("fmnist-demo", flags={"epochs": 1.5})
    assert cfg.epochs == 1.5 and cfg.steps is None
    # a later source wins over an earlier one
    cfg = resolve_config(flags={"steps": 10}, overrides=["epochs=2"])
    assert cfg.epochs == 2 and cfg.steps is None


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("lr_g=1e-4", "lr_g", 1e-4),
        ("lr_d=2.0e-4", "lr_d", 2e-4),
        ("gp_weight=10", "gp_weight", 10),
        ("ema_decay=0.999", "ema_decay", 0.999),
        ("x=[0.5, 0.9]", "x", [0.5, 0.9]),
        ("compile=true", "compile", True),
        ("channels_last=false", "channels_last", False),
        ("loss=wgan-gp", "loss", "wgan-gp"),
        ("data_root=/tmp/x=y", "data_root", "/tmp/x=y"),
        (" seed = 3", "seed", 3),
        ("image_size=", "image_size", None),
    ],
)
def test_parse_override_values(text, key, value):
    k, v = parse_override(text)
    assert k == key
    assert v == value
    assert type(v) is type(value)


def test_parsed_values_reach_the_config_with_their_types():
    cfg = resolve_config(overrides=["lr_g=1e-4", "compile=true", "channels_last=false", "steps=12",
                                    "beta2=0.9"])
    assert cfg.lr_g == 1e-4 and isinstance(cfg.lr_g, float)
    assert cfg.compile is True and cfg.channels_last is False
    assert cfg.steps == 12 and isinstance(cfg.steps, int)
    assert cfg.beta2 == 0.9


def test_override_without_equals_sign():
    with pytest.raises(GanforgeError, match="'lr_g'.*key=value"):
        parse_override("lr_g")


@pytest.mark.parametrize("name", preset_names())
def test_shipped_presets_load_and_validate(name):
    raw = load_preset(name)
    assert isinstance(raw, dict) and raw
    cfg = resolve_config(name)
    cfg.validate()
    for key, value in raw.items():
        if key == "data":  # the data part: a mapping of DataConfig fields
            assert {k: getattr(cfg.data, k) for k in value} == value
        elif key not in ("model_options", "task_options"):
            assert getattr(cfg, key) == value, key
    assert cfg.model_options == raw.get("model_options", {})
    assert cfg.task_options == raw.get("task_options", {})
    # the model options are valid too, with the image size / channels training takes from the data
    # (the presets without image_size train on 28x28 grayscale Fashion-MNIST)
    import dataclasses

    from ganforge.families import MODELS

    fields = {f.name for f in dataclasses.fields(MODELS.get(cfg.model).config_cls)}
    data_shape = {"image_size": cfg.data.image_size or 28, "channels": cfg.data.channels or 1}
    model_config(cfg.model, {**cfg.model_options, **{k: v for k, v in data_shape.items() if k in fields}})
    assert (cfg.steps is None) != (cfg.epochs is None)  # each preset says how long


def test_the_shipped_presets_are_the_documented_ones():
    assert {"fmnist-demo", "dcgan-tutorial-28", "dcgan-examples-64", "gan-mlp-28"} <= set(preset_names())
    tutorial = resolve_config("dcgan-tutorial-28")
    assert tutorial.model_options["arch"] == "tutorial"
    assert (tutorial.lr_g, tutorial.beta1, tutorial.batch_size) == (1e-4, 0.9, 256)
    examples = resolve_config("dcgan-examples-64")
    assert (examples.data.image_size, examples.data.channels, examples.epochs) == (64, 3, 25)
    assert resolve_config("gan-mlp-28").model == "gan"


def test_preset_by_path(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("model: gan\nlr_g: 1.0e-4\nloss: hinge\nd_steps: 2\ncompile: false\nmodel_options: {nz: 8}\n")
    cfg = resolve_config(str(p))
    assert (cfg.model, cfg.task_options, cfg.model_options) == ("gan", {"loss": "hinge", "d_steps": 2}, {"nz": 8})
    assert cfg.lr_g == 1e-4 and cfg.compile is False


def test_preset_exponent_without_a_dot_is_a_float(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-4 as the string '1e-4'; key=value overrides convert it, presets must too
    p = tmp_path / "lr.yaml"
    p.write_text("lr_g: 1e-4\nlr_d: 4e-4\n")
    cfg = resolve_config(str(p))
    assert cfg.lr_g == 1e-4 and isinstance(cfg.lr_g, float)
    assert cfg.lr_d == 4e-4 and isinstance(cfg.lr_d, float)


def test_unknown_preset_lists_the_shipped_ones():
    with pytest.raises(GanforgeError) as err:
        resolve_config("no-such-preset")
    assert "'no-such-preset'" in str(err.value)
    assert "fmnist-demo" in str(err.value)


def _message(**values) -> str:
    """The sentence for ``values``: from the config, or from the task's options, both checked before a run
    starts (task options such as d_steps belong to the model's task)."""
    from ganforge.train.run import task_options

    with pytest.raises(GanforgeError) as err:
        task_options(resolve_config(flags=values))
    return str(err.value)


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        ({"lr_g": -1e-4}, ["lr_g", "-0.0001"]),
        ({"lr_d": 0.0}, ["lr_d", "0.0"]),
        ({"batch_size": 0}, ["batch_size", "0"]),
        ({"batch_size": 8.5}, ["batch_size", "8.5"]),
        ({"d_steps": -2}, ["d_steps", "-2"]),
        ({"beta1": 1.0}, ["beta1", "1.0"]),
        ({"beta2": -0.1}, ["beta2", "-0.1"]),
        ({"ema_decay": 1.5}, ["ema_decay", "1.5"]),
        ({"precision": "fp8"}, ["precision", "'fp8'", "fp32, bf16, fp16"]),
        ({"lr_schedule": "cosine"}, ["lr_schedule", "'cosine'"]),
        ({"steps": 0}, ["steps", "0"]),
        ({"steps": 2.5}, ["steps", "2.5"]),
        ({"epochs": -1}, ["epochs", "-1"]),
        ({"image_size": -28}, ["image_size", "-28"]),
        ({"gp_weight": -10}, ["gp_weight", "-10"]),
        ({"lr_decay_start": 2}, ["lr_decay_start", "2"]),
        ({"lr_g": "fast"}, ["lr_g", "'fast'"]),
        ({"batch_size": True}, ["batch_size", "True"]),
    ],
)
def test_invalid_values_name_the_value(values, needles):
    msg = _message(**values)
    for needle in needles:
        assert needle in msg


def test_nan_learning_rate_is_refused():
    with pytest.raises(GanforgeError, match="lr_g.*nan"):
        resolve_config(overrides=["lr_g=nan"])
    assert _message(lr_d=math.nan).startswith("lr_d must be positive, got nan")


def test_unknown_key_is_named():
    with pytest.raises(GanforgeError, match="'lr'"):
        resolve_config(overrides=["lr=1e-3"])
    with pytest.raises(GanforgeError, match="'learning_rate'.*command line"):
        resolve_config(flags={"learning_rate": 1e-3})


def test_unknown_key_with_dashes_suggests_the_field():
    with pytest.raises(GanforgeError, match="'lr-g'.*did you mean 'lr_g'"):
        resolve_config(overrides=["lr-g=1e-3"])


def test_unknown_key_in_a_preset_names_key_and_preset(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text("model: dcgan\nbatchsize: 32\n")
    with pytest.raises(GanforgeError) as err:
        resolve_config(str(p))
    assert "'batchsize'" in str(err.value)
    assert "typo.yaml" in str(err.value)


def test_both_steps_and_epochs_in_one_config_object():
    with pytest.raises(GanforgeError, match="either steps or epochs"):
        TrainConfig(steps=10, epochs=2.0).validate()


def test_both_steps_and_epochs_in_one_flags_source():
    with pytest.raises(GanforgeError, match="either steps or epochs"):
        resolve_config(flags={"steps": 10, "epochs": 2.0})


def test_both_steps_and_epochs_in_one_overrides_source():
    with pytest.raises(GanforgeError, match="either steps or epochs"):
        resolve_config(overrides=["steps=10", "epochs=2"])


def test_both_steps_and_epochs_in_one_preset_file(tmp_path):
    p = tmp_path / "both.yaml"
    p.write_text("steps: 100\nepochs: 3\n")
    with pytest.raises(GanforgeError, match="either steps or epochs"):
        resolve_config(str(p))


@pytest.mark.parametrize("name, text, words", [
    ("broken.yaml", "model: dcgan\nmodel_options: {ngf: 8\nlr_g: [1e-4\n", ["broken.yaml", "not valid YAML"]),
    ("list.yaml", "- model: dcgan\n- steps: 10\n", ["list.yaml", "mapping"]),
])
def test_preset_files_that_are_not_a_mapping_of_settings(tmp_path, name, text, words):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(GanforgeError) as err:
        resolve_config(str(p))
    for word in words:
        assert word in str(err.value)


def test_empty_preset_gives_the_defaults(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("# nothing here\n")
    assert resolve_config(str(p)) == TrainConfig()


def test_model_options_that_are_not_a_mapping(tmp_path):
    p = tmp_path / "opts.yaml"
    p.write_text("model_options: [8, 8]\n")
    with pytest.raises(GanforgeError, match="model_options"):
        resolve_config(str(p))


def test_config_round_trips_through_a_dict():
    cfg = resolve_config("fmnist-demo", flags={"steps": 5}, overrides=["model.nz=16", "loss=hinge"])
    assert config_from_dict(cfg.to_dict()) == cfg
    # a config saved by another version: unknown keys are left out with a warning, not refused
    with pytest.warns(UserWarning, match="unknown_field"):
        assert config_from_dict({**cfg.to_dict(), "unknown_field": 1}) == cfg
    with pytest.raises(GanforgeError, match="'unknown_field'"):
        config_from_dict({**cfg.to_dict(), "unknown_field": 1}, strict=True)


def test_presets_live_in_the_package():
    assert PRESET_DIR.is_dir()
    assert sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) == preset_names()
