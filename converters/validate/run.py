"""The parent side of a validation: check the options, start the worker, turn its answer into a report.

The framework work runs in one worker process per validation (`worker.py`), started with
KERAS_BACKEND (and the device's visibility variables) set before Keras is imported: the
backend cannot change once Keras is loaded, and TensorFlow must not see a GPU that
`--device cpu` hides.  This side never imports a framework.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspector import errors
from inspector.errors import CkitError, MissingDependency

from ..datasets import load_dataset
from .scoring import failure_reason
from .matrix import BACKENDS, DEFAULT_MODEL, DEVICES, TARGETS
from .report import Report, format_matrix, from_dict, to_dict, write_json, write_tensorboard


@dataclass
class ValidateOptions:
    """What `ckconvert validate` was asked to do; every field has the CLI's default."""

    artifact: str | None = None  # a user's artifact; None runs the whole tutorial story
    model: str | None = None  # "module:function" factory; default converters.zoo:seed_model
    data: str | None = None  # .npz with x_test, y_test (and optionally x_train, y_train)
    dataset: str | None = None  # "digits28" (default) or "fashion_mnist"
    cache_dir: str | None = None  # Keras cache root for fashion_mnist (default $KERAS_HOME or ~/.keras)
    device: str = "auto"
    backend: str | None = None  # Keras 3 backend; default: tensorflow when importable, else jax, else torch
    epochs: int = 1
    batch_size: int = 32
    seed: int = 0
    tolerance: float | None = None  # None: DEFAULT_TOLERANCE, or RECORDED_TOLERANCE against a recorded baseline
    json_path: str | None = None  # "-" is stdout (handled by main_validate)
    logdir: str | None = None
    workdir: str | None = None  # keep every artifact here instead of a temporary directory
    progress: bool = True
    # Test hook ("module:function"), called as hook(path, source, target) on every converted
    # artifact before it is reloaded: lets a test plant a fault and see the validator catch it.
    tamper: str | None = None
    timeout_s: float | None = None
    # Convert only into these formats (each source is still reloaded as saved); None: every format.
    targets: tuple[str, ...] | None = None


def run_validation(options: ValidateOptions) -> Report:
    """Run one validation and return its report (also written to --json / --logdir when asked)."""
    started = time.monotonic()
    model = options.model or DEFAULT_MODEL
    if options.artifact is not None and options.model is None:
        raise CkitError(
            f"validating {options.artifact} needs the model that reads it; pass --model module:function "
            f"(for the tutorial model: --model {DEFAULT_MODEL})"
        )
    if options.artifact is not None and not _artifact_exists(Path(options.artifact)):
        raise errors.MissingData(f"artifact {options.artifact} does not exist; pass the path of a saved model or weights")
    unknown = sorted(set(options.targets or ()) - set(TARGETS))
    if unknown:
        raise CkitError(f"targets {', '.join(unknown)} are not formats the validator checks; expected some of: {', '.join(TARGETS)}")
    if options.device not in DEVICES:
        raise CkitError(f"--device {options.device} is not known; expected one of: {', '.join(DEVICES)}")
    backend = resolve_backend(options.backend)
    dataset = load_dataset(_dataset_name(options.dataset), data=options.data, cache_dir=options.cache_dir)

    with _workdir(options.workdir) as workdir:
        data_path = workdir / "data.npz"
        arrays = {"x_test": dataset.x_test, "y_test": dataset.y_test}
        if dataset.has_train:
            arrays.update(x_train=dataset.x_train, y_train=dataset.y_train)
        np.savez(data_path, **arrays)
        spec = {
            "options": asdict(options),
            "model": model,
            "backend": backend,
            "dataset": dataset.name,
            "data_path": str(data_path),
            "workdir": str(workdir),
            "result_path": str(workdir / "result.json"),
        }
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        answer = _run_worker(spec_path, backend, options)
    if "error" in answer:
        error_class = getattr(errors, answer["error"]["class"], CkitError)
        if not (isinstance(error_class, type) and issubclass(error_class, CkitError)):
            error_class = CkitError
        raise error_class(answer["error"]["message"])
    report = from_dict(answer["report"])
    report = replace(report, seconds=time.monotonic() - started)
    if options.json_path and options.json_path != "-":
        write_json(report, options.json_path)
    if options.logdir:
        write_tensorboard(report, options.logdir)
    return report


