"""The validator: train, save in every format, convert with ckit, reload with the framework's own loader, compare.

The framework work runs in one worker process per validation, started with
KERAS_BACKEND (and the device's visibility variables) set before Keras is
imported: the backend cannot change once Keras is loaded, and TensorFlow must
not see a GPU that `--device cpu` hides.  With the TensorFlow backend the one
worker holds tf_keras and Keras 3 together; with jax or torch it holds Keras 3
only, and every row that needs TensorFlow is reported as skipped with the
reason.  The parent process checks the inputs, starts the worker, and turns
its JSON answer into a `Report`.

    parent:  check options, load data -> data.npz  ->  worker (python -m converters.validate --worker)
    worker:  train / load baseline -> save sources -> convert -> reload -> evaluate -> result.json
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from inspector import errors
from inspector.errors import CkitError, MappingError, MissingDependency

from .datasets import Dataset, load_dataset
from .naming import call_factory, load_model_factory
from .report import Report, Result, format_matrix, from_dict, to_dict, write_json, write_tensorboard

BACKENDS = ("tensorflow", "jax", "torch")
DEVICES = ("auto", "cpu", "gpu")
DEFAULT_MODEL = "converters.zoo:seed_model"

# Bit-identical weights give identical logits on one device (every row of the default
# CPU run differs by exactly 0, tf_keras and Keras 3 alike); the tolerance leaves room
# for a GPU choosing a different kernel for a reloaded model, nothing more.
DEFAULT_TOLERANCE = 1e-5
# Targets ckit writes only with TensorFlow's help; without tf_keras they are not attempted.
NEEDS_TF_TO_WRITE = frozenset({"saved-model"})
# Full-model formats carry the model's config; converting weights-only sources into them needs --model.
MODEL_FORMATS = frozenset({"h5-model", "saved-model", "keras3-model"})

# Where each format is saved inside a directory, by the frameworks and by ckit alike.
FILENAMES = {
    "h5-weights": "weights.h5",
    "h5-model": "model.h5",
    "tf-checkpoint": "ckpt/weights",
    "saved-model": "saved_model",
    "keras3-weights": "model.weights.h5",
    "keras3-model": "model.keras",
    "safetensors": "model.safetensors",
}
TARGETS = tuple(FILENAMES)
TF_KERAS_SOURCES = ("h5-weights", "tf-checkpoint", "h5-model", "saved-model")
KERAS3_SOURCES = ("keras3-weights", "keras3-model")

# The framework loaders each target is proven with, when tf_keras is there ...
TF_LOADERS: dict[str, tuple[str, ...]] = {
    "h5-weights": ("tf_keras.Model.load_weights",),
    "h5-model": ("tf_keras.models.load_model", "keras.models.load_model"),
    "tf-checkpoint": ("tf_keras.Model.load_weights",),
    "saved-model": ("tf_keras.models.load_model",),
    "keras3-weights": ("keras.Model.load_weights",),
    "keras3-model": ("keras.models.load_model",),
    "safetensors": ("tf_keras.Model.set_weights",),
}
# ... and with Keras 3 alone (jax, torch, or TensorFlow without tf_keras).
KERAS3_LOADERS: dict[str, tuple[str, ...]] = {
    "h5-weights": ("keras.Model.load_weights",),
    "h5-model": ("keras.models.load_model",),
    "keras3-weights": ("keras.Model.load_weights",),
    "keras3-model": ("keras.models.load_model",),
    "safetensors": ("keras.Model.set_weights",),
}
BATCH = 1024


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
    tolerance: float = DEFAULT_TOLERANCE
    json_path: str | None = None  # "-" is stdout (handled by main_validate)
    logdir: str | None = None
    workdir: str | None = None  # keep every artifact here instead of a temporary directory
    progress: bool = True
    # Test hook ("module:function"), called as hook(path, source, target) on every converted
    # artifact before it is reloaded: lets a test plant a fault and see the validator catch it.
    tamper: str | None = None
    timeout_s: float | None = None


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
            f"{failure.note or _failure_reason(failure, report)}",
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


# --------------------------------------------------------------------------------------------
# parent side


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
    root = str(Path(__file__).resolve().parents[1])
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


def _failure_reason(result: Result, report: Report) -> str:
    reasons = []
    if result.accuracy != report.baseline_accuracy:
        reasons.append(f"accuracy {result.accuracy:.4f} differs from the baseline's {report.baseline_accuracy:.4f}")
    if result.max_abs_logit_diff is None or not result.max_abs_logit_diff <= report.tolerance:
        reasons.append(f"largest logit difference {result.max_abs_logit_diff:g} exceeds the tolerance {report.tolerance:g}")
    return "; ".join(reasons)


# --------------------------------------------------------------------------------------------
# worker side: everything below runs in the process that holds the frameworks


class _Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.options = ValidateOptions(**spec["options"])
        self.model_spec: str = spec["model"]
        self.backend: str = spec["backend"]
        self.workdir = Path(spec["workdir"])
        self.notes: list[str] = []
        self.results: list[Result] = []
        self.factory = load_model_factory(self.model_spec)
        self.tamper = load_model_factory(self.options.tamper) if self.options.tamper else None
        with np.load(spec["data_path"]) as archive:
            arrays = {k: archive[k] for k in archive.files}
        self.data = Dataset(name=spec["dataset"], **arrays)
        self.frameworks = _import_frameworks(self.backend)
        self.device = _device(self.backend, self.frameworks, self.options.device)
        self._step = 0
        self._steps = 0

    # -- frameworks ---------------------------------------------------------------------------
    @property
    def has_tf_keras(self) -> bool:
        return "tf_keras" in self.frameworks

    def loaders(self, target: str) -> tuple[str, ...]:
        return (TF_LOADERS if self.has_tf_keras else KERAS3_LOADERS).get(target, ())

    def fresh_model(self, framework: str, seed: int | None = None) -> Any:
        """A new, untrained training model from the factory, with deterministic layer names."""
        keras_module = self.frameworks[framework]
        keras_module.backend.clear_session()
        if seed is not None:  # seeds the initial weights, dropout and shuffling alike
            keras_module.utils.set_random_seed(seed)
        try:
            model = call_factory(self.factory, keras_module)
        except Exception as exc:  # noqa: BLE001 - a user's factory can raise anything
            raise CkitError(
                f"--model {self.model_spec} raised {type(exc).__name__} when building with {framework}: "
                f"{_first_line(exc)}; the factory must take the keras module (tf_keras or keras) and return a model"
            ) from None
        if not hasattr(model, "weights") or not callable(model):
            raise CkitError(f"--model {self.model_spec} returned {type(model).__name__}, expected a Keras model")
        self._check_fits_data(model, framework)
        return model

    def _check_fits_data(self, model: Any, framework: str) -> None:
        expected = _input_shape(model)
        got = tuple(self.data.x_test.shape[1:])
        if expected is not None and (
            len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got))
        ):
            shown = tuple("N" if e is None else e for e in expected)
            raise MappingError(
                f"data x_test has samples of shape {got} but model {self.model_spec} ({framework}) expects {shown}; "
                f"pass --data with x_test of shape (N, {', '.join(map(str, shown))}) or the --model that fits the data"
            )

    # -- the story ----------------------------------------------------------------------------
    def run(self) -> Report:
        if self.options.artifact is None:
            baseline, sources = self.train_and_save()
        else:
            baseline, sources = self.load_user_artifact(Path(self.options.artifact))
        base_acc, base_loss = _metrics(baseline, self.data.y_test)
        plan = self.plan(sources)
        self._steps = sum(len(self.loaders(target)) or 1 for _, target, _ in plan)
        for source, target, path in plan:
            self.validate_target(source, target, path, baseline, base_acc)
        if self.frameworks.get("keras") is not None and not self.has_tf_keras:
            self.notes.append(
                f"TensorFlow rows skipped: the {self.backend} backend runs Keras 3 only; "
                "run with --backend tensorflow where TensorFlow and tf_keras are installed to cover them"
            )
        return Report(
            baseline_accuracy=base_acc,
            baseline_loss=base_loss,
            device=self.device,
            results=tuple(self.results),
            tolerance=self.options.tolerance,
            backend=self.backend,
            model=self.model_spec,
            dataset=self.data.name,
            artifact=self.options.artifact,
            notes=tuple(self.notes),
        )

    def train_and_save(self) -> tuple[np.ndarray, dict[str, Path]]:
        trainer = "tf_keras" if self.has_tf_keras else "keras"
        model = self.fresh_model(trainer, seed=self.options.seed)
        if self.data.x_train is not None:
            self.say(
                f"training {self.model_spec} with {trainer} ({self.backend if trainer == 'keras' else 'tensorflow'}) "
                f"for {self.options.epochs} epoch(s) on {len(self.data.x_train)} {self.data.name} samples"
            )
            try:
                model.fit(self.data.x_train, self.data.y_train, epochs=self.options.epochs,
                          batch_size=self.options.batch_size, verbose=0)
            except Exception as exc:  # noqa: BLE001 - the framework's own error, made one line
                raise MappingError(
                    f"training {self.model_spec} on {self.data.name} failed ({type(exc).__name__}: {_first_line(exc)}); "
                    "pass --data whose labels fit the model's outputs"
                ) from None
        else:
            self.notes.append("the data has no x_train/y_train: the untrained model was validated")
        baseline = _predict(model, self.data.x_test, trainer, self.frameworks)
        _check_labels(baseline, self.data.y_test, self.model_spec)
        sources: dict[str, Path] = {}
        root = self.workdir / "sources"
        if trainer == "tf_keras":
            for fmt in TF_KERAS_SOURCES:
                path = _target_path(root / fmt, fmt)
                self.say(f"saving {fmt} with tf_keras -> {path.relative_to(self.workdir)}")
                if fmt in ("h5-weights", "tf-checkpoint"):
                    model.save_weights(str(path))
                else:
                    model.save(str(path))
                sources[fmt] = path
            keras3_model = self.fresh_model("keras")
            keras3_model.set_weights(model.get_weights())
        else:
            keras3_model = model
        for fmt in KERAS3_SOURCES:
            path = _target_path(root / fmt, fmt)
            self.say(f"saving {fmt} with Keras 3 -> {path.relative_to(self.workdir)}")
            if fmt == "keras3-weights":
                keras3_model.save_weights(str(path))
            else:
                keras3_model.save(str(path))
            sources[fmt] = path
        return baseline, sources

    def load_user_artifact(self, path: Path) -> tuple[np.ndarray, dict[str, Path]]:
        fmt = detect_format(path)
        loaders = self.loaders(fmt)
        if not loaders:
            raise errors.UnsupportedFeature(
                f"{path} is a {fmt} artifact, which the {self.backend} backend cannot load without TensorFlow; "
                "run with --backend tensorflow where TensorFlow and tf_keras are installed"
            )
        try:
            predict = self.load(loaders[0], fmt, path)
            self.say(f"baseline: {path} ({fmt}) loaded with {predict.loader} for {self.model_spec}")
            baseline = predict(self.data.x_test)
        except CkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - the framework's message, made one line
            raise MappingError(
                f"{path} ({fmt}) does not fit model {self.model_spec}: {loaders[0]} failed with "
                f"{type(exc).__name__}: {_first_line(exc)}; pass the --model factory that built this artifact"
            ) from None
        _check_labels(baseline, self.data.y_test, self.model_spec)
        return baseline, {fmt: path}

    def plan(self, sources: dict[str, Path]) -> list[tuple[str, str, Path | None]]:
        """(source, target, path-if-already-there): each source as saved, then into every other format."""
        plan: list[tuple[str, str, Path | None]] = []
        for source, path in sources.items():
            plan.append((source, source, path))
            plan.extend((source, target, None) for target in TARGETS if target != source)
        return plan

    def validate_target(self, source: str, target: str, path: Path | None, baseline: np.ndarray, base_acc: float) -> None:
        loaders = self.loaders(target)
        if path is None and target in NEEDS_TF_TO_WRITE and not self.has_tf_keras:
            self.progress(source, target, "-")
            self.results.append(Result(source, target, "-", ok=None,
                                       note=f"not converted: writing {target} needs TensorFlow, absent from the {self.backend} run"))
            return
        if path is None:
            path, problem = self.convert(source, target)
            if path is None:
                for loader in loaders or ("-",):
                    self.progress(source, target, loader)
                    self.results.append(Result(source, target, loader, ok=problem[0], note=problem[1]))
                return
        if not loaders:
            self.progress(source, target, "-")
            self.results.append(Result(source, target, "-", ok=None, note=f"converted and verified by ckit; {_no_loader_reason(target, self.backend)}"))
            return
        for loader in loaders:
            self.progress(source, target, loader)
            self.results.append(self.evaluate(source, target, loader, path, baseline, base_acc))

    def convert(self, source: str, target: str) -> tuple[Path | None, tuple[bool | None, str]]:
        try:
            from .convert import convert
        except ImportError as exc:
            return None, (None, f"ckit's converter is not available ({_first_line(exc)})")
        src = self.spec_sources_path(source)
        dst = _target_path(self.workdir / "converted" / f"{source}-to-{target}", target)
        try:
            # ckit builds the training model from the factory to take names and config from it.  A
            # Keras 2 target's model needs tf_keras, which a jax/torch run lacks: there the factory
            # goes only where the source has no config to carry over.
            needs_config = target in MODEL_FORMATS and source not in MODEL_FORMATS
            model = self.model_spec if self.has_tf_keras or needs_config else None
            result = convert(src, dst, target, source_format=source, model=model, force=True, verify=True)
        except (errors.UnsupportedFeature, ImportError) as exc:
            # A writer ckit does not have (yet), or one whose framework is not installed here.
            return None, (None, f"not converted: {_first_line(exc)}")
        except CkitError as exc:
            return None, (False, f"convert failed: {_first_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - a converter bug is a failed row, not a crash
            traceback.print_exc()
            return None, (False, f"convert crashed: {type(exc).__name__}: {_first_line(exc)}")
        written = Path(result.dst)
        if self.tamper is not None:
            self.tamper(written, source, target)
        return written, (True, "")

    def spec_sources_path(self, source: str) -> Path:
        if self.options.artifact is not None:
            return Path(self.options.artifact)
        return _target_path(self.workdir / "sources" / source, source)

    def evaluate(self, source: str, target: str, loader: str, path: Path, baseline: np.ndarray, base_acc: float) -> Result:
        try:
            predict = self.load(loader, target, path)
            logits = predict(self.data.x_test)
        except Exception as exc:  # noqa: BLE001 - a framework refusing a file is what this row reports
            return Result(source, target, loader, ok=False, note=f"reload failed: {type(exc).__name__}: {_first_line(exc)}")
        loader_name = predict.loader
        if logits.shape != baseline.shape:
            return Result(source, target, loader_name, ok=False,
                          note=f"outputs have shape {logits.shape}, the baseline's {baseline.shape}")
        accuracy, loss = _metrics(logits, self.data.y_test)
        diff = float(np.max(np.abs(logits.astype(np.float64) - baseline.astype(np.float64))))
        ok = accuracy == base_acc and diff <= self.options.tolerance
        return Result(source, target, loader_name, accuracy=accuracy, loss=loss, max_abs_logit_diff=diff, ok=bool(ok))

    # -- loaders ------------------------------------------------------------------------------
    def load(self, loader: str, fmt: str, path: Path) -> _Predictor:
        """Reload `path` with `loader`; returns a function from inputs to logits (named by its .loader)."""
        framework, verb = loader.split(".")[0], loader.split(".")[-1]
        if fmt == "tf-checkpoint":
            path = _checkpoint_prefix(path)
        if verb == "load_weights":
            model = self.fresh_model(framework)
            status = model.load_weights(str(path))
            if fmt == "tf-checkpoint" and status is not None:
                status.assert_nontrivial_match()
        elif verb == "load_model":
            keras_module = self.frameworks[framework]
            keras_module.backend.clear_session()
            if fmt == "saved-model" and not (path / "keras_metadata.pb").exists():
                return self._saved_model_signature(path)
            _refuse_code_in_config(path, fmt, framework, self.frameworks)
            model = keras_module.models.load_model(str(path), compile=False)
        elif verb == "set_weights":
            model = self.fresh_model(framework)
            model.set_weights(_safetensors_in_model_order(path, model, framework))
        else:  # pragma: no cover - the loader tables hold only the verbs above
            raise ValueError(loader)
        return _Predictor(lambda x: _predict(model, x, framework, self.frameworks), loader)

    def _saved_model_signature(self, path: Path) -> _Predictor:
        tf = self.frameworks["tf"]
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]

        def predict(x: np.ndarray) -> np.ndarray:
            outputs = []
            for start in range(0, len(x), BATCH):
                result = signature(tf.constant(x[start : start + BATCH]))
                if len(result) != 1:
                    raise CkitError(f"{path}: the serving signature returns {len(result)} outputs; expected 1")
                outputs.append(next(iter(result.values())).numpy())
            return np.concatenate(outputs)

        return _Predictor(predict, "tf.saved_model.load serving_default")

    # -- progress -----------------------------------------------------------------------------
    def say(self, message: str) -> None:
        if self.options.progress:
            print(f"validate: {message}", file=sys.stderr, flush=True)

    def progress(self, source: str, target: str, loader: str) -> None:
        self._step += 1
        shown = "as saved" if source == target else f"-> {target}"
        self.say(f"[{self._step}/{self._steps}] {source} {shown} ({loader})")


class _Predictor:
    def __init__(self, function: Callable[[np.ndarray], np.ndarray], loader: str) -> None:
        self._function = function
        self.loader = loader

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._function(x)


def detect_format(path: Path) -> str:
    """The format id of a user's artifact: ckit's registry, with safetensors recognised here."""
    if path.name.endswith(".safetensors"):
        return "safetensors"
    from inspector.registry import detect

    return detect(path).name


class _WithoutTensorFlow(importlib.abc.MetaPathFinder):
    """Refuses TensorFlow imports, so a jax or torch run checks the same rows wherever it runs.

    The GPU machines this path is for have no TensorFlow; a run here, where TensorFlow is
    installed, must not quietly use it (ckit's Keras 2 writers would, through --model).
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in ("tensorflow", "tf_keras"):
            raise ModuleNotFoundError(f"No module named '{name}' (the {self.backend} validation runs without TensorFlow)")
        return None


def _import_frameworks(backend: str) -> dict[str, Any]:
    import logging
    import warnings

    # Framework chatter (deprecations, HDF5 "legacy format" advice) is noise in a report.
    warnings.filterwarnings("ignore")
    frameworks: dict[str, Any] = {}
    if backend != "tensorflow":
        sys.meta_path.insert(0, _WithoutTensorFlow(backend))
    else:
        try:
            import tensorflow as tf

            tf.get_logger().setLevel(logging.ERROR)
            frameworks["tf"] = tf
            import tf_keras

            frameworks["tf_keras"] = tf_keras
        except ImportError:
            pass
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    import keras

    if keras.backend.backend() != backend:
        raise CkitError(
            f"Keras 3 came up with the {keras.backend.backend()} backend, expected {backend}; "
            "unset KERAS_BACKEND in ~/.keras/keras.json or pass --backend"
        )
    frameworks["keras"] = keras
    return frameworks


def _device(backend: str, frameworks: dict[str, Any], wanted: str) -> str:
    """The device the frameworks compute on, described; refuses --device gpu without one."""
    if backend == "tensorflow":
        tf = frameworks["tf"] if "tf" in frameworks else importlib.import_module("tensorflow")
        gpus = tf.config.list_physical_devices("GPU")
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        seen = "cpu"
    elif backend == "jax":
        import jax

        devices = jax.devices()
        names = [d.device_kind for d in devices if d.platform == "gpu"]
        seen = ", ".join(sorted({d.platform for d in devices}))
    else:
        import torch

        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
        seen = "cpu"
    if wanted == "gpu" and not names:
        raise CkitError(
            f"--device gpu: the {backend} backend sees no GPU (devices: {seen}); use --device cpu or auto, "
            f"or install a CUDA build of {backend}"
        )
    return f"gpu: {names[0]}" if names else "cpu"


def _input_shape(model: Any) -> tuple[int | None, ...] | None:
    try:
        shape = model.input_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list) or not shape:
        return None
    return tuple(None if d is None else int(d) for d in tuple(shape)[1:])


