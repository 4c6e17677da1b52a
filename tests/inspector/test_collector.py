"""inspector.collector.paused: the cyclic collector is off inside, and left as it was found."""

from __future__ import annotations

import gc

import pytest

from inspector.collector import paused


def test_paused_restores_what_it_found():
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it off: it stays off for the outer one
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()


def test_paused_restores_after_an_error():
    with pytest.raises(ValueError), paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_opening_an_artifact_leaves_the_collector_on():
    from inspector.registry import read_manifest
    from tests.conftest import FIXTURES

    read_manifest(FIXTURES / "seed/tf_keras/ckpt/weights")
    assert gc.isenabled()
