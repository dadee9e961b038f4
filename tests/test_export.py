"""``ganforge export``: every registered generator to ONNX and .pt2, run and compared with PyTorch eager.

The models come from the registry with the tiny settings of tests/test_contract.py, so a new model is
exported here as soon as it has its tiny configuration. Each file is checked twice: by the export itself
(batch 1 and 5, a second size for translation networks) and here, independently, on other inputs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import ganforge
import ganforge.export as gexport
from conftest import make_idx_dataset
from ganforge.cli import main
from ganforge.families import MODELS, family_of, load
from ganforge.viz import to_uint8
from test_contract import tiny

README = Path(__file__).resolve().parents[1] / "README.md"
MODEL_NAMES = MODELS.names()


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def trained(space):
    """name -> the run folder of a tiny training of that registered model (trained once per module)."""
    root = make_idx_dataset(space / "fmnist")
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("GANFORGE_OFFLINE", "1")
                mp.setenv("XDG_CACHE_HOME", str(space / "cache"))
                ganforge.train(tiny(name, root, steps=1), space / f"run-{name}")
            runs[name] = space / f"run-{name}"
        return runs[name]

    return get


@pytest.fixture(scope="module")
def exported(space, trained):
    """(name, fmt) -> (the export's result, the file): each model exported once per format per module."""
    files: dict[tuple[str, str], tuple[dict, Path]] = {}

    def get(name: str, fmt: str) -> tuple[dict, Path]:
        if (name, fmt) not in files:
            out = space / "files" / f"{name}.{fmt}"
            files[name, fmt] = gexport.export(trained(name), fmt, out), out
        return files[name, fmt]

    return get


def _run(fmt: str, path: Path, inputs: dict[str, torch.Tensor], names: list[str]) -> np.ndarray:
    """The file's output for ``inputs``, run here without ganforge's check code."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == names
        return session.run(None, {n: inputs[n].numpy() for n in names})[0]
    module = torch.export.load(str(path)).module()
    with torch.no_grad():
        return module(*(inputs[n] for n in names)).numpy()


def _eager(model, inputs: dict[str, torch.Tensor], ema: bool) -> np.ndarray:
    net = model.generator(ema).eval()
    with torch.no_grad():
        return model.forward(net, inputs).numpy()


def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_sentence(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text and lines[0].endswith(".")
    return lines[0]


# ---------------------------------------------------------------------------------------------- every model


@pytest.mark.parametrize("fmt", gexport.FORMATS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_registered_generator_exports_and_matches_pytorch(name, fmt, exported, trained):
    result, path = exported(name, fmt)
    model = load(trained(name))
    assert path.is_file() and result["path"] == str(path) and result["bytes"] == path.stat().st_size
    assert result["format"] == fmt and result["model"] == name and result["step"] == 1
    assert result["ema"] == bool(model.ema) and result["inference_mode"] == "eval"
    # the export's own check: batch 1 and 5, and a second (non-square) size for translation networks
    spatial = any(len(s.dynamic) > 1 for s in model.input_specs())
    cases = result["cases"]
    assert [c["batch"] for c in cases[:2]] == [1, 5]
    assert len({tuple(c["size"]) for c in cases if c["size"]}) == (2 if spatial else 0)
    assert result["max_abs_diff"] <= result["tolerance"] <= 1e-4 * (1 if model.output_spec().range else 100)
    assert result["seconds"] > 0

    # checked again here, on other inputs: batch 1 and 5 (translation networks: batch 5, and 1 at another size)
    names = [s.name for s in model.input_specs()]
    m = int(getattr(model, "multiple", 1))
    base = model.example_inputs(1, 0)[names[0]].shape[-1] if spatial else None
    for n, size in ((1, None), (5, None)) if not spatial else ((5, (base, base)), (1, (2 * m, 3 * m))):
        inputs = gexport.inputs_at(model, n, seed=11, size=size)
        got, want = _run(fmt, path, inputs, names), _eager(model, inputs, result["ema"])
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max()), (n, size)

    meta = result["metadata"]
    fmt_read, on_file = gexport.read_metadata(path)
    assert fmt_read == fmt and {k: on_file.get(k) for k in meta} == meta
    assert meta["format"] == "ganforge-export" and meta["ganforge_version"] == ganforge.__version__
    assert meta["model"] == name and meta["pipeline"] == model.kind and meta["inference_mode"] == "eval"
    assert meta["source_checkpoint"] == str(model.path) and meta["source_step"] == "1"
    assert meta["ema"] == ("true" if model.ema else "false")
    assert [i["name"] for i in json.loads(meta["inputs"])] == names
    assert json.loads(meta["output"])["range"] == (list(model.output_spec().range) if model.output_spec().range
                                                   else None)
    if family_of(model).can("sample") or family_of(model).can("points"):
        assert int(meta["latent_size"]) == model.nz
    if spatial:
        assert int(meta["spatial_multiple"]) == m
        assert json.loads(meta["inputs"])[0]["range"] == [-1.0, 1.0]
    assert json.loads(meta["class_names"]) == (model.class_names if getattr(model, "num_classes", 0) else [])


@pytest.mark.parametrize("fmt", gexport.FORMATS)
def test_class_labels_are_honoured(fmt, exported, trained):
    _, path = exported("cgan", fmt)
    model = load(trained("cgan"))
    z = model.latents(4, seed=3)
    outs = []
    for label in (0, 1):
        inputs = {"z": z, "y": torch.full((4,), label, dtype=torch.long)}
        got = _run(fmt, path, inputs, ["z", "y"])
        np.testing.assert_allclose(got, _eager(model, inputs, False), atol=1e-6, rtol=0)
        outs.append(got)
    assert np.abs(outs[0] - outs[1]).max() > 1e-4  # a tiny 2-step G: outputs near 0, classes 1e-3 apart
    mixed = {"z": z, "y": torch.tensor([0, 3, 5, 9])}
    np.testing.assert_allclose(_run(fmt, path, mixed, ["z", "y"]), _eager(model, mixed, False), atol=1e-6, rtol=0)


TWO_WAY = [m for m in MODEL_NAMES if family_of(m).can("cycle")]


@pytest.mark.parametrize("name", TWO_WAY)
def test_the_other_direction_exports_its_own_generator(name, trained, tmp_path, capsys):
    out = tmp_path / "back.pt2"
    rc, text, err = cli(capsys, "export", trained(name), "--out", out, "--direction", "BtoA")
    assert rc == 0, err
    model = load(trained(name))
    model.direction = "BtoA"
    _, meta = gexport.load_pt2(out)
    assert meta["direction"] == "BtoA" and json.loads(meta["inputs"])[0]["name"] == model.input_specs()[0].name
    inputs = model.example_inputs(2, seed=5)
    np.testing.assert_allclose(_run("pt2", out, inputs, [model.input_specs()[0].name]), _eager(model, inputs, False),
                               atol=1e-5, rtol=0)
    rc, text, err = cli(capsys, "export", "--check", out)  # checks against the recorded direction
    assert rc == 0 and "matches PyTorch" in text, err


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("fmt", gexport.FORMATS)
def test_a_corrupt_or_truncated_file_fails_with_one_sentence(fmt, exported, tmp_path, capsys):
    _, good = exported("dcgan", fmt)
    data = good.read_bytes()
    loader = gexport.load_onnx if fmt == "onnx" else gexport.load_pt2
    for kind, content in (("truncated", data[: len(data) // 2]), ("corrupt", b"\x00garbage" * 50),
                          ("empty", b"")):
        bad = tmp_path / f"{kind}.{fmt}"
        bad.write_bytes(content)
        with pytest.raises(ganforge.GanforgeError) as caught:
            loader(bad)
        message = one_sentence(str(caught.value))
        assert str(bad) in message and "corrupt or truncated" in message
        rc, out, err = cli(capsys, "export", "--check", bad)
        assert rc == 2 and str(bad) in one_sentence(err)
    with pytest.raises(ganforge.GanforgeError, match="No .* file at"):
        loader(tmp_path / f"missing.{fmt}")


def test_pt2_archives_that_would_unpickle_are_refused(exported, tmp_path):
    _, good = exported("dcgan", "pt2")
    legacy = tmp_path / "legacy.pt2"
    with zipfile.ZipFile(legacy, "w") as z:
        z.writestr("legacy/data.pkl", b"not looked at")
    with pytest.raises(ganforge.GanforgeError, match="unpickle"):
        gexport.load_pt2(legacy)
    # the same archive as a good file, with one weight marked as pickled
    pickled = tmp_path / "pickled.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(pickled, "w") as dst:
        marked = False
        for info in src.infolist():
            data = src.read(info.filename)
            if not marked and "/data/weights/" in info.filename and info.filename.endswith(".json"):
                config = json.loads(data)
                first = next(iter(config["config"]))
                config["config"][first]["use_pickle"] = True
                data, marked = json.dumps(config).encode(), True
            dst.writestr(info, data)
    assert marked
    with pytest.raises(ganforge.GanforgeError, match=r"unpickle.*weights_config"):
        gexport.load_pt2(pickled)
    gexport.load_pt2(good)  # the file itself passes


def test_refuses_to_overwrite_without_force(trained, tmp_path):
    out = tmp_path / "mine.pt2"
    out.write_bytes(b"the user's own file")
    with pytest.raises(ganforge.GanforgeError, match="already exists; pass --force"):
        gexport.export(trained("gan"), "pt2", out)
    assert out.read_bytes() == b"the user's own file"
    result = gexport.export(trained("gan"), "pt2", out, force=True)
    assert result["max_abs_diff"] <= 1e-4 and gexport.load_pt2(out)[1]["model"] == "gan"


def test_a_failed_check_keeps_no_file_and_leaves_the_users(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(gexport, "TOLERANCE", -1.0)  # no difference passes
    out = tmp_path / "g.pt2"
    with pytest.raises(ganforge.GanforgeError) as caught:
        gexport.export(trained("gan"), "pt2", out)
    assert re.fullmatch(r"The exported pt2 file differs from PyTorch by \S+ \(max abs, batch 1\), beyond the "
                        r"tolerance -1; it was not kept\.", str(caught.value))
    out.write_bytes(b"older")
    with pytest.raises(ganforge.GanforgeError, match="differs from PyTorch"):
        gexport.export(trained("gan"), "pt2", out, force=True)
    assert out.read_bytes() == b"older"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt2"]


def test_bad_arguments_are_one_sentence(trained, tmp_path, capsys):
    run = trained("dcgan")
    for args, expected in (
        ((run, "--format", "onnx", "--out", tmp_path / "x.pt2"), "ends in .pt2 but the format is onnx"),
        ((run, "--out", tmp_path / "x.bin"), "Give --format onnx or pt2"),
        ((run, "--out", tmp_path / "x.pt2", "--direction", "BtoA"), "--direction applies to models"),
        ((run, "--out", tmp_path), "is a folder"),
        ((run, "--out", tmp_path / "x.pt2", "--ema", "--ckpt", "7"), "no checkpoint at step 7"),
        ((run,), "--out FILE"),
        (("--check", tmp_path / "none.onnx", "--out", tmp_path / "y.onnx"), "--check takes"),
    ):
        rc, out, err = cli(capsys, "export", *args)
        assert rc == 2 and expected in one_sentence(err), (args, err)
    rc, out, err = cli(capsys, "export", trained("pix2pix"), "--out", tmp_path / "p.pt2", "--ema")
    assert rc == 2 and "has no EMA weights" in one_sentence(err)
    assert not any(tmp_path.iterdir())


def test_without_the_extra_onnx_export_says_what_to_install(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ganforge.GanforgeError) as caught:
        gexport.export(trained("dcgan"), "onnx", tmp_path / "g.onnx")
    assert "pip install 'ganforge[export]'" in one_sentence(str(caught.value))
    rc, out, err = cli(capsys, "export", trained("dcgan"), "--out", tmp_path / "g.onnx")
    assert rc == 2 and "pip install 'ganforge[export]'" in one_sentence(err)
    assert not any(tmp_path.iterdir())
    gexport.export(trained("dcgan"), "pt2", tmp_path / "g.pt2")  # .pt2 needs torch only


# ---------------------------------------------------------------------------------------------- the command


def test_cli_prints_the_difference_and_checks_again(trained, tmp_path, capsys):
    out = tmp_path / "d.onnx"
    rc, text, err = cli(capsys, "export", trained("dcgan"), "--format", "onnx", "--out", out, "--no-ema")
    assert rc == 0, err
    assert re.search(r"^Wrote .*d\.onnx \(onnx, .* step 1, raw weights\) .* max abs difference \S+ "
                     r"\(tolerance 1e-04\)\.$", text.strip())
    assert gexport.read_metadata(out)[1]["ema"] == "false"
    rc, text, err = cli(capsys, "export", "--check", out)
    assert rc == 0 and "matches PyTorch" in text and "raw weights" in text


def test_pix2pix_export_says_once_that_it_is_eval_mode(trained, tmp_path, capsys):
    rc, text, err = cli(capsys, "export", trained("pix2pix"), "--out", tmp_path / "p.pt2")
    assert rc == 0, err
    assert text.count("eval mode") == 1 and text.startswith("Exported in eval mode")
    model = load(trained("pix2pix"))
    model.mode = "reference"
    note = gexport.mode_note(model)
    assert "dropout on" in note and "cannot be reproduced" in note and "--mode eval" in note


# ---------------------------------------------------------------------------------------------- README


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Export\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Export section of README.md has one python example"
    return blocks[0]


def test_readme_example_samples_with_onnxruntime_and_numpy_alone(exported, trained, tmp_path):
    _, path = exported("dcgan", "onnx")
    shutil.copy(path, tmp_path / "dcgan.onnx")
    code = _readme_example() + (
        "\nimport sys\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ganforge'))\n"
        "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    images = np.load(tmp_path / "samples.npy")
    model = load(trained("dcgan"))
    assert images.shape == (16, *model.image_shape()[1:], model.image_shape()[0]) and images.dtype == np.uint8
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((16, model.nz)).astype(np.float32))
    want = to_uint8(torch.from_numpy(_eager(model, {"z": z}, True))).permute(0, 2, 3, 1).numpy()
    assert np.abs(images.astype(int) - want.astype(int)).max() <= 1
