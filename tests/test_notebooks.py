"""The example notebooks (examples/*.ipynb): each runs top to bottom in a kernel of this interpreter, in quick
mode (GANFORGE_NOTEBOOK_QUICK=1: a few training steps) on a tiny Fashion-MNIST-format dataset, and every
committed notebook is stripped (no outputs, no execution counts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import make_idx_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL = "ganforge-tests"


def test_every_lecture_topic_has_a_notebook():
    assert [p.name for p in NOTEBOOKS] == ["01_minimax_toy_gan.ipynb", "02_dcgan_fashion_mnist.ipynb",
                                           "03_conditional_and_latent.ipynb", "04_pix2pix.ipynb", "05_cyclegan.ipynb",
                                           "06_style_transfer.ipynb", "07_super_resolution.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs of {cell.id}"
    assert "ganforge" in code[0].source and "%pip install" in code[0].source, "the first code cell installs ganforge"
    assert "GANFORGE_NOTEBOOK_QUICK" in code[1].source, "the second code cell holds the parameters"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernel spec for this interpreter (sys.executable: the venv, never a system python) in a temporary prefix."""
    prefix = tmp_path_factory.mktemp("kernel")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL],
                   check=True, capture_output=True)
    jupyter = prefix / "share" / "jupyter"
    spec = json.loads((jupyter / "kernels" / KERNEL / "kernel.json").read_text())
    assert Path(spec["argv"][0]) == Path(sys.executable)
    return jupyter


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_idx_dataset(tmp_path_factory.mktemp("fmnist"), n_train=512, n_test=256)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, kernel_dir, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("GANFORGE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("GANFORGE_DATA", str(tiny_data))  # found before /usr/share/datasets
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=240, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    pictures = [o for o in outputs if o.output_type in ("display_data", "execute_result")
                and ({"image/png", "text/html"} & set(o.data))]
    assert pictures, f"{path.name} showed no picture"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "IProgress not found" not in text and "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # everything it wrote is under runs/
