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


SEED_KERNEL_KEY = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"


def flip_byte_in_tensor(prefix: Path, key: str = SEED_KERNEL_KEY) -> None:
    """Damage one byte in the middle of the stored bytes of checkpoint tensor `key`."""
    from inspector.formats.tf_bundle import BundleReader

    bundle = BundleReader(prefix)
    try:
        entry = bundle.entries[key.encode()]
        shard = prefix.with_name(f"{prefix.name}.data-{entry.shard_id:05d}-of-{bundle.num_shards:05d}")
        middle = entry.offset + entry.size // 2
    finally:
        bundle.close()
    raw = bytearray(shard.read_bytes())
    raw[middle] ^= 0xFF
    shard.write_bytes(bytes(raw))


def only_line(text: str) -> str:
    """The single non-empty line of a CLI's stderr; a traceback or ckit's staging path fails the test."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    assert ".ckit-" not in text  # ckit's staging directory is never named
    return lines[0]
