"""The package boundaries the design relies on, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_inspector_never_imports_frameworks_or_converters():
    for path in sorted((ROOT / "inspector").rglob("*.py")):
        bad = _imports(path) & {"tensorflow", "keras", "tf_keras", "converters", "torch", "jax"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_clis_hold_no_format_logic():
    # CLI modules may reach formats only through the registries and pipelines.
    for cli in (ROOT / "inspector/cli.py", ROOT / "converters/cli.py"):
        source = cli.read_text()
        for word in ("h5py", "BundleReader", "sstable", "zipfile", "struct"):
            assert word not in source, f"{cli.relative_to(ROOT)} mentions {word}"


def test_only_saved_model_output_imports_tensorflow():
    # Converting to a TF checkpoint (or any other format) must work without TensorFlow installed.
    for path in sorted((ROOT / "converters").rglob("*.py")):
        # The validator's worker imports the frameworks it validates with, in one place.
        if path.name in ("saved_model.py", "demo.py") or path == ROOT / "converters/validate/frameworks.py":
            continue
        assert "tensorflow" not in _imports(path), f"{path.relative_to(ROOT)} imports TensorFlow"


def test_every_extra_a_message_names_exists():
    """`require(module, extra, ...)` tells users to `pip install 'ckit[extra]'`: that extra must exist
    (messages once named 'keras3', 'tf_keras' and 'hdf5', which pip would have ignored)."""
    import tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named: set[str] = set()
    for path in sorted([*(ROOT / "inspector").rglob("*.py"), *(ROOT / "converters").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require" and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value is not None):
                named.add(node.args[1].value)
        for literal in ("ckit[",):
            text = path.read_text()
            start = 0
            while (start := text.find(literal, start)) != -1:
                end = text.find("]", start)
                name = text[start + len(literal):end]
                if name != "{extra}":
                    named.add(name)
                start = end
    assert named, "no require() call found: the check would prove nothing"
    assert named <= extras, f"messages name extras pyproject.toml lacks: {sorted(named - extras)}"