def main_validate(**kwargs: Any) -> int:
    """The CLI's entry: run, print the matrix on stdout (diagnostics on stderr), return the exit code.

    0: every row OK or skipped; 1: a row failed or the validation could not run.
    """
    fields = ValidateOptions.__dataclass_fields__
    unknown = sorted(set(kwargs) - set(fields))
    if unknown:
        raise TypeError(f"main_validate got unknown options {unknown}")
    options = ValidateOptions(**{k: v for k, v in kwargs.items() if v is not None or k in ("model", "artifact")})
    try:
        report = run_validation(options)
    except CkitError as exc:
        print(f"ckconvert validate: error: {exc}", file=sys.stderr)
        return 1
    matrix = format_matrix(report)
    if options.json_path == "-":
        sys.stderr.write(matrix)
        sys.stdout.write(json.dumps(to_dict(report), indent=2) + "\n")
    else:
        sys.stdout.write(matrix)
    sys.stdout.flush()
    for failure in report.failures:
        print(
            f"ckconvert validate: FAIL {failure.source} -> {failure.target} ({failure.loader}): "
            f"{failure.note or failure_reason(failure, report)}",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def resolve_backend(backend: str | None) -> str:
    """The Keras 3 backend to validate with: the one asked for, else $KERAS_BACKEND, else what is installed."""
    if backend is None:
        backend = os.environ.get("KERAS_BACKEND") or next(
            (b for b in BACKENDS if importlib.util.find_spec(b) is not None), "tensorflow"
        )
    if backend not in BACKENDS:
        raise CkitError(f"--backend {backend} is not a Keras 3 backend ckit validates with; expected one of: {', '.join(BACKENDS)}")
    if importlib.util.find_spec(backend) is None:
        raise MissingDependency(
            f"--backend {backend}: the Python package '{backend}' is not installed; install it or pass another --backend "
            f"({', '.join(b for b in BACKENDS if b != backend)})"
        )
    if importlib.util.find_spec("keras") is None:
        raise MissingDependency("validation needs Keras 3, which is not installed; install it with: pip install 'ckit[jax]' or 'ckit[tf]'")
    return backend


def _dataset_name(name: str | None) -> str:
    return "digits28" if name in (None, "digits") else name


def _artifact_exists(path: Path) -> bool:
    return path.exists() or path.with_name(path.name + ".index").exists()


class _workdir:
    """The directory the worker writes into: the user's (kept) or a temporary one (removed)."""

    def __init__(self, path: str | None) -> None:
        self._given = path
        self._temp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Path:
        if self._given:
            path = Path(self._given)
            path.mkdir(parents=True, exist_ok=True)
            if any(path.iterdir()):
                raise errors.OutputExists(f"workdir {path} is not empty; expected an empty or new directory for the artifacts")
            return path
        self._temp = tempfile.TemporaryDirectory(prefix="ckit-validate-")
        return Path(self._temp.name)

    def __exit__(self, *exc: object) -> None:
        if self._temp is not None:
            self._temp.cleanup()


def _run_worker(spec_path: Path, backend: str, options: ValidateOptions) -> dict[str, Any]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.getcwd(), env.get("PYTHONPATH", "")) if p)
    if options.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
        env["JAX_PLATFORMS"] = "cpu"
    command = [sys.executable, "-m", "converters.validate", "--worker", str(spec_path)]
    try:
        # The worker's stdout (framework chatter) goes to our stderr: stdout carries only the matrix.
        completed = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno()
                                   if _has_fileno(sys.stderr) else None, timeout=options.timeout_s)
    except subprocess.TimeoutExpired:
        raise CkitError(f"validation did not finish within {options.timeout_s:g} s; raise the timeout or use smaller --data") from None
    result_path = spec_path.with_name("result.json")
    if not result_path.is_file():
        raise CkitError(
            f"the validation worker ({backend} backend) exited with code {completed.returncode} without a result; "
            "its messages are above"
        )
    return json.loads(result_path.read_text())


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
