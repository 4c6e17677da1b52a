"""Reloading an artifact with a framework's own loader, as a function from inputs to logits.

Each loader in the matrix tables (`matrix.TF_LOADERS`, `matrix.KERAS3_LOADERS`) is a
framework call: `load_weights` into a fresh training model, `load_model`, `set_weights`
from a safetensors file, or a SavedModel's serving signature when there is no Keras
metadata.  A user's artifact is hostile until read: its model config is checked before
a framework rebuilds a model from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from inspector.errors import CkitError, MappingError

BATCH = 1024


class Predictor:
    """A reloaded model as a function from inputs to logits, named by the loader that made it."""

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], loader: str, model: Any = None) -> None:
        self._function = function
        self.loader = loader
        self.model = model  # the framework's model object, where the loader made one

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._function(x)


def load(loader: str, fmt: str, path: Path, fresh_model: Callable[[str], Any], frameworks: dict[str, Any]) -> Predictor:
    """Reload `path` (format `fmt`) with `loader`; `fresh_model(framework)` builds the untrained training model."""
    framework, verb = loader.split(".")[0], loader.split(".")[-1]
    if fmt == "tf-checkpoint" and verb == "load_weights":
        return restore_checkpoint(loader, checkpoint_prefix(path), fresh_model(framework), frameworks)
    if verb == "load_weights":
        model = fresh_model(framework)
        model.load_weights(str(path))
    elif verb == "load_model":
        keras_module = frameworks[framework]
        keras_module.backend.clear_session()
        if fmt == "saved-model" and not (path / "keras_metadata.pb").exists():
            return saved_model_signature(path, frameworks["tf"])
        refuse_code_in_config(path, fmt, framework, frameworks)
        model = keras_module.models.load_model(str(path), compile=False)
    elif verb == "set_weights":
        model = fresh_model(framework)
        model.set_weights(safetensors_in_model_order(path, model, framework))
    else:  # pragma: no cover - the loader tables hold only the verbs above
        raise ValueError(loader)
    return Predictor(lambda x: predict(model, x, framework, frameworks), loader, model)


def restore_checkpoint(loader: str, prefix: Path, model: Any, frameworks: dict[str, Any], holder: str | None = None) -> Predictor:
    """A TF checkpoint into `model`, the way it was written: `save_weights` layout or `tf.train.Checkpoint(NAME=model)`.

    Every float weight is set to NaN first and must hold a number afterwards: TensorFlow's own
    match assertions pass when only the optimizer matched, which left an untrained model as
    the "baseline" of a `tf.train.Checkpoint(model=..., optimizer=...)`.  `holder`: the root's
    child that holds the model ('' for the root itself); found from the object graph when None.
    """
    tf = frameworks["tf"]
    framework = loader.split(".")[0]
    holder = checkpoint_holder(prefix) if holder is None else holder
    for weight in model.weights:
        value = np.asarray(weight.numpy())
        if np.issubdtype(value.dtype, np.floating):
            weight.assign(np.full_like(value, np.nan))
    if holder:
        tf.train.Checkpoint(**{holder: model}).restore(str(prefix)).expect_partial()
        loader = f"tf.train.Checkpoint({holder}={framework} model).restore"
    else:
        model.load_weights(str(prefix)).expect_partial()
    missed = [w.name for w in model.weights if np.isnan(np.asarray(w.numpy(), dtype=np.float64)).any()]
    if missed:
        raise MappingError(
            f"{prefix}: {len(missed)} of the model's {len(model.weights)} weights (e.g. {missed[0]}) are not in the "
            f"checkpoint{f' under {holder!r}' if holder else ''}; expected a checkpoint of this model "
            "(pass the --model factory that built it)"
        )
    return Predictor(lambda x: predict(model, x, framework, frameworks), loader, model)


def checkpoint_holder(prefix: Path) -> str:
    """'' when the checkpoint's root is the model (`save_weights`), else the root's child that holds it.

    `tf.train.Checkpoint(model=m, optimizer=o)` puts the model one level down, under the keyword
    it was given; the holder is the one root child whose own children are Keras layers.
    """
    from inspector.formats.object_graph import parse_graph
    from inspector.formats.tf_bundle import OBJECT_GRAPH_KEY, BundleReader, key_bytes

    bundle = BundleReader(prefix)
    try:
        if key_bytes(OBJECT_GRAPH_KEY) not in bundle.entries:
            return ""  # a TF1 name-based checkpoint: load_weights matches by name
        graph = parse_graph(bundle.read_strings(OBJECT_GRAPH_KEY)[0], str(prefix))
    finally:
        bundle.close()
    nodes = graph.nodes

    def is_layer_name(name: str) -> bool:
        return name.startswith(("layer_with_weights-", "layer-"))

    if any(is_layer_name(child.local_name) for child in nodes[0].children):
        return ""
    holders = [c.local_name for c in nodes[0].children if any(is_layer_name(g.local_name) for g in nodes[c.node_id].children)]
    if len(holders) != 1:
        names = sorted(c.local_name for c in nodes[0].children)
        raise MappingError(
            f"{prefix}: cannot tell which object holds the Keras model (root objects: {', '.join(names)}); "
            "expected a save_weights checkpoint or a tf.train.Checkpoint with one Keras model in it"
        )
    return holders[0]


def saved_model_signature(path: Path, tf: Any) -> Predictor:
    """A SavedModel without Keras metadata (e.g. Keras 3's `model.export`), run through `serving_default`."""
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]

    def run(x: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(x), BATCH):
            result = signature(tf.constant(x[start : start + BATCH]))
            if len(result) != 1:
                raise CkitError(f"{path}: the serving signature returns {len(result)} outputs; expected 1")
            outputs.append(next(iter(result.values())).numpy())
        return np.concatenate(outputs)

    return Predictor(run, "tf.saved_model.load serving_default")


