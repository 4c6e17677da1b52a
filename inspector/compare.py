"""Two artifacts of any formats compared tensor by tensor, through canonical identity.

A tensor's identity is its manifest canonical name plus its role (`TensorInfo.name`,
`TensorInfo.role`): the same model saved as `.h5`, TF checkpoint, SavedModel or `.keras`
gives each weight the same identity, so a pair is found whatever the keys look like.
Values are compared piece by piece in lockstep (`chunks.iter_chunks`), so memory stays
bounded; with the default tolerances (0, 0) "equal" means equal values, NaN equal to NaN.

What is not compared, and why (said in the report's notes, never silently):
- the checkpoint object graph (role `metadata`): it describes structure and differs between
  writers of the same model;
- a role one side holds no tensor of at all (an `.h5` weights file keeps no optimizer state):
  the artifact cannot disagree about what it does not hold;
- across formats, optimizer and counter tensors that find no partner: each format names them
  its own way (an `.h5` model keeps the learning rate in its config, a checkpoint as a
  variable).  The pairs that do match are compared; weights are always strict.

JSON schema `ckit.diff/1` (docs/INSPECT.md):

    {"schema": "ckit.diff/1", "a": {"format", "path"}, "b": {...}, "atol": 0.0, "rtol": 0.0,
     "equal": bool, "compared": 12, "same": 11,
     "only_a": [{"key", "name", "role", "dtype", "shape"}], "only_b": [...],
     "changed": [{"name", "role", "a_key", "b_key", "a_dtype", "b_dtype", "a_shape", "b_shape",
                  "kinds": ["dtype"|"shape"|"values"], "values": null | {"count", "differing",
                  "max_abs", "max_rel", "first_index": [..], "a_value", "b_value"}}],
     "suggested_map": null | {"rename": {"^a name$": "b name", ...}},   # a --map file, ready to save
     "notes": ["..."]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .chunks import CHUNK_ELEMS, helper_pool, iter_chunks, lockstep
from .manifest import Manifest, TensorInfo
from .text import plural

if TYPE_CHECKING:
    import numpy as np

SCHEMA = "ckit.diff/1"
# Roles whose values say nothing about the model's numbers (see the module docstring).
_STRUCTURE_ROLES = ("metadata",)


def identity(tensor: TensorInfo) -> tuple[str, str]:
    """What makes two tensors of two artifacts "the same tensor": canonical name and role."""
    return (tensor.name, tensor.role)


@dataclass(frozen=True)
class ValueDiff:
    """How the values of a matched pair differ (only built when some element does)."""

    count: int  # elements compared
    differing: int  # elements beyond tolerance
    max_abs: float  # largest |a - b| (NaN against a number counts as inf)
    max_rel: float  # largest |a - b| / |b| over b != 0
    first_index: tuple[int, ...]  # first differing element, as an index into the shape
    a_value: Any  # the values there
    b_value: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count, "differing": self.differing, "max_abs": _json_float(self.max_abs),
            "max_rel": _json_float(self.max_rel), "first_index": list(self.first_index),
            "a_value": _json_scalar(self.a_value), "b_value": _json_scalar(self.b_value),
        }


@dataclass(frozen=True)
class Change:
    """A matched pair that differs in dtype, shape or values."""

    a: TensorInfo
    b: TensorInfo
    kinds: tuple[str, ...]  # "dtype", "shape", "values"
    values: ValueDiff | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.a.name, "role": self.a.role, "a_key": self.a.key, "b_key": self.b.key,
            "a_dtype": self.a.dtype, "b_dtype": self.b.dtype, "a_shape": list(self.a.shape),
            "b_shape": list(self.b.shape), "kinds": list(self.kinds),
            "values": self.values.to_json() if self.values else None,
        }


@dataclass(frozen=True)
class DiffReport:
    a: Manifest
    b: Manifest
    atol: float
    rtol: float
    compared: int  # matched pairs
    only_a: tuple[TensorInfo, ...]
    only_b: tuple[TensorInfo, ...]
    changed: tuple[Change, ...]
    suggested_map: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def equal(self) -> bool:
        return not (self.only_a or self.only_b or self.changed)

    def to_json(self) -> dict[str, Any]:
        brief = lambda t: {"key": t.key, "name": t.name, "role": t.role, "dtype": t.dtype, "shape": list(t.shape)}  # noqa: E731
        return {
            "schema": SCHEMA,
            "a": {"format": self.a.format, "path": self.a.path},
            "b": {"format": self.b.format, "path": self.b.path},
            "atol": self.atol,
            "rtol": self.rtol,
            "equal": self.equal,
            "compared": self.compared,
            "same": self.compared - len(self.changed),
            "only_a": [brief(t) for t in self.only_a],
            "only_b": [brief(t) for t in self.only_b],
            "changed": [c.to_json() for c in self.changed],
            "suggested_map": map_document(self.suggested_map) if self.suggested_map else None,
            "notes": list(self.notes),
        }


def pair(a: Iterable[TensorInfo], b: Iterable[TensorInfo], rename: Callable[[str], str | None] | None = None,
         ) -> tuple[list[tuple[TensorInfo, TensorInfo]], list[TensorInfo], list[TensorInfo]]:
    """Matched pairs, tensors only in A, tensors only in B.

    `rename` maps A's canonical names onto B's (None drops the tensor).  Identities that repeat
    within one side pair up in manifest order.
    """
    by_identity: dict[tuple[str, str], list[TensorInfo]] = {}
    for t in b:
        by_identity.setdefault(identity(t), []).append(t)
    pairs, only_a = [], []
    for t in a:
        name = rename(t.name) if rename is not None else t.name
        if name is None:
            continue
        bucket = by_identity.get((name, t.role))
        if bucket:
            pairs.append((t, bucket.pop(0)))
        else:
            only_a.append(t)
    only_b = [t for bucket in by_identity.values() for t in bucket]
    only_b.sort(key=lambda t: t.key)
    return pairs, only_a, only_b


def _loose(a: TensorInfo | None, role: str, same_format: bool) -> bool:
    """Whether an unmatched tensor of `role` is only noted, not a difference.

    Weights have canonical names in every format.  Optimizer slots and counters are named the
    way each format stores them (an `.h5` keeps the learning rate in its config, a TF checkpoint
    as a variable), so across formats only the pairs that do match are compared.
    """
    return role != "weight" and not same_format


def suggest_map(only_a: list[TensorInfo], only_b: list[TensorInfo]) -> list[tuple[str, str]]:
    """When the unmatched weights of both sides line up by shape in model order, the pairing that
    a --map would make; [] when they do not line up (a map would only be a guess)."""
    from .naturalsort import natural_key

    wa = [t for t in only_a if t.role == "weight"]
    wb = [t for t in only_b if t.role == "weight"]
    if len(wa) < 2 or len(wa) != len(wb):
        return []
    # Model order where the readers know it; else names in natural order (kernel/bias order
    # within a layer is then alphabetical on both sides alike).
    for order in (_model_order, lambda ts: sorted(ts, key=lambda t: natural_key(t.name))):
        xs, ys = order(wa), order(wb)
        if all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(xs, ys)):
            return [(x.name, y.name) for x, y in zip(xs, ys)]
    return []


def map_document(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The --map file (inspector.namemap) that renames each A name to its B partner."""
    import re

    return {"rename": {f"^{re.escape(a)}$": b for a, b in pairs}}


