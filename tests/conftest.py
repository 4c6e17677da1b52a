"""Shared test helpers: where the committed fixtures live, and the oracle imports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"

# Quiet TensorFlow's C++ logging in the oracle tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists() and not path.with_name(path.name + ".index").exists():
        pytest.fail(f"fixture {path} is missing: run python fixtures/make_fixtures.py")
    return path
