"""The validator's findings and their three printers: the matrix table, JSON and TensorBoard scalars."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Result:
    """One artifact reloaded by one loader and evaluated: a row of the matrix.

    `ok` is None for a row that was skipped (the reason is in `note`); `limitation` marks a skipped
    row whose framework cannot load what another framework wrote (not a ckit failure).
    `source == target` marks an artifact the framework itself saved, not a conversion.
    """

    source: str  # format id of the artifact converted from
    target: str  # format id of the artifact reloaded
    loader: str  # the framework call that reloaded it, e.g. "tf_keras.Model.load_weights"
    accuracy: float | None = None
    loss: float | None = None
    max_abs_logit_diff: float | None = None
    ok: bool | None = None
    note: str = ""
    limitation: bool = False

    @property
    def status(self) -> str:
        if self.ok is None and self.limitation:
            return "limit"
        return {True: "OK", False: "FAIL", None: "skip"}[self.ok]

    @property
    def converted(self) -> bool:
        return self.source != self.target


@dataclass(frozen=True)
class Report:
    """Everything one validation found, independent of how it is shown."""

    baseline_accuracy: float
    baseline_loss: float
    device: str
    results: tuple[Result, ...]
    tolerance: float = 0.0
    backend: str = ""
    model: str = ""
    dataset: str = ""
    artifact: str | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    baseline_source: str = ""  # where the baseline came from when it was not computed in this run

    @property
    def failures(self) -> tuple[Result, ...]:
        return tuple(r for r in self.results if r.ok is False)

    @property
    def ok(self) -> bool:
        return not self.failures and any(r.ok for r in self.results)


def format_matrix(report: Report) -> str:
    """The matrix as a plain-text table, one row per (source, target, loader)."""
    header = ("source", "target", "loader", "loss", "accuracy", "max|Δlogit|", "OK")
    rows = [header]
    for r in report.results:
        rows.append(
            (
                r.source,
                "=" if not r.converted else r.target,
                r.loader,
                _num(r.loss, ".4f"),
                _num(r.accuracy, ".4f"),
                _num(r.max_abs_logit_diff, ".3g"),
                r.status if not r.note else f"{r.status}  {r.note}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].rjust(widths[i]) if 3 <= i <= 5 else row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  --")
    counts = {status: sum(1 for r in report.results if r.status == status) for status in ("OK", "FAIL", "skip", "limit")}
    verdict = "PASSED" if report.ok else "FAILED"
    source = f"; {report.baseline_source}" if report.baseline_source else ""
    title = (
        f"baseline ({report.model} on {report.dataset}, {report.backend}, {report.device}{source}): "
        f"loss {report.baseline_loss:.4f}, accuracy {report.baseline_accuracy:.4f}"
    )
    limits = (
        f", {counts['limit']} framework limitation(s) (a framework cannot load a file another framework wrote; "
        "not a conversion failure)" if counts["limit"] else ""
    )
    footer = (
        f"{verdict}: {counts['OK']} OK, {counts['FAIL']} failed, {counts['skip']} skipped{limits} "
        f"(OK = same accuracy as the baseline and every logit within {report.tolerance:g}; "
        "target '=' is the artifact as the framework saved it)"
    )
    return "\n".join([title, *lines, footer, *report.notes]) + "\n"


def to_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON data (the --json form)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "baseline": {"accuracy": report.baseline_accuracy, "loss": report.baseline_loss},
        "baseline_source": report.baseline_source,
        "device": report.device,
        "backend": report.backend,
        "model": report.model,
        "dataset": report.dataset,
        "artifact": report.artifact,
        "tolerance": report.tolerance,
        "ok": report.ok,
        "seconds": round(report.seconds, 3),
        "results": [
            {
                "source": r.source,
                "target": r.target,
                "loader": r.loader,
                "accuracy": r.accuracy,
                "loss": r.loss,
                "max_abs_logit_diff": r.max_abs_logit_diff,
                "ok": r.ok,
                "note": r.note,
                "framework_limitation": r.limitation,
            }
            for r in report.results
        ],
        "notes": list(report.notes),
    }


def from_dict(data: dict[str, Any]) -> Report:
    """The inverse of `to_dict`."""
    return Report(
        baseline_accuracy=data["baseline"]["accuracy"],
        baseline_loss=data["baseline"]["loss"],
        device=data["device"],
        backend=data.get("backend", ""),
        model=data.get("model", ""),
        dataset=data.get("dataset", ""),
        artifact=data.get("artifact"),
        tolerance=data.get("tolerance", 0.0),
        seconds=data.get("seconds", 0.0),
        notes=tuple(data.get("notes", ())),
        baseline_source=data.get("baseline_source", ""),
        results=tuple(
            Result(
                source=r["source"],
                target=r["target"],
                loader=r["loader"],
                accuracy=r["accuracy"],
                loss=r["loss"],
                max_abs_logit_diff=r["max_abs_logit_diff"],
                ok=r["ok"],
                note=r.get("note", ""),
                limitation=r.get("framework_limitation", False),
            )
            for r in data["results"]
        ),
    )


def write_json(report: Report, path: str | Path) -> Path:
    """Write the --json form to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(report), indent=2) + "\n")
    return path


def write_tensorboard(report: Report, logdir: str | Path) -> Path:
    """Write the report's figures as TensorBoard scalars (step 0), without TensorFlow."""
    from inspector.events import EventWriter, scalar_value

    values = [
        scalar_value("baseline/accuracy", report.baseline_accuracy),
        scalar_value("baseline/loss", report.baseline_loss),
    ]
    for r in report.results:
        if r.ok is None:
            continue
        prefix = f"{r.source}/{r.target}/{r.loader}"
        for name in ("accuracy", "loss", "max_abs_logit_diff"):
            value = getattr(r, name)
            if value is not None and math.isfinite(value):
                values.append(scalar_value(f"{prefix}/{name}", value))
        values.append(scalar_value(f"{prefix}/ok", float(bool(r.ok))))
    writer = EventWriter(logdir)
    writer.add(0, values)
    writer.close()
    return Path(logdir)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
