"""Issue 7's corpus report: every third-party artifact converted to every ckit target, judged by the frameworks.

    PYTHONPATH=. .venv/bin/python benchmarks/corpus_report.py            # the table + pass count
    PYTHONPATH=. .venv/bin/python benchmarks/corpus_report.py --json out.json --only fer,deepcut

Per artifact x target it prints `exact` (the output, reloaded with the framework's own loader,
predicts what the source model predicts, max |diff| <= 1e-5), `refused` (a one-line ckit error,
with its reason), `WRONG` (written, but not loadable or predicting otherwise) or `CRASH` (not a ckit
error, or a refusal admitting an internal error), then the pass count (exact + refused). The
oracle is described in tests/thirdparty/matrix.py. About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.thirdparty.corpus import artifacts  # noqa: E402
from tests.thirdparty.matrix import TARGETS, run_matrix  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated artifact names")
    parser.add_argument("--json", type=Path, help="also write the cases as JSON here")
    args = parser.parse_args(argv)
    only = tuple(n for n in args.only.split(",") if n)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ckit-corpus-") as tmp:
        matrix = run_matrix(Path(tmp), only)
    elapsed = time.perf_counter() - started
    arts = {a.name: a for a in artifacts()}
    width = max(len(n) for n in arts)
    print(f"{'artifact':<{width}}  {'written by':<16}  " + "  ".join(f"{t:<14}" for t in TARGETS))
    for name in sorted({c.artifact for c in matrix.cases.values()}, key=list(arts).index):
        row = [matrix.cases[(name, t)].status for t in TARGETS]
        print(f"{name:<{width}}  {arts[name].keras_version:<16}  " + "  ".join(f"{s:<14}" for s in row))
    print()
    for case in matrix.cases.values():
        if case.status != "exact":
            print(f"{case.artifact} -> {case.target}: {case.status}: {case.detail}")
    total = len(matrix.cases)
    counts = {s: sum(c.status == s for c in matrix.cases.values()) for s in ("exact", "refused", "WRONG", "CRASH", "unchecked")}
    print()
    print(f"passed {matrix.passed()} of {total} (exact {counts['exact']}, refused {counts['refused']}, "
          f"WRONG {counts['WRONG']}, CRASH {counts['CRASH']}, unchecked {counts['unchecked']}) in {elapsed:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in matrix.seconds.items())})")
    if args.json:
        args.json.write_text(json.dumps([vars(c) for c in matrix.cases.values()], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
