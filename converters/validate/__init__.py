"""The validator: train, save in every format, convert with ckit, reload with the framework's own loader, compare.

    parent (run.py):     check options, load data -> data.npz -> worker (python -m converters.validate --worker SPEC)
    worker (worker.py):  sources.py (train and save / recorded tf_keras fixtures / the user's artifact)
                         -> convert -> loaders.py (reload) -> scoring.py (against the baseline)
                         -> limitations.py (a refusal: the framework's limitation or ckit's failure) -> result.json
    parent (run.py):     result.json -> report.py's Report -> matrix on stdout, --json, --logdir

`matrix.py` says which formats and loaders make up the matrix; `frameworks.py` imports
the frameworks in the worker, with `blocker.py` keeping TensorFlow out of a jax or torch run.
"""

from __future__ import annotations

from .matrix import (
    BACKENDS,
    DEFAULT_MODEL,
    DEFAULT_TOLERANCE,
    DEVICES,
    KERAS3_SOURCES,
    TARGETS,
    TF_KERAS_SOURCES,
)
from .report import Report, Result
from .run import ValidateOptions, main_validate, resolve_backend, run_validation

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "DEFAULT_TOLERANCE",
    "DEVICES",
    "KERAS3_SOURCES",
    "TARGETS",
    "TF_KERAS_SOURCES",
    "Report",
    "Result",
    "ValidateOptions",
    "main_validate",
    "resolve_backend",
    "run_validation",
]