def _model_order(tensors: list[TensorInfo]) -> list[TensorInfo]:
    # Readers that know the model give layer and index; otherwise natural key order is the best guess.
    from .naturalsort import natural_key

    return sorted(tensors, key=lambda t: (t.layer is None, natural_key(t.layer or ""),
                                           t.index if t.index is not None else 0, natural_key(t.key)))


def compare_values(reader_a: Any, a: TensorInfo, reader_b: Any, b: TensorInfo, atol: float = 0.0, rtol: float = 0.0,
                   chunk_elems: int = CHUNK_ELEMS, progress: Callable[[int], None] | None = None,
                   threads: bool | None = None) -> ValueDiff | None:
    """How the values of two same-shaped tensors differ; None when every element is within tolerance.

    `threads`: whether B's pieces are read on a second thread while A's are read on this one (None:
    as CKIT_THREADS says, `chunks.helper_pool`); never when the two readers are one object, whose
    state is not meant for two threads.
    """
    import numpy as np

    if a.dtype == "string" or b.dtype == "string":
        return _compare_strings(reader_a.read_tensor(a.key), reader_b.read_tensor(b.key), a.shape)
    found = _Found()
    offset = 0
    pieces_a, pieces_b = iter_chunks(reader_a, a, chunk_elems), iter_chunks(reader_b, b, chunk_elems)
    pool = helper_pool(force=threads is True) if threads is not False and reader_a is not reader_b else None
    for pa, pb in lockstep(pieces_a, pieces_b, pool):
        if pa is None or pb is None or pa.size != pb.size:
            raise AssertionError(f"tensors {a.key!r} and {b.key!r} came back in unequal pieces")
        if progress is not None:
            progress(pa.nbytes + pb.nbytes)
        if pa.dtype == pb.dtype and _same_bytes(pa, pb):
            offset += pa.size  # bit-identical: the common case, at memory speed
            continue
        found.add(pa, pb, offset, atol, rtol)
        offset += pa.size
    return found.result(offset, a.shape)


