"""Human printers of the inspection results (stats, diff, tree, signatures, tensor values).

Each result's JSON form is its own `to_json`; these render the same values for a person:
80 columns, sizes in binary units, keys in natural order (`_variables/2` before `/10`),
colour only when the caller says the output is a terminal (`Style`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from .naturalsort import natural_key
from .render import WIDTH, human_bytes, wrap_line

if TYPE_CHECKING:
    from .compare import DiffReport
    from .signatures import SignatureReport
    from .stats import StatsReport, TensorStats
    from .tree import Node, Tree


class Style:
    """ANSI colour, or none.  `Style.for_stream` follows the NO_COLOR convention (no-color.org)."""

    _CODES = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: Any) -> "Style":
        tty = bool(getattr(stream, "isatty", lambda: False)())
        return cls(tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")

    def __call__(self, text: str, colour: str) -> str:
        return f"\x1b[{self._CODES[colour]}m{text}\x1b[0m" if self.enabled else text


PLAIN = Style(False)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 tensor', '2 tensors', '1,234 tensors'."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def fit(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis in the middle (both ends of a key tell)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def number(value: float | None) -> str:
    """A statistic in at most 10 characters."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.2e}"


def shape_text(shape: Sequence[int] | None) -> str:
    return "?" if shape is None else "[" + ",".join(str(d) for d in shape) + "]"


