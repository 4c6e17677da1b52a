"""A user's rename/select map for tensor names: regex -> replacement, plus include/exclude patterns.

Users moving weights between codebases rename (`^model/` -> `net/`) and pick
(`exclude: ["^optimizer/"]`) tensors.  The map is a JSON or YAML file:

    {
      "rename":  {"^encoder/(.*)$": "enc/\\\\1", "kernel$": "weight"},   # or a list of [regex, replacement]
      "include": ["^encoder/", "^decoder/"],                            # keep only names matching one of these
      "exclude": ["/bias$"]                                             # then drop names matching any of these
    }

`include` and `exclude` are tested against the name as it arrives; the kept
name then passes through every `rename` rule in order (`re.sub`, Python's
replacement syntax: `\\1`, `\\g<name>`).  Patterns are searched, not
anchored: anchor them with `^`/`$` when a whole name is meant.

`ckinspect dump --map` and `diff --map` use it, and `ckconvert convert --map`
applies it on the way.  It applies to the names flat targets (safetensors, npz) use,
`flat_names`, so dump shows exactly what a conversion will write:

    keras  the canonical Keras name where the reader placed the tensor in a Keras layer
           (`dense_1/kernel`), optimizer state as `optimizer/<name>`; everything else,
           and any name two tensors would share, by its own path (below)
    keys   every tensor by its own path: the object-graph path of a TF2 checkpoint
           (`actor/blocks/0/w`, the key without `/.ATTRIBUTES/VARIABLE_VALUE`), the
           variable name of a TF1 checkpoint, the dataset path of an HDF5 file
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import CkitError, MissingDependency
from .manifest import Manifest, TensorInfo

_KEYS = ("rename", "include", "exclude")
NAME_SCHEMES = ("keras", "keys")
OPTIMIZER_PREFIX = "optimizer/"
_VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_EXAMPLE = '{"rename": {"^old/": "new/"}, "include": ["^keep/"], "exclude": ["^optimizer/"]}'


class NameMapError(CkitError, ValueError):
    """A map file that cannot be read or holds something other than a name map."""


@dataclass(frozen=True)
class NameMap:
    """Compiled rename rules and include/exclude patterns; `apply(name)` gives the new name or None."""

    rename: tuple[tuple[re.Pattern[str], str], ...] = ()
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    source: str = "<map>"

    @classmethod
    def load(cls, path: str | Path) -> "NameMap":
        """Read a JSON (.json) or YAML (.yaml/.yml, or anything JSON cannot parse) map file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise NameMapError(
                f"{path}: cannot read the name map ({reason}); expected a readable JSON or YAML file; check --map"
            ) from None
        return cls.from_data(_parse(text, path), str(path))

    @classmethod
    def from_data(cls, data: Any, source: str = "<map>") -> "NameMap":
        """A map from already-parsed JSON/YAML data (a mapping with rename/include/exclude)."""
        if not isinstance(data, dict):
            raise NameMapError(
                f"{source}: the name map is a {type(data).__name__}; expected a mapping like {_EXAMPLE}"
            )
        unknown = sorted(str(k) for k in data if k not in _KEYS)
        if unknown:
            raise NameMapError(
                f"{source}: unknown key(s) {', '.join(repr(k) for k in unknown)} in the name map; expected only "
                f"{', '.join(_KEYS)}, e.g. {_EXAMPLE}"
            )
        rename = data.get("rename") or {}
        if isinstance(rename, dict):
            pairs = list(rename.items())
        elif isinstance(rename, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in rename):
            pairs = [tuple(p) for p in rename]
        else:
            raise NameMapError(
                f"{source}: 'rename' is a {type(rename).__name__}; expected a mapping of regex to replacement "
                "or a list of [regex, replacement] pairs"
            )
        compiled = []
        for pattern, replacement in pairs:
            if not isinstance(replacement, str):
                raise NameMapError(
                    f"{source}: the replacement for {pattern!r} is a {type(replacement).__name__}; expected a string"
                )
            regex = _compile(pattern, source, "rename")
            try:  # a bad group reference shows only when used: check it now, against the pattern's groups
                _check_template(regex, replacement)
            except (re.error, IndexError) as exc:
                raise NameMapError(
                    f"{source}: replacement {replacement!r} for {pattern!r} is not valid ({exc}); expected "
                    "Python re.sub syntax (\\1, \\g<name>)"
                ) from None
            compiled.append((regex, replacement))
        return cls(
            rename=tuple(compiled),
            include=tuple(_compile(p, source, "include") for p in _patterns(data.get("include"), source, "include")),
            exclude=tuple(_compile(p, source, "exclude") for p in _patterns(data.get("exclude"), source, "exclude")),
            source=source,
        )

    def apply(self, name: str) -> str | None:
        """The name after the map, or None when include/exclude leave it out."""
        if self.include and not any(p.search(name) for p in self.include):
            return None
        if any(p.search(name) for p in self.exclude):
            return None
        for regex, replacement in self.rename:
            name = regex.sub(replacement, name)
        return name

    def apply_all(self, names: Iterable[str]) -> dict[str, str | None]:
        """Each name's result, refusing two names that the map would make one."""
        result: dict[str, str | None] = {}
        seen: dict[str, str] = {}
        for name in names:
            new = self.apply(name)
            if new is not None:
                if new in seen and seen[new] != name:
                    raise NameMapError(
                        f"{self.source}: the map turns both {seen[new]!r} and {name!r} into {new!r}; expected "
                        "distinct names; make the rename rules more specific or exclude one of them"
                    )
                if not new:
                    raise NameMapError(
                        f"{self.source}: the map turns {name!r} into an empty name; expected a non-empty name; "
                        "fix the rename rule or exclude the tensor"
                    )
                seen[new] = name
            result[name] = new
        return result

    @property
    def empty(self) -> bool:
        return not (self.rename or self.include or self.exclude)