def _same_bytes(pa: np.ndarray, pb: np.ndarray) -> bool:
    """Whether two pieces of one dtype hold the same bytes, compared as wide words where they can be
    (eight bytes a step: half the time of comparing the bytes one by one)."""
    import numpy as np

    for word in (np.uint64, np.uint32, np.uint16):
        if pa.nbytes % np.dtype(word).itemsize == 0:
            return bool(np.array_equal(pa.view(np.uint8).view(word), pb.view(np.uint8).view(word)))
    return bool(np.array_equal(pa.view(np.uint8), pb.view(np.uint8)))


class _Found:
    """Differences collected over pieces."""

    def __init__(self) -> None:
        self.differing = 0
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.first: int | None = None
        self.values: tuple[Any, Any] = (None, None)

    def add(self, pa: np.ndarray, pb: np.ndarray, offset: int, atol: float, rtol: float) -> None:
        import numpy as np

        fa, fb = _as_float(pa), _as_float(pb)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            delta = np.abs(fa - fb)
            both_nan = np.isnan(fa) & np.isnan(fb)
            close = (fa == fb) | (delta <= atol + rtol * np.abs(fb)) | both_nan
            differ = ~close
            count = int(np.count_nonzero(differ))
            if not count:
                return
            delta = np.where(both_nan | (fa == fb), 0.0, delta)
            delta = np.where(np.isnan(delta), np.inf, delta)  # NaN against a number: as far apart as can be
            self.max_abs = max(self.max_abs, float(delta.max()))
            nonzero = fb != 0
            if nonzero.any():
                self.max_rel = max(self.max_rel, float((delta[nonzero] / np.abs(fb[nonzero])).max()))
        if self.first is None:
            where = int(np.argmax(differ))
            self.first = offset + where
            self.values = (pa[where].item(), pb[where].item())
        self.differing += count

    def result(self, count: int, shape: tuple[int, ...]) -> ValueDiff | None:
        if not self.differing:
            return None
        import numpy as np

        first = tuple(int(i) for i in np.unravel_index(self.first, shape)) if shape else ()
        return ValueDiff(count, self.differing, self.max_abs, self.max_rel, first, *self.values)


