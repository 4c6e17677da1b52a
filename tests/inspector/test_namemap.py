"""The rename/select map (--map): JSON and YAML files, rules in order, refusals as one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inspector.namemap import NameMap, NameMapError


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_map_renames_in_order_and_selects(tmp_path):
    path = _write(tmp_path, "map.json", json.dumps({
        "rename": [["^encoder/(.*)$", r"enc/\1"], ["kernel$", "weight"]],
        "include": ["^encoder/", "^decoder/"],
        "exclude": ["/bias$"],
    }))
    names = NameMap.load(path)
    assert names.apply("encoder/dense/kernel") == "enc/dense/weight"
    assert names.apply("decoder/kernel") == "decoder/weight"
    assert names.apply("encoder/dense/bias") is None  # excluded
    assert names.apply("optimizer/iter") is None  # not included


def test_yaml_map_with_named_groups(tmp_path):
    path = _write(tmp_path, "map.yaml", 'rename:\n  "^(?P<layer>\\\\w+)/kernel$": "\\\\g<layer>.weight"\nexclude: "^opt"\n')
    names = NameMap.load(path)
    assert names.apply("dense/kernel") == "dense.weight"
    assert names.apply("optimizer/x") is None


def test_yaml_never_builds_python_objects(tmp_path):
    path = _write(tmp_path, "evil.yml", "rename: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(NameMapError, match="not valid JSON or YAML"):
        NameMap.load(path)


def test_apply_all_refuses_two_names_made_one():
    names = NameMap.from_data({"rename": {"_1$": ""}})
    with pytest.raises(NameMapError, match="turns both 'dense' and 'dense_1' into 'dense'"):
        names.apply_all(["dense", "dense_1"])


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "the name map is a list; expected a mapping"),
        ({"renames": {}}, "unknown key\\(s\\) 'renames'"),
        ({"rename": {"(": "x"}}, "rename pattern '\\(' is not a valid regex"),
        ({"rename": {"(a)": "\\2"}}, "is not valid \\(invalid group reference 2"),
        ({"rename": {"a": "\\g<nope>"}}, "unknown group name 'nope'"),
        ({"rename": {"a": 3}}, "replacement for 'a' is a int; expected a string"),
        ({"rename": "a"}, "'rename' is a str; expected a mapping"),
        ({"exclude": {"a": 1}}, "'exclude' is a dict; expected a regex or a list"),
    ],
)
def test_bad_maps_are_one_line_errors(data, message):
    with pytest.raises(NameMapError, match=message) as info:
        NameMap.from_data(data, "m.json")
    assert "\n" not in str(info.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(NameMapError, match="cannot read the name map"):
        NameMap.load(tmp_path / "absent.json")
    with pytest.raises(NameMapError, match="not valid JSON"):
        NameMap.load(_write(tmp_path, "bad.json", "{rename: "))


def test_importing_namemap_loads_no_yaml():
    code = "import sys, inspector.namemap; print('yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
