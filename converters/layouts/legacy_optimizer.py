"""Optimizer state of Keras <= 2.2 `.h5` files: named `Variable_N` and ordered by that Keras's own
collection of trainable weights, which is not today's model order, so no target can place it.

tf_keras's own `load_model` fails on it too and starts a fresh optimizer with only a log warning;
ckit drops it before writing and says so, with the tensor count, instead of carrying state that
would be restored onto the wrong variables or silently discarded.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ..layout import WeightRef

# `Variable_12`, `training/Adam/Variable_3`, `iterations_1`, `Adam/lr`: names that do not say which
# model variable a slot belongs to (Keras 2.3+ and tf.keras name them `Adam/dense/kernel/m`).
_ANONYMOUS = re.compile(r"(?:.*/)?(?:Variable(?:_\d+)?|iterations(?:_\d+)?|lr(?:_\d+)?|decay(?:_\d+)?|beta_[12](?:_\d+)?)")


def _version(text: Any) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", str(text or ""))[:2]
    return tuple(int(p) for p in parts) if parts else None


def unplaceable(optimizer: Sequence[WeightRef], producer: dict[str, Any]) -> str | None:
    """The note for Keras <= 2.2 optimizer state (which is then dropped), or None to carry it."""
    if not optimizer:
        return None
    version = _version(producer.get("keras_version"))
    slots = [ref for ref in optimizer if ref.shape]
    anonymous = slots and all(_ANONYMOUS.fullmatch(ref.name) for ref in slots)
    if not anonymous or (version is not None and version >= (2, 3)):
        return None
    written = f"Keras {producer.get('keras_version')}" if producer.get("keras_version") else "Keras <= 2.2"
    return (
        f"optimizer state dropped ({len(optimizer)} tensors, e.g. '{slots[0].name}'): {written} names optimizer "
        "slots Variable_N in an order that does not follow today's model variables, so neither tf_keras nor "
        "Keras 3 can restore them (tf_keras's own load_model starts a fresh optimizer too); the model weights "
        "and the training config are carried"
    )