def predict(model: Any, x: np.ndarray, framework: str, frameworks: dict[str, Any]) -> np.ndarray:
    """The model's logits on `x`, in batches, in inference mode."""
    to_numpy = frameworks["keras"].ops.convert_to_numpy if framework == "keras" else np.asarray
    outputs = []
    for start in range(0, len(x), BATCH):
        out = model(x[start : start + BATCH], training=False)
        if isinstance(out, (list, tuple, dict)):
            raise CkitError("the model has several outputs; the validator compares models with one output of class scores")
        outputs.append(np.asarray(to_numpy(out)))
    return np.concatenate(outputs)


def detect_format(path: Path) -> str:
    """The format id of a user's artifact: ckit's registry, with safetensors recognised here."""
    if path.name.endswith(".safetensors"):
        return "safetensors"
    from inspector.registry import detect

    return detect(path).name


def checkpoint_prefix(path: Path) -> Path:
    """A TF checkpoint's prefix from the prefix, its `.index` file, or a directory (its `checkpoint` state file's latest)."""
    from inspector.formats.tf_bundle import resolve_prefix

    return resolve_prefix(path)


def safetensors_in_model_order(path: Path, model: Any, framework: str) -> list[np.ndarray]:
    """The arrays of a safetensors file in `model.weights` order: by name, else by the file's stated order."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata() or {}
    names = [_weight_name(w, framework) for w in model.weights]
    # Optimizer state travels under its own prefix; only model weights go into set_weights.
    model_keys = [key for key in tensors if not key.startswith("optimizer/")]
    order = _match_names(names, model_keys)
    if order is None:
        for key in ("ckit.order", "order", "weight_order"):
            if key in metadata:
                try:
                    stated = json.loads(metadata[key])
                except ValueError:
                    continue
                if isinstance(stated, list) and sorted(stated) == sorted(model_keys):
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


def refuse_code_in_config(path: Path, fmt: str, framework: str, frameworks: dict[str, Any]) -> None:
    """Check an artifact's model config before a framework rebuilds it from that config.

    tf_keras rebuilds a Lambda layer in a legacy `.h5` or SavedModel by unmarshalling its
    bytecode, with no safe mode to stop it; a user's artifact is hostile until read, so the
    same checks the converters apply run first.
    """
    from inspector import read_manifest

    from ..config_safety import check_config_is_safe, check_config_safe
    from ..model_config import model_config_of

    config = model_config_of(read_manifest(path, fmt))
    if config is None:
        return
    if config["schema"] == "keras3" or framework != "tf_keras":
        check_config_safe(config["config"])
    else:
        check_config_is_safe(config["config"], frameworks["tf_keras"])
