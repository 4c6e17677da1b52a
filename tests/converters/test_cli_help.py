"""`ckconvert` help says what each command accepts and how --model is called."""

from __future__ import annotations

import re

import pytest

from converters.cli import main


def _help(capsys, *args: str) -> str:
    assert main([*args, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())  # unwrap click's line breaks


@pytest.mark.parametrize("command,formats", [("h5-to-tf", ["h5-weights", "h5-model"]),
                                             ("tf-to-h5", ["tf-checkpoint", "saved-model"])])
def test_format_choices_are_what_the_command_accepts(capsys, command, formats):
    text = _help(capsys, command)
    assert re.search(r"--format \[([^\]]+)\]", text).group(1).split("|") == formats


def test_convert_still_lists_every_source_format(capsys):
    from inspector.registry import FORMAT_IDS

    text = _help(capsys, "convert")
    assert re.search(r"--format \[([^\]]+)\]", text).group(1).split("|") == list(FORMAT_IDS)


def test_h5_to_tf_refuses_a_format_it_does_not_accept(capsys):
    assert main(["h5-to-tf", "--format", "safetensors", "a.safetensors", "out"]) == 2
    assert "'safetensors' is not one of 'h5-weights', 'h5-model'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["convert", "validate"])
def test_model_help_says_how_the_factory_is_called(capsys, command):
    text = _help(capsys, command)
    assert "calls build(keras)" in text and "current directory or PYTHONPATH" in text


def test_device_has_help(capsys):
    text = _help(capsys, "validate")
    assert re.search(r"--device \[auto\|cpu\|gpu\] Where the reloaded models run", text)