def table(header: Sequence[str], rows: list[Sequence[str]], right: set[int], flex: int) -> list[str]:
    """Aligned columns in WIDTH characters.  A `flex` cell too long for its column goes on a line
    of its own above the rest of its row (keys are never cut: users copy them)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    overflow = sum(widths) + 2 * (len(widths) - 1) - WIDTH
    if overflow > 0:
        widths[flex] = max(len(header[flex]), widths[flex] - overflow)
    lines = []
    for row in [header, *rows]:
        cells = []
        if len(row[flex]) > widths[flex]:
            lines.append(row[flex])
            row = [*row[:flex], "", *row[flex + 1:]]
        for i, (cell, width) in enumerate(zip(row, widths)):
            cells.append(cell.rjust(width) if i in right else cell.ljust(width))
        lines.append("  ".join(cells).rstrip())
    return lines


def notes(items: Sequence[str]) -> list[str]:
    """'note: ...' lines wrapped to WIDTH."""
    return [line for note in items for line in wrap_line(f"note: {note}", WIDTH, "      ")]


# -- stats -----------------------------------------------------------------------------------
def render_stats(report: StatsReport, style: Style = PLAIN) -> str:
    rows, flagged = [], 0
    ordered = sorted(report.tensors, key=lambda s: natural_key(s.tensor.name))
    names = [s.tensor.name for s in ordered]
    for s in ordered:
        flagged += not s.finite
        # A name shared by several tensors (metric counters) says too little: show the key instead.
        label = s.tensor.name if names.count(s.tensor.name) == 1 else s.tensor.key
        zeros = f"{s.zeros:,}" if s.mean is not None or s.zeros else "-"
        rows.append((label, number(s.min), number(s.max), number(s.mean), number(s.std), number(s.l2),
                     zeros, _nonfinite(s)))
    header = ("NAME", "MIN", "MAX", "MEAN", "STD", "L2", "ZEROS", "NaN/Inf")
    lines = [*wrap_line(f"{report.manifest.format} {report.manifest.path}: {plural(len(report.tensors), 'tensor')}"), ""]
    body = table(header, rows, right={1, 2, 3, 4, 5, 6}, flex=0)
    lines.append(style(body[0], "bold"))
    bad = {row[0] for row, s in zip(rows, ordered) if not s.finite}
    current = ""
    for line in body[1:]:
        # A row is one line, or its name alone then its figures: colour both when it holds NaN/Inf.
        head = line.split("  ", 1)[0]
        if head.strip():
            current = head.strip()
        lines.append(style(line, "red") if current in bad else line)
    lines.append("")
    if flagged:
        verb = "holds" if flagged == 1 else "hold"
        lines.append(style(f"NON-FINITE: {plural(flagged, 'tensor')} {verb} NaN or Inf", "red"))
    else:
        lines.append(style("all values finite", "green"))
    return "\n".join(lines)


def _nonfinite(s: TensorStats) -> str:
    if s.finite:
        return "-"
    parts = []
    for label, count in (("NaN", s.nan), ("+Inf", s.posinf), ("-Inf", s.neginf)):
        if count:
            parts.append(f"{count:,} {label}")
    return " ".join(parts)


# -- diff ------------------------------------------------------------------------------------
def render_diff(report: DiffReport, style: Style = PLAIN) -> str:
    lines = [*wrap_line(f"A: {report.a.format} {report.a.path}", indent="   "),
             *wrap_line(f"B: {report.b.format} {report.b.path}", indent="   "), ""]
    tol = f" (atol {report.atol:g}, rtol {report.rtol:g})" if report.atol or report.rtol else ""
    for t in sorted(report.only_a, key=lambda t: natural_key(t.name)):
        lines.append(style(fit(f"only in A  {t.name}  {t.dtype} {shape_text(t.shape)}  ({t.role})", WIDTH), "yellow"))
    for t in sorted(report.only_b, key=lambda t: natural_key(t.name)):
        lines.append(style(fit(f"only in B  {t.name}  {t.dtype} {shape_text(t.shape)}  ({t.role})", WIDTH), "yellow"))
    for change in sorted(report.changed, key=lambda c: natural_key(c.a.name)):
        a, b = change.a, change.b
        if "shape" in change.kinds or "dtype" in change.kinds:
            lines.append(style(fit(f"changed    {a.name}  {a.dtype} {shape_text(a.shape)} -> {b.dtype} "
                                   f"{shape_text(b.shape)}", WIDTH), "red"))
        v = change.values
        if v is not None:
            where = shape_text(v.first_index)
            verb = "differs" if v.differing == 1 else "differ"
            lines.append(style(fit(f"values     {a.name}  {plural(v.differing, 'element')} of {v.count:,} {verb}", WIDTH), "red"))
            lines.append(f"           max abs {number(v.max_abs)}, max rel {number(v.max_rel)}")
            lines.append(fit(f"           first at {where}: {_value(v.a_value)} (A) vs {_value(v.b_value)} (B)", WIDTH))
    if report.suggested_map:
        import json

        from .compare import map_document

        pairs = report.suggested_map
        lines.append("")
        lines.append(f"{plural(len(pairs), 'unmatched weight')} on each side line up by shape in model order;")
        lines.append("to pair them, save this as a map file and pass --map FILE (see `diff --json`):")
        shown = json.dumps(map_document(pairs[:3]))
        lines.append("  " + (shown if len(pairs) <= 3 else shown[:-2] + ", ...}}"))
    lines.extend(notes(report.notes))
    if len(lines) > 3:
        lines.append("")
    same = report.compared - len(report.changed)
    if report.equal:
        lines.append(style(f"EQUAL{tol}: {plural(report.compared, 'tensor')} compared, all the same", "green"))
    else:
        lines.append(style(
            f"DIFFERENT{tol}: {same:,} of {plural(report.compared, 'matched tensor')} the same, "
            f"{len(report.changed):,} changed, {len(report.only_a):,} only in A, {len(report.only_b):,} only in B", "red"))
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"
    return fit(repr(value), 20)


# -- tree ------------------------------------------------------------------------------------
def render_tree(tree: Tree, style: Style = PLAIN) -> str:
    m = tree.manifest
    lines = [*wrap_line(f"{m.format} {m.path}"), ""]
    _node_lines(tree.root, "", "", lines, style, top=True)
    for group in (tree.optimizer, tree.other):
        if group is not None:
            lines.append("")
            _node_lines(group, "", "", lines, style, top=True)
    lines.append("")
    lines.append(f"parameters: {tree.root.params:,} ({human_bytes(tree.root.bytes)})"
                 + (f"; optimizer state {human_bytes(tree.optimizer.bytes)}" if tree.optimizer else ""))
    return "\n".join(lines)


def _label(node: Node) -> tuple[str, str]:
    if node.tensor is not None:
        t = node.tensor
        return node.name, f"{t.dtype} {shape_text(t.shape)}  {human_bytes(t.nbytes)}"
    desc = node.name
    if node.class_name:
        conf = ", ".join(f"{k}={v}" for k, v in node.config.items() if k not in ("batch_input_shape", "batch_shape"))
        desc += f" ({node.class_name}{': ' + conf if conf else ''})"
    figures = f"{plural(node.params, 'param')}  {human_bytes(node.bytes)}" if node.params else human_bytes(node.bytes)
    if not node.params and not node.bytes:
        figures = ""
    return desc, figures


def _node_lines(node: Node, lead: str, branch: str, lines: list[str], style: Style, top: bool = False) -> None:
    desc, figures = _label(node)
    left = lead + branch + desc
    room = WIDTH - len(figures) - 2
    if len(left) > room:
        left = fit(left, max(room, len(lead + branch) + 8))
    text = left.ljust(room) + "  " + figures if figures else left
    lines.append(style(text.rstrip(), "bold") if top else text.rstrip())
    children = node.children
    child_lead = lead + ("" if top else ("    " if branch == "└── " else "│   "))
    for i, child in enumerate(children):
        _node_lines(child, child_lead, "└── " if i == len(children) - 1 else "├── ", lines, style)


# -- signatures ------------------------------------------------------------------------------
def render_signatures(report: SignatureReport, style: Style = PLAIN) -> str:
    lines = wrap_line(f"SavedModel {report.path}")
    for meta in report.meta_graphs:
        lines.append("")
        version = f" (TensorFlow {meta.tensorflow_version})" if meta.tensorflow_version else ""
        lines.append(style(f"tag-set: {', '.join(meta.tags) or '(none)'}{version}", "bold"))
        if not meta.signatures:
            lines.append("  no signatures")
        for sig in meta.signatures:
            lines.append(f"  signature '{sig.key}'  method {sig.method or '(none)'}")
            for title, specs in (("inputs", sig.inputs), ("outputs", sig.outputs)):
                for spec in specs:
                    extra = "" if spec.encoding == "dense" else f" ({spec.encoding})"
                    lines.append(fit(f"    {title[:-1] if len(specs) == 1 else title} {spec.name}: {spec.dtype} "
                                     f"{_tf_shape(spec.shape)}  {spec.tensor}{extra}", WIDTH))
                if not specs:
                    lines.append(f"    {title}: none")
    return "\n".join(lines)


def _tf_shape(shape: Sequence[int] | None) -> str:
    return "(unknown rank)" if shape is None else "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
