"""The third-party corpus: what fixtures/thirdparty/PROVENANCE.json records, as test parameters.

Imported as `tests.thirdparty.corpus` by the reading and conversion tests and by
benchmarks/corpus_report.py.  Importing it imports no framework.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIRDPARTY = ROOT / "fixtures" / "thirdparty"
PROVENANCE = THIRDPARTY / "PROVENANCE.json"

# The non-artifact files that may sit in fixtures/thirdparty/ (licences, notices, the fetch script).
SUPPORT_FILES = frozenset({"PROVENANCE.json", "fetch.py", "LICENSE-Apache-2.0.txt"})
SUPPORT_NAMES = frozenset({"LICENSE", "NOTICE"})


@dataclass(frozen=True)
class Artifact:
    name: str
    record: dict

    @property
    def format(self) -> str:
        return self.record["format"]

    @property
    def path(self) -> Path:
        """What a user would hand to ckit: the file, or the SavedModel directory."""
        if self.format == "saved-model":
            pb = next(f["path"] for f in self.record["files"] if f["path"].endswith("saved_model.pb"))
            return (THIRDPARTY / pb).parent
        first = self.record["files"][0]["path"]
        return THIRDPARTY / first

    @property
    def keras_version(self) -> str:
        written = self.record["written_by"]
        return written.get("keras_version") or f"tf {written['tensorflow_version']}"


def load_provenance() -> dict:
    return json.loads(PROVENANCE.read_text())


def artifacts() -> list[Artifact]:
    return [Artifact(a["name"], a) for a in load_provenance()["artifacts"]]


def by_name(name: str) -> Artifact:
    return next(a for a in artifacts() if a.name == name)
