"""The data set ships in every install: build the wheel and the sdist, install the wheel into a fresh venv, validate from there.

Offline: the wheel is built without build isolation and installed with --no-deps --no-index; the
fresh venv reaches ckit's dependencies (numpy, h5py, Keras 3, jax, ...) through a .pth line naming
this environment's site-packages, appended after its own, so `converters` comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

DATA_MEMBERS = ("converters/data/digits28.npz", "converters/data/SOURCE.json")


def _source_copy(tmp_path: Path) -> Path:
    # Building writes build/ and *.egg-info next to pyproject.toml: never into the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in ("inspector", "converters"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def _build(src: Path, out: Path) -> tuple[Path, Path]:
    for hook in ("build_wheel", "build_sdist"):  # one process each, as a build frontend runs them
        code = f"import sys; from setuptools import build_meta; build_meta.{hook}(sys.argv[1])"
        result = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("ckit-*.whl")
    (sdist,) = out.glob("ckit-*.tar.gz")
    return wheel, sdist


@pytest.mark.slow
def test_wheel_and_sdist_carry_the_data_and_the_installed_validator_runs(tmp_path):
    pytest.importorskip("jax")
    wheel, sdist = _build(_source_copy(tmp_path), tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        assert set(DATA_MEMBERS) <= set(archive.namelist())
        assert "converters/validate/__main__.py" in archive.namelist()
    with tarfile.open(sdist) as archive:
        top = sdist.name[: -len(".tar.gz")]
        assert {f"{top}/{m}" for m in DATA_MEMBERS} <= set(archive.getnames())

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300)
    # Plain path lines only: this environment's .pth files (its editable ckit) are not processed.
    Path(purelib, "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    work = tmp_path / "elsewhere"  # not the checkout, so nothing imports from it
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import converters.datasets as d; print(d.digits28_path())"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert where == str(Path(purelib, "converters", "data", "digits28.npz").resolve())
    result = subprocess.run([str(venv / "bin" / "ckconvert"), "validate", "--backend", "jax", "--device", "cpu"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("baseline (converters.zoo:seed_model on digits28, jax, cpu)")
    assert "PASSED" in result.stdout