def _predict(model: Any, x: np.ndarray, framework: str, frameworks: dict[str, Any]) -> np.ndarray:
    to_numpy = frameworks["keras"].ops.convert_to_numpy if framework == "keras" else np.asarray
    outputs = []
    for start in range(0, len(x), BATCH):
        out = model(x[start : start + BATCH], training=False)
        if isinstance(out, (list, tuple, dict)):
            raise CkitError("the model has several outputs; the validator compares models with one output of class scores")
        outputs.append(np.asarray(to_numpy(out)))
    return np.concatenate(outputs)


def _metrics(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean sparse categorical cross-entropy, computed the same way for every row."""
    scores = logits.astype(np.float64).reshape(len(logits), -1)
    accuracy = float(np.mean(np.argmax(scores, axis=1) == labels))
    probabilities = np.all(scores >= 0) and np.all(scores <= 1) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
    if probabilities:  # a softmax output: the loss is -log p
        picked = np.clip(scores[np.arange(len(labels)), labels], 1e-12, 1.0)
        return accuracy, float(np.mean(-np.log(picked)))
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    return accuracy, float(np.mean(log_sum - shifted[np.arange(len(labels)), labels]))


def _check_labels(logits: np.ndarray, labels: np.ndarray, model: str) -> None:
    classes = int(np.prod(logits.shape[1:]))
    if labels.min() < 0 or labels.max() >= classes:
        raise MappingError(
            f"the labels run from {labels.min()} to {labels.max()} but model {model} outputs {classes} class scores; "
            "pass --data whose labels are class ids below the model's output size"
        )


def _safetensors_in_model_order(path: Path, model: Any, framework: str) -> list[np.ndarray]:
    """The arrays of a safetensors file in `model.weights` order: by name, else by the file's stated order."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata() or {}
    names = [_weight_name(w, framework) for w in model.weights]
    # Optimizer state travels under its own prefix; only model weights go into set_weights.
    order = _match_names(names, [key for key in tensors if not key.startswith("optimizer/")])
    if order is None:
        for key in ("ckit.order", "order", "weight_order"):
            if key in metadata:
                try:
                    stated = json.loads(metadata[key])
                except ValueError:
                    continue
                if isinstance(stated, list) and sorted(stated) == sorted(k for k in tensors if not k.startswith("optimizer/")):
                    order = stated
                    break
    if order is None:
        raise MappingError(
            f"{path}: cannot tell which tensor is which weight (file keys {sorted(tensors)[:6]}..., "
            f"model weights {names[:6]}...); write it with ckit, which records the model's order"
        )
    return [tensors[key] for key in order]


def _weight_name(weight: Any, framework: str) -> str:
    name = getattr(weight, "path", None) if framework == "keras" else None
    return (name or weight.name).split(":")[0]


def _match_names(names: list[str], keys: list[str]) -> list[str] | None:
    """Keys for model weight names, matched on whole path components from the right."""
    order = []
    for name in names:
        parts = name.split("/")
        found = [k for k in keys if _tail_match(parts, k.split("/"))]
        if len(found) != 1:
            return None
        order.append(found[0])
    return order if len(set(order)) == len(order) else None


def _tail_match(a: list[str], b: list[str]) -> bool:
    n = min(len(a), len(b))
    return n >= 2 and a[-n:] == b[-n:]


def _checkpoint_prefix(path: Path) -> Path:
    if path.name.endswith(".index"):
        return path.with_name(path.name[: -len(".index")])
    if path.is_dir():
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_name(indexes[0].name[: -len(".index")])
    return path


def _target_path(directory: Path, fmt: str) -> Path:
    path = directory / FILENAMES[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _no_loader_reason(target: str, backend: str) -> str:
    return f"reloading {target} needs tf_keras (TensorFlow); Keras 3 on {backend} has no loader for it"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _worker_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result_path = Path(spec["result_path"])
    try:
        report = _Worker(spec).run()
        answer: dict[str, Any] = {"report": to_dict(report)}
    except CkitError as exc:
        answer = {"error": {"class": type(exc).__name__, "message": str(exc)}}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line, traceback on stderr
        traceback.print_exc()
        answer = {"error": {"class": "CkitError",
                            "message": f"validation crashed: {type(exc).__name__}: {_first_line(exc)} (traceback above)"}}
    result_path.write_text(json.dumps(answer))
    return 0


def _refuse_code_in_config(path: Path, fmt: str, framework: str, frameworks: dict[str, Any]) -> None:
    """Check an artifact's model config before a framework rebuilds it from that config.

    tf_keras rebuilds a Lambda layer in a legacy `.h5` or SavedModel by unmarshalling its
    bytecode, with no safe mode to stop it; a user's artifact is hostile until read, so the
    same checks the converters apply run first.
    """
    from inspector import read_manifest

    from .config_safety import check_config_is_safe, check_config_safe
    from .model_config import model_config_of

    config = model_config_of(read_manifest(path, fmt))
    if config is None:
        return
    if config["schema"] == "keras3" or framework != "tf_keras":
        check_config_safe(config["config"])
    else:
        check_config_is_safe(config["config"], frameworks["tf_keras"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2]))
    sys.exit("usage: ckconvert validate (this module's command line is the validation worker's)")
