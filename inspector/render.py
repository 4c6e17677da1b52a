"""Printers of a manifest: a human table and the stable JSON document.

The manifest is the model; these only render it (one function per output
form), so `dump --json` and the table can never disagree about content.
"""

from __future__ import annotations

import json
from typing import Any

from .manifest import ROLES, Manifest
from .naturalsort import natural_keys


def escape(text: object) -> str:
    """`text` safe to print: bytes that were not UTF-8 (kept as surrogate escapes) shown as `\\xNN`,
    other lone surrogates as `\\udXXX`, control characters (a terminal's escape sequences) as `\\xNN`.

    `--json` output keeps names exact instead: JSON's `\\udcNN` escapes decode back to the
    original bytes with Python's `surrogateescape` (see docs/MANIFEST.md).
    """
    text = str(text)
    if text.isprintable():
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KiB' (binary units, one decimal)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _producer_line(producer: dict[str, Any]) -> str:
    known = {k: v for k, v in producer.items() if v not in (None, "")}
    if not known:
        return "unknown"
    return ", ".join(f"{k}={v}" for k, v in known.items())


# Human output fits an 80-column terminal (JSON is the form for scripts).
WIDTH = 80


def render_table(manifest: Manifest, width: int = WIDTH) -> str:
    """The manifest as an aligned text table with a header and totals, in `width` columns."""
    totals = manifest.totals
    roles = ", ".join(f"{count} {role}" for role, count in totals["by_role"].items()) or "none"
    lines = [
        f"format:     {manifest.format}",
        f"path:       {escape(manifest.path)}",
        f"producer:   {_producer_line(dict(manifest.producer))}",
        f"tensors:    {totals['tensors']} ({roles})",
        f"parameters: {totals['parameters']:,}",
        f"bytes:      {totals['bytes']:,} ({human_bytes(totals['bytes'])})",
        f"shards:     {totals['shards']}",
    ]
    signatures = manifest.metadata.get("signatures")
    if signatures:
        lines.append("signatures:")
        for name, sig in sorted(signatures.items()):
            ins = [f"{k}: {v.get('dtype')} {v.get('shape')}" for k, v in sorted(sig.get("inputs", {}).items())]
            outs = [f"{k}: {v.get('dtype')} {v.get('shape')}" for k, v in sorted(sig.get("outputs", {}).items())]
            words = [escape(word) for word in _signature_words(name, ins, outs)]
            lines.extend(_pack(["  " + words[0], *words[1:]], width))
    lines = [wrapped for line in lines for wrapped in _fit(escape(line), width)]
    lines.append("")
    lines.extend(_tensor_rows(manifest, width))
    notes = [f"data shard missing or incomplete: {escape(s.path)}" for s in manifest.shards if not s.present]
    notes.extend(escape(note) for note in manifest.notes)
    if notes:
        from .text import notes as wrapped  # (text imports this module: imported here, when needed)

        lines.extend(wrapped(notes))
    return "\n".join(lines)


def _signature_words(name: str, ins: list[str], outs: list[str]) -> list[str]:
    """`name(a, b) -> c, d` as words to pack into lines: each argument whole with its comma or
    arrow (a shape cut in two would read as two shapes)."""
    ins = ins or [""]
    words = [f"{a}," for a in ins[:-1]] + [f"{ins[-1]}) ->"]
    words[0] = f"{name}({words[0]}"
    return words + [f"{o}," for o in outs[:-1]] + outs[-1:]


def _pack(parts: list[str], width: int) -> list[str]:
    """`parts` joined by spaces into lines of `width`, continued with a 4-space indent."""
    out = [parts[0]]
    for part in parts[1:]:
        if len(out[-1]) + 1 + len(part) <= width:
            out[-1] += " " + part
        else:
            out.append("    " + part)
    return out


def wrap_line(line: str, width: int = WIDTH, indent: str = "    ") -> list[str]:
    """`line` in `width` columns, broken at spaces, continued with `indent`; a single word longer
    than the width (a path, a key) is never cut: users copy them."""
    if len(line) <= width:
        return [line]
    import textwrap

    return textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _fit(line: str, width: int) -> list[str]:
    """A header line, continued under its value; signature lines come packed already."""
    return [line] if line.startswith("  ") else wrap_line(line, width, " " * 12)