def _as_float(piece: np.ndarray) -> np.ndarray:
    import numpy as np

    if piece.dtype.kind == "b":
        piece = piece.view(np.uint8)
    if piece.dtype.kind == "c":
        return piece.astype(np.complex128)
    return piece.astype(np.float64)


def _compare_strings(va: np.ndarray, vb: np.ndarray, shape: tuple[int, ...]) -> ValueDiff | None:
    import numpy as np

    fa, fb = va.reshape(-1), vb.reshape(-1)
    differ = np.array([x != y for x, y in zip(fa, fb)], dtype=bool)
    if not differ.any():
        return None
    where = int(np.argmax(differ))
    first = tuple(int(i) for i in np.unravel_index(where, shape)) if shape else ()
    return ValueDiff(int(fa.size), int(differ.sum()), math.inf, math.inf, first, fa[where], fb[where])


def diff_readers(reader_a: Any, reader_b: Any, atol: float = 0.0, rtol: float = 0.0, weights_only: bool = False,
                 rename: Callable[[str], str | None] | None = None,
                 progress: Callable[[int], None] | None = None) -> DiffReport:
    """Compare two opened artifacts."""
    ma, mb = reader_a.manifest, reader_b.manifest
    same_format = ma.format == mb.format
    notes = []
    if any(t.role in _STRUCTURE_ROLES for t in (*ma.tensors, *mb.tensors)):
        notes.append("the checkpoint object graph (structure, not values) is not compared")
    held_a, held_b = {t.role for t in ma.tensors}, {t.role for t in mb.tensors}
    roles = {"weight"} if weights_only else ({"weight"} | (held_a & held_b)) - set(_STRUCTURE_ROLES)
    for role in sorted((held_a ^ held_b) - set(_STRUCTURE_ROLES) - {"weight"}):
        side, other = ("A", "B") if role in held_a else ("B", "A")
        notes.append(f"{role} tensors are only in {side} ({other} holds none): not compared")
    pairs, only_a, only_b = pair([t for t in ma.tensors if t.role in roles],
                                 [t for t in mb.tensors if t.role in roles], rename)
    for role in sorted({t.role for t in (*only_a, *only_b)}):
        if _loose(None, role, same_format):
            in_a = sum(t.role == role for t in only_a)
            in_b = sum(t.role == role for t in only_b)
            notes.append(
                f"{role}: {plural(in_a, 'tensor')} only in A and {in_b} only in B are named differently by "
                f"{ma.format} and {mb.format}: not compared (matched {role} tensors were)"
            )
    only_a = [t for t in only_a if not _loose(t, t.role, same_format)]
    only_b = [t for t in only_b if not _loose(t, t.role, same_format)]
    changed = []
    for a, b in pairs:
        kinds = []
        if a.dtype != b.dtype:
            kinds.append("dtype")
        if a.shape != b.shape:
            kinds.append("shape")
            changed.append(Change(a, b, tuple(kinds)))
            continue
        values = compare_values(reader_a, a, reader_b, b, atol, rtol, progress=progress)
        if values is not None:
            kinds.append("values")
        if kinds:
            changed.append(Change(a, b, tuple(kinds), values))
    suggestion = suggest_map(only_a, only_b) if rename is None else []
    return DiffReport(ma, mb, atol, rtol, len(pairs), tuple(only_a), tuple(only_b), tuple(changed),
                      tuple(suggestion), tuple(notes))


def diff(a: str, b: str, atol: float = 0.0, rtol: float = 0.0, weights_only: bool = False,
         format_a: str | None = None, format_b: str | None = None,
         rename: Callable[[str], str | None] | None = None,
         progress: Callable[[int], None] | None = None) -> DiffReport:
    """Compare the artifacts at paths `a` and `b` (any formats)."""
    from .registry import open_artifact

    with open_artifact(a, format_a) as reader_a, open_artifact(b, format_b) as reader_b:
        return diff_readers(reader_a, reader_b, atol, rtol, weights_only, rename, progress)




def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, complex):
        return [value.real, value.imag]
    return value
