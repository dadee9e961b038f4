"""The package as users install it: ``python -m build`` makes a wheel; installed alone into a fresh virtual
environment (ganforge from the wheel, never from this source tree) it answers ``--help``, ``info`` and trains
a few steps, so a package-data file left out of the wheel (presets, the classifier weights) or an import of a
module that is not in the wheel fails here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import make_idx_dataset

REPO = Path(__file__).resolve().parents[1]


def supported(spec: str, version: tuple[int, int]) -> bool:
    """Whether ``version`` satisfies a requires-python made of comma-separated >=, >, <, <=, == clauses."""
    ops = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
           "==": lambda a, b: a == b}
    for clause in spec.split(","):
        m = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*(\d+)\.(\d+)\s*", clause)
        assert m, f"cannot read requires-python clause {clause!r}"
        if not ops[m.group(1)](version, (int(m.group(2)), int(m.group(3)))):
            return False
    return True


def test_requires_python_covers_this_interpreter():
    found = re.search(r'^requires-python = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert found, "pyproject.toml states no requires-python"
    spec = found.group(1)
    assert supported(spec, sys.version_info[:2]), f"Python {sys.version.split()[0]} is outside {spec}"
    assert supported(">=3.10", (3, 10)) and not supported(">=3.10", (3, 9))
    assert not supported(">=3.10,<3.12", (3, 12))


def test_wheel_installs_and_trains(tmp_path):
    # Built from a copy of what the wheel is made of, so no stale build/ of the checkout can hide a missing file
    # and the checkout gets no build/ folder.
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = dist.glob("ganforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ganforge/presets/fmnist-demo.yaml" in names
    assert {"ganforge/studio/static/index.html", "ganforge/studio/static/app.js"} <= set(names)
    assert any(n.startswith("ganforge/metrics/weights/") and n.endswith(".safetensors") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)

    # A fresh environment without pip or ganforge; the dependencies (torch ...) come from this one's site-packages
    # through a .pth file, ganforge only from the wheel (pip install --no-deps --target its site-packages).
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    deps = Path(sysconfig.get_paths()["purelib"])
    (site / "dependencies.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    bin_dir = env_dir / "bin"
    scripts = site / "bin"  # pip --target puts the console script here
    (bin_dir / "ganforge").write_text((scripts / "ganforge").read_text().replace(
        (scripts / "ganforge").read_text().splitlines()[0], f"#!{python}"))
    (bin_dir / "ganforge").chmod(0o755)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"  # outside the source tree
    work.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    where = run(str(python), "-c", "import ganforge; print(ganforge.__file__)").strip()
    assert Path(where).is_relative_to(env_dir) and not Path(where).is_relative_to(REPO / "src"), where
    assert "train" in run("ganforge", "--help")
    assert run("ganforge", "info", "dcgan", "--image-size", "64", "--channels", "3").strip() == \
        '{"G": 3576704, "D": 2765568}'
    data = make_idx_dataset(tmp_path / "fmnist")
    run("ganforge", "train", "dcgan", "--data", "fashion-mnist", "--data-root", str(data), "--out", str(work / "run"),
        "--steps", "3", "--batch-size", "8", "model.ngf=8", "model.ndf=8", "sample_every=3", "ckpt_every=3",
        "progress=false")
    assert (work / "run" / "checkpoints" / "step_00000003" / "weights.safetensors").is_file()
    assert (work / "run" / "samples.png").is_file()
    run(str(python), "-c", "import ganforge; ganforge.resolve_config('cgan-fmnist'); "
        "from ganforge.metrics.fmnist import *")  # a preset and the shipped classifier's module, from the wheel
