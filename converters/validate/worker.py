"""The framework worker: the process that holds the frameworks and fills the matrix row by row.

    worker:  sources (train and save, or the user's artifact) -> convert each into every target
             -> reload with each loader -> score against the baseline -> result.json

With the TensorFlow backend the one worker holds tf_keras and Keras 3 together; with jax or
torch it holds Keras 3 only, and every row that needs TensorFlow is reported as skipped with
the reason.  Every failure a row can have becomes that row's note; only a problem with the
inputs stops the run.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from inspector import errors
from inspector.errors import CkitError, MappingError

from ..datasets import Dataset
from ..naming import call_factory, load_model_factory
from . import limitations, sources
from . import loaders as loading
from .frameworks import describe_device, import_frameworks
from .matrix import (
    DEFAULT_TOLERANCE,
    KERAS3_LOADERS,
    MODEL_FORMATS,
    NEEDS_TF_TO_WRITE,
    RECORDED_TOLERANCE,
    TARGETS,
    TF_LOADERS,
    first_line,
    no_loader_reason,
    target_path,
)
from .report import Report, Result, to_dict
from .run import ValidateOptions
from .scoring import max_abs_diff, metrics, passes


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.options = ValidateOptions(**spec["options"])
        self.model_spec: str = spec["model"]
        self.backend: str = spec["backend"]
        self.workdir = Path(spec["workdir"])
        self.notes: list[str] = []
        self.results: list[Result] = []
        # Which framework saved each source ("tf_keras" or "keras"; absent for a user's artifact) ...
        self.writers: dict[str, str] = {}
        # ... and the error each loader gave on a framework-saved file it cannot load, by (loader, format).
        self.refusals: dict[tuple[str, str], str] = {}
        self.tolerance = self.options.tolerance
        self.sources: dict[str, Path] = {}
        self.baseline_source = ""
        self.factory = load_model_factory(self.model_spec)
        self.tamper = load_model_factory(self.options.tamper) if self.options.tamper else None
        with np.load(spec["data_path"]) as archive:
            arrays = {k: archive[k] for k in archive.files}
        self.data = Dataset(name=spec["dataset"], **arrays)
        self.frameworks = import_frameworks(self.backend)
        self.device = describe_device(self.backend, self.frameworks, self.options.device)
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
                f"{first_line(exc)}; the factory must take the keras module (tf_keras or keras) and return a model"
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

    def load(self, loader: str, fmt: str, path: Path) -> loading.Predictor:
        return loading.load(loader, fmt, path, self.fresh_model, self.frameworks)

    # -- the story ----------------------------------------------------------------------------
    def run(self) -> Report:
        found_recorded = None
        if self.options.artifact is not None:
            baseline, found = sources.load_user_artifact(self, Path(self.options.artifact))
        elif not self.has_tf_keras and (found_recorded := sources.recorded(self)) is not None:
            baseline, found, self.baseline_source = found_recorded
        else:
            baseline, found = sources.train_and_save(self)
        if self.tolerance is None:
            self.tolerance = RECORDED_TOLERANCE if found_recorded is not None else DEFAULT_TOLERANCE
        self.sources = found
        base_acc, base_loss = metrics(baseline, self.data.y_test)
        plan = self.plan(found)
        self._steps = sum(len(self.loaders(target)) or 1 for _, target, _ in plan)
        # The files as the frameworks saved them go first: a loader's refusal of one is what tells a
        # framework limitation from a conversion failure on the rows converted into that format.
        rows: list[tuple[int, list[Result]]] = []
        for index, (source, target, path) in sorted(enumerate(plan), key=lambda item: item[1][0] != item[1][1]):
            before = len(self.results)
            self.validate_target(source, target, path, baseline, base_acc)
            rows.append((index, self.results[before:]))
        self.results = [result for _, results in sorted(rows, key=lambda item: item[0]) for result in results]
        if not self.has_tf_keras:
            self.notes.append(
                f"TensorFlow rows skipped: the {self.backend} backend runs Keras 3 only; "
                "run with --backend tensorflow where TensorFlow and tf_keras are installed to cover them"
            )
        return Report(
            baseline_accuracy=base_acc,
            baseline_loss=base_loss,
            device=self.device,
            results=tuple(self.results),
            tolerance=self.tolerance,
            baseline_source=self.baseline_source,
            backend=self.backend,
            model=self.model_spec,
            dataset=self.data.name,
            artifact=self.options.artifact,
            notes=tuple(self.notes),
        )

    def plan(self, found: dict[str, Path]) -> list[tuple[str, str, Path | None]]:
        """(source, target, path-if-already-there): each source as saved, then into every other format."""
        plan: list[tuple[str, str, Path | None]] = []
        for source, path in found.items():
            plan.append((source, source, path))
            wanted = self.options.targets or TARGETS
            plan.extend((source, target, None) for target in TARGETS if target != source and target in wanted)
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
            if source == target:  # e.g. Keras 3 and a tf_keras SavedModel: what the conversions are for
                saved = f"the {target} {self.writers[source]} saved" if source in self.writers else "this artifact"
                self.results.append(Result(source, target, "-", ok=None, limitation=True,
                                           note=f"framework limitation: Keras 3 has no loader for {saved} "
                                                f"(needs tf_keras, absent from the {self.backend} run); the rows converted from it are checked"))
            else:
                self.results.append(Result(source, target, "-", ok=None,
                                           note=f"converted and verified by ckit; {no_loader_reason(target, self.backend)}"))
            return
        for loader in loaders:
            self.progress(source, target, loader)
            self.results.append(self.evaluate(source, target, loader, path, baseline, base_acc))

    def convert(self, source: str, target: str) -> tuple[Path | None, tuple[bool | None, str]]:
        try:
            from ..convert import convert
        except ImportError as exc:
            return None, (None, f"ckit's converter is not available ({first_line(exc)})")
        src = self.sources[source]
        dst = target_path(self.workdir / "converted" / f"{source}-to-{target}", target)
        try:
            # ckit builds the training model from the factory to take names and config from it.  A
            # Keras 2 target's model needs tf_keras, which a jax/torch run lacks: there the factory
            # goes only where the source has no config to carry over.
            needs_config = target in MODEL_FORMATS and source not in MODEL_FORMATS
            model = self.model_spec if self.has_tf_keras or needs_config else None
            result = convert(src, dst, target, source_format=source, model=model, force=True, verify=True)
        except (errors.UnsupportedFeature, ImportError) as exc:
            # A writer ckit does not have (yet), or one whose framework is not installed here.
            return None, (None, f"not converted: {first_line(exc)}")
        except CkitError as exc:
            return None, (False, f"convert failed: {first_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - a converter bug is a failed row, not a crash
            traceback.print_exc()
            return None, (False, f"convert crashed: {type(exc).__name__}: {first_line(exc)}")
        written = Path(result.dst)
        if self.tamper is not None:
            self.tamper(written, source, target)
        return written, (True, "")

    def evaluate(self, source: str, target: str, loader: str, path: Path, baseline: np.ndarray, base_acc: float) -> Result:
        try:
            predictor = self.load(loader, target, path)
            logits = predictor(self.data.x_test)
        except Exception as exc:  # noqa: BLE001 - a framework refusing a file is what this row reports
            return limitations.classify(self, source, target, loader, path, f"{type(exc).__name__}: {first_line(exc)}")
        if logits.shape != baseline.shape:
            return Result(source, target, predictor.loader, ok=False,
                          note=f"outputs have shape {logits.shape}, the baseline's {baseline.shape}")
        accuracy, loss = metrics(logits, self.data.y_test)
        diff = max_abs_diff(logits, baseline)
        ok = passes(accuracy, diff, base_acc, self.tolerance)
        return Result(source, target, predictor.loader, accuracy=accuracy, loss=loss, max_abs_logit_diff=diff, ok=ok)

    # -- progress -----------------------------------------------------------------------------
    def say(self, message: str) -> None:
        if self.options.progress:
            print(f"validate: {message}", file=sys.stderr, flush=True)

    def progress(self, source: str, target: str, loader: str) -> None:
        self._step += 1
        shown = "as saved" if source == target else f"-> {target}"
        self.say(f"[{self._step}/{self._steps}] {source} {shown} ({loader})")


def _input_shape(model: Any) -> tuple[int | None, ...] | None:
    try:
        shape = model.input_shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(shape, list) or not shape:
        return None
    return tuple(None if d is None else int(d) for d in tuple(shape)[1:])


def worker_main(spec_path: str) -> int:
    """Run the validation `spec_path` describes and write its answer (report or one-line error) as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    result_path = Path(spec["result_path"])
    try:
        report = Worker(spec).run()
        answer: dict[str, Any] = {"report": to_dict(report)}
    except CkitError as exc:
        answer = {"error": {"class": type(exc).__name__, "message": str(exc)}}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line, traceback on stderr
        traceback.print_exc()
        answer = {"error": {"class": "CkitError",
                            "message": f"validation crashed: {type(exc).__name__}: {first_line(exc)} (traceback above)"}}
    result_path.write_text(json.dumps(answer))
    return 0