def path_name(tensor: TensorInfo) -> str:
    """A tensor's own path: its key without TF's attribute suffix or HDF5's leading '/'."""
    key = tensor.key[: -len(_VARIABLE_SUFFIX)] if tensor.key.endswith(_VARIABLE_SUFFIX) else tensor.key
    return key.lstrip("/")


def flat_names(manifest: Manifest, tensors: Iterable[TensorInfo], scheme: str = "keras") -> tuple[dict[str, str], list[str]]:
    """Each tensor's name in a flat target (by key) under `scheme`, and notes on names that fell back to paths."""
    if scheme not in NAME_SCHEMES:
        raise NameMapError(f"--names {scheme!r} is not known; expected one of: {', '.join(NAME_SCHEMES)}")
    names: dict[str, str] = {}
    for tensor in tensors:
        if scheme == "keys":
            names[tensor.key] = path_name(tensor)
        elif tensor.role == "weight" and tensor.layer is not None and tensor.name:
            names[tensor.key] = tensor.name
        elif tensor.role == "optimizer" and manifest.layers and tensor.name:
            # A Keras model's optimizer: its own names, under one optimizer/ (Keras 3 names start with it).
            names[tensor.key] = tensor.name if tensor.name.startswith(OPTIMIZER_PREFIX) else OPTIMIZER_PREFIX + tensor.name
        else:
            names[tensor.key] = path_name(tensor)
    notes = []
    if scheme == "keras":
        counts: dict[str, int] = {}
        for name in names.values():
            counts[name] = counts.get(name, 0) + 1
        shared = [key for key, name in names.items() if counts[name] > 1]
        for key in shared:
            names[key] = path_name(manifest[key])
        if shared:
            notes.append(
                f"{len(shared)} tensors share a Keras name (e.g. '{manifest[shared[0]].name}') and are named by "
                f"their path instead (e.g. '{names[shared[0]]}')"
            )
    return names, notes


def map_manifest(manifest: Manifest, name_map: NameMap, scheme: str = "keras") -> Manifest:
    """The manifest as a conversion with `name_map` would name it: each tensor's `name` is its flat name
    after the map; tensors the map excludes are gone; a note says what the map did."""
    from dataclasses import replace

    carried = [t for t in manifest.tensors if t.role != "metadata"]
    names, notes = flat_names(manifest, carried, scheme)
    result = name_map.apply_all(names[t.key] for t in carried)
    kept = [t for t in manifest.tensors if t.role == "metadata"]
    renamed = excluded = 0
    for tensor in carried:
        new = result[names[tensor.key]]
        if new is None:
            excluded += 1
            continue
        renamed += new != names[tensor.key]
        kept.append(replace(tensor, name=new))
    notes.append(f"--map {name_map.source}: {renamed} tensor(s) renamed, {excluded} excluded")
    return replace(manifest, tensors=tuple(kept), notes=tuple(manifest.notes) + tuple(notes))


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise NameMapError(f"{path}: not valid JSON ({exc}); expected a name map like {_EXAMPLE}") from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml  # only for YAML maps: JSON ones need nothing beyond the standard library
    except ImportError:
        raise MissingDependency(
            f"{path}: YAML name maps need the Python package 'pyyaml', which is not installed; "
            "install it (pip install pyyaml) or write the map as JSON"
        ) from None
    try:
        # safe_load builds plain data only: a map file is never allowed to construct Python objects.
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise NameMapError(
            f"{path}: not valid JSON or YAML{line} ({getattr(exc, 'problem', None) or type(exc).__name__}); "
            f"expected a name map like {_EXAMPLE}"
        ) from None


def _patterns(value: Any, source: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise NameMapError(f"{source}: '{key}' is a {type(value).__name__}; expected a regex or a list of regexes")


def _compile(pattern: Any, source: str, key: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise NameMapError(f"{source}: {key} pattern {pattern!r} is a {type(pattern).__name__}; expected a string")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise NameMapError(f"{source}: {key} pattern {pattern!r} is not a valid regex ({exc}); fix it in the map") from None


def _check_template(regex: re.Pattern[str], replacement: str) -> None:
    """Expand `replacement` against an empty match with the same groups, so a bad reference fails now."""
    names = {index: name for name, index in regex.groupindex.items()}
    shadow = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, regex.groups + 1))
    match = re.fullmatch(shadow, "")
    assert match is not None
    match.expand(replacement)


__all__ = ["NAME_SCHEMES", "NameMap", "NameMapError", "flat_names", "map_manifest", "path_name"]