def _tensor_rows(manifest: Manifest, width: int) -> list[str]:
    """One row per tensor in natural key order (people count 2 before 10).  Keys and names are never
    cut (users copy them): one too long for `width` takes a line of its own above the rest of its row.

    Built a column at a time (a checkpoint of 100,000 tensors prints 100,000 rows): each distinct
    shape and size is formatted once, columns of plain text skip escaping, and rows that fit are
    formatted by `map`, without a Python loop.
    """
    header = ("KEY", "NAME", "DTYPE", "SHAPE", "BYTES", "ROLE")
    tensors = manifest.tensors
    order = natural_keys([t.key for t in tensors])
    ordered = [tensors[i] for i in sorted(range(len(tensors)), key=order.__getitem__)]
    shapes = [t.shape for t in ordered]
    shape_text = {shape: "[" + ", ".join(map(str, shape)) + "]" for shape in set(shapes)}
    sizes = [t.nbytes for t in ordered]
    size_text = {size: human_bytes(size) for size in set(sizes)}
    columns = [
        _escaped([t.key for t in ordered]), _escaped([t.name for t in ordered]), [t.dtype for t in ordered],
        list(map(shape_text.__getitem__, shapes)), list(map(size_text.__getitem__, sizes)), [t.role for t in ordered],
    ]
    widths = [max(len(title), max(map(len, column), default=0)) for title, column in zip(header, columns)]
    # KEY and NAME take the width their cells need to leave room for the rest of the row; a cell
    # longer than that goes on a line of its own (indented to its column) above the rest.
    fixed = sum(widths[2:]) + 2 * len(widths[2:])
    fits = (width - len(header[0]) - 2 - fixed).__ge__
    widths[1] = max(filter(fits, map(len, (header[1], *columns[1]))), default=len(header[1]))
    fits = (width - 2 - widths[1] - fixed).__ge__
    widths[0] = max(filter(fits, map(len, (header[0], *columns[0]))), default=len(header[0]))
    # One format string for every row.
    cells = [f"{{:>{w}}}" if i == 4 else f"{{:<{w}}}" for i, w in enumerate(widths)]
    row_format = "  ".join(cells)
    out = [row_format.format(*header).rstrip()]
    if _ROLES.issuperset(columns[5]) and max(map(len, columns[1]), default=0) <= widths[1]:
        # The usual table, formatted by `map`: a key too long for its column is its own line, put
        # before the padded cell that takes its place; a role is a non-empty word, so the row with
        # its last cell unpadded is the padded row stripped.  (An item may hold two lines.)
        w0, moved = widths[0], "\n" + " " * widths[0]
        lead = [key.ljust(w0) if len(key) <= w0 else key + moved for key in columns[0]]
        row = "  ".join(["%s", *(f"%{w}s" if i == 4 else f"%-{w}s" for i, w in enumerate(widths[1:-1], 1)), "%s"])
        return out + list(map(row.__mod__, zip(lead, *columns[1:])))  # (%: a third cheaper than str.format)
    indent = " " * (widths[0] + 2)
    for row in zip(*columns):
        if len(row[0]) > widths[0]:
            out.append(row[0])
            row = ("", *row[1:])
        if len(row[1]) > widths[1]:
            out.append(indent + row[1])
            row = (row[0], "", *row[2:])
        out.append(row_format.format(*row).rstrip())
    return out


_ROLES = frozenset(ROLES)


def _escaped(texts: list[str]) -> list[str]:
    """`escape` of each text; a column of printable ASCII, the usual case, is returned as it is."""
    joined = "".join(texts)
    return texts if joined.isascii() and joined.isprintable() else list(map(escape, texts))


def render_json(manifest: Manifest) -> str:
    """`json.dumps(manifest.to_json(), indent=2)`, byte for byte.  With an indent `json` runs its
    pure-Python encoder, a tenth of a second per 20,000 tensors: the tensor list, whose fields have
    fixed types, is written here from one template per tensor (strings escaped by json's own C
    escaper), and the rest by `json` a top-level value at a time."""
    tensors = _json_tensors(manifest) if manifest.tensors else "[]"
    if tensors is None:
        return json.dumps(manifest.to_json(), indent=2, sort_keys=False)
    doc = manifest.to_json(tensors=False)
    parts = []
    for key, value in doc.items():
        # A value one level down: json's text for it with every line after the first indented by
        # two more spaces (strings hold no raw newline, escaped as \n).
        text = tensors if key == "tensors" else json.dumps(value, indent=2).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}"


_TENSOR_JSON = (
    '    {\n      "key": %s,\n      "name": %s,\n      "dtype": %s,\n      "shape": %s,\n      "nbytes": %s,\n'
    '      "role": %s,\n      "layer": %s,\n      "index": %s\n    }'
)


def _json_tensors(manifest: Manifest) -> str | None:
    """The `"tensors"` list as `json.dumps(..., indent=2)` writes it one level down, or None when a
    field holds a type other than those the template writes (json's own way then)."""
    from json.encoder import encode_basestring_ascii as quoted  # what json.dumps uses (ensure_ascii)

    tensors = manifest.tensors
    keys, names, dtypes, shapes, sizes, roles, layers, indexes = (
        [getattr(t, field) for t in tensors]
        for field in ("key", "name", "dtype", "shape", "nbytes", "role", "layer", "index"))
    if not ({str} >= set(map(type, keys)) | set(map(type, names)) | set(map(type, dtypes)) | set(map(type, roles))
            and {int} >= set(map(type, sizes)) and {str, type(None)} >= set(map(type, layers))
            and {int, type(None)} >= set(map(type, indexes)) and {tuple} >= set(map(type, shapes))):
        return None
    shape_text = {}
    for shape in set(shapes):
        if not {int} >= set(map(type, shape)):
            return None
        shape_text[shape] = "[\n        " + ",\n        ".join(map(str, shape)) + "\n      ]" if shape else "[]"
    layer_text = {layer: "null" if layer is None else quoted(layer) for layer in set(layers)}
    index_text = {index: "null" if index is None else str(index) for index in set(indexes)}
    rows = zip(map(quoted, keys), map(quoted, names), map(quoted, dtypes), map(shape_text.__getitem__, shapes),
               map(str, sizes), map(quoted, roles), map(layer_text.__getitem__, layers),
               map(index_text.__getitem__, indexes))
    return "[\n" + ",\n".join(map(_TENSOR_JSON.__mod__, rows)) + "\n  ]"
