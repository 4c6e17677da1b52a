"""How a row is scored against the baseline: the same metrics and the same verdict for every row."""

from __future__ import annotations

import numpy as np

from inspector.errors import MappingError

from .report import Report, Result


def metrics(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
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


def max_abs_diff(logits: np.ndarray, baseline: np.ndarray) -> float:
    return float(np.max(np.abs(logits.astype(np.float64) - baseline.astype(np.float64))))


def passes(accuracy: float, diff: float, base_acc: float, tolerance: float) -> bool:
    """A row is OK when it classifies exactly as the baseline did and every logit is within the tolerance."""
    return bool(accuracy == base_acc and diff <= tolerance)


def failure_reason(result: Result, report: Report) -> str:
    reasons = []
    if result.accuracy != report.baseline_accuracy:
        reasons.append(f"accuracy {result.accuracy:.4f} differs from the baseline's {report.baseline_accuracy:.4f}")
    if result.max_abs_logit_diff is None or not result.max_abs_logit_diff <= report.tolerance:
        reasons.append(f"largest logit difference {result.max_abs_logit_diff:g} exceeds the tolerance {report.tolerance:g}")
    return "; ".join(reasons)


def check_labels(logits: np.ndarray, labels: np.ndarray, model: str) -> None:
    classes = int(np.prod(logits.shape[1:]))
    if labels.min() < 0 or labels.max() >= classes:
        raise MappingError(
            f"the labels run from {labels.min()} to {labels.max()} but model {model} outputs {classes} class scores; "
            "pass --data whose labels are class ids below the model's output size"
        )
