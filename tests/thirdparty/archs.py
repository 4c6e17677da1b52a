"""The training models of the weights-only third-party artifacts, rebuilt from their packages' own code.

A weights-only file holds no architecture; to reload it (and anything converted from it) the test
needs the model the package builds. Each factory below transcribes the package's code, cited at
the function, and names every layer as the file does (the 2017-2019 Keras versions numbered
layers per process: `conv1d_1`, not `conv1d`), so that name-based loading means the same thing
in the test as it did for the package. Nothing here is read from an artifact and nothing from an
artifact is executed: custom layers are re-declared from the package's source.

Every factory takes the Keras module to build with (`tf_keras` or Keras 3 `keras`), like a
`ckconvert --model tests.thirdparty.archs:NAME` factory, and returns an uncompiled model.
`inputs(name, rng)` gives the fixed deterministic inputs the predictions are compared on.

Two Keras 2 defaults changed meaning in Keras 3 and are pinned here so that both frameworks compute
the function the file was trained for: `hard_sigmoid` was clip(0.2x + 0.5, 0, 1) in Keras 2 (and
tf_keras), Keras 3's is relu6(x + 3) / 6; and Keras 2.0-2.2 RNNs defaulted to
`recurrent_activation="hard_sigmoid"`, GRUs to `reset_after=False`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

# Layer kinds that only the Keras 3 build needs registered; one class per Keras module.
_PACKAGE = "ckit_thirdparty"


def _is_keras3(keras: Any) -> bool:
    return not keras.__name__.startswith("tf_keras")


@functools.lru_cache(maxsize=None)
def _keras2_hard_sigmoid(keras: Any) -> Any:
    """Keras 2's hard_sigmoid: 'hard_sigmoid' itself in tf_keras, a registered function in Keras 3."""
    if not _is_keras3(keras):
        return "hard_sigmoid"

    @keras.saving.register_keras_serializable(package=_PACKAGE, name="keras2_hard_sigmoid")
    def keras2_hard_sigmoid(x):
        return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)

    return keras2_hard_sigmoid


@functools.lru_cache(maxsize=None)
def attention_weighted_average(keras: Any) -> type:
    """textgenrnn 2.0.0, textgenrnn/AttentionWeightedAverage.py (MIT, Max Woolf), inference path."""
    if _is_keras3(keras):
        ops = keras.ops
        register = keras.saving.register_keras_serializable(package=_PACKAGE, name="AttentionWeightedAverage")
    else:
        import tensorflow as tf

        ops = None
        register = keras.utils.register_keras_serializable(package=_PACKAGE, name="AttentionWeightedAverage")

    class AttentionWeightedAverage(keras.layers.Layer):
        def __init__(self, return_attention=False, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True
            self.return_attention = return_attention

        def build(self, input_shape):
            self.W = self.add_weight(shape=(input_shape[2], 1), name=f"{self.name}_W",
                                     initializer="uniform", trainable=True)
            super().build(input_shape)

        def call(self, x, mask=None):
            if ops is not None:
                logits = ops.squeeze(ops.matmul(x, self.W), -1)
                ai = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
                att = ai / (ops.sum(ai, axis=1, keepdims=True) + keras.config.epsilon())
                return ops.sum(x * ops.expand_dims(att, -1), axis=1)
            logits = tf.squeeze(tf.matmul(x, self.W), -1)
            ai = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))
            att = ai / (tf.reduce_sum(ai, axis=1, keepdims=True) + keras.backend.epsilon())
            return tf.reduce_sum(x * tf.expand_dims(att, -1), axis=1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[2])

        def compute_mask(self, inputs, mask=None):
            return None

        def get_config(self):
            return {**super().get_config(), "return_attention": self.return_attention}

    return register(AttentionWeightedAverage)


@functools.lru_cache(maxsize=None)
def reversed_lstm(keras: Any) -> type:
    """rnnmorph 0.4.1, rnnmorph/model.py class ReversedLSTM (Apache-2.0, Ilya Gusev)."""
    if _is_keras3(keras):
        register = keras.saving.register_keras_serializable(package=_PACKAGE, name="ReversedLSTM")

        def flip(y):
            return keras.ops.flip(y, axis=1)
    else:
        import tensorflow as tf

        register = keras.utils.register_keras_serializable(package=_PACKAGE, name="ReversedLSTM")

        def flip(y):
            return tf.reverse(y, [1])

    class ReversedLSTM(keras.layers.LSTM):
        def __init__(self, units, **kwargs):
            kwargs["go_backwards"] = True
            super().__init__(units, **kwargs)

    if _is_keras3(keras):
        # Keras 3 matches build() arguments to call()'s by name: keep LSTM's own `sequences`.
        def call(self, sequences, initial_state=None, mask=None, training=False):
            return flip(keras.layers.LSTM.call(self, sequences, initial_state=initial_state, mask=mask,
                                               training=training))
    else:
        def call(self, inputs, mask=None, training=None, initial_state=None):
            return flip(keras.layers.LSTM.call(self, inputs, mask=mask, training=training,
                                               initial_state=initial_state))
    ReversedLSTM.call = call
    return register(ReversedLSTM)


def custom_objects(keras: Any) -> dict[str, Any]:
    """The re-declared custom classes, for the frameworks' loaders."""
    objects = {
        "AttentionWeightedAverage": attention_weighted_average(keras),
        "ReversedLSTM": reversed_lstm(keras),
    }
    if _is_keras3(keras):
        objects["keras2_hard_sigmoid"] = _keras2_hard_sigmoid(keras)
    return objects


def deepcut(keras: Any) -> Any:
    """deepcut 0.7.0.0, deepcut/model.py get_convo_nn2(no_word=200, n_gram=21, no_char=178) (MIT)."""
    L = keras.layers
    n_gram, no_word = 21, 200
    input1 = L.Input(shape=(n_gram,), name="input_1")
    input2 = L.Input(shape=(n_gram,), name="input_2")
    a = L.Embedding(178, 32, name="embedding_1")(input1)
    a = L.SpatialDropout1D(0.15, name="spatial_dropout1d_1")(a)
    a = L.BatchNormalization(name="batch_normalization_1")(a)
    units = [no_word] * 8 + [no_word - 50] * 3 + [no_word - 100]
    a_concat = []
    for window, filters in enumerate(units, start=1):  # conv_unit(a, n_gram, filters, window)
        out = L.Conv1D(filters, window, strides=1, padding="valid", activation="relu", name=f"conv1d_{window}")(a)
        out = L.TimeDistributed(L.Dense(5, name=f"dense_{window}"), name=f"time_distributed_{window}")(out)
        out = L.ZeroPadding1D(padding=(0, window - 1), name=f"zero_padding1d_{window}")(out)
        a_concat.append(out)
    a_sum = L.Maximum(name="maximum_1")(a_concat)
    b = L.Embedding(12, 12, name="embedding_2")(input2)
    b = L.SpatialDropout1D(0.15, name="spatial_dropout1d_2")(b)
    x = L.Concatenate(axis=-1, name="concatenate_1")([a, a_sum, b])
    x = L.BatchNormalization(name="batch_normalization_2")(x)
    x = L.Flatten(name="flatten_1")(x)
    x = L.Dense(100, activation="relu", name="dense_13")(x)
    out = L.Dense(1, activation="sigmoid", name="dense_14")(x)
    return keras.Model(inputs=[input1, input2], outputs=out)


def textgenrnn(keras: Any) -> Any:
    """textgenrnn 2.0.0, textgenrnn/model.py textgenrnn_model() with the default config of
    textgenrnn/textgenrnn.py (max_length 40, dim_embeddings 100, rnn_layers 2, rnn_size 128, not
    bidirectional) and the 465-token vocabulary of textgenrnn_vocab.json (+1). On CPU the package
    builds LSTM(recurrent_activation="sigmoid"), which is what the CuDNNLSTM weights compute."""
    L = keras.layers
    inp = L.Input(shape=(40,), name="input")
    embedded = L.Embedding(465, 100, name="embedding")(inp)
    rnn_1 = L.LSTM(128, return_sequences=True, recurrent_activation="sigmoid", name="rnn_1")(embedded)
    rnn_2 = L.LSTM(128, return_sequences=True, recurrent_activation="sigmoid", name="rnn_2")(rnn_1)
    seq_concat = L.Concatenate(name="rnn_concat")([embedded, rnn_1, rnn_2])
    attention = attention_weighted_average(keras)(name="attention")(seq_concat)
    output = L.Dense(465, activation="softmax", name="output")(attention)
    return keras.Model(inputs=[inp], outputs=[output])


def textgenrnn_cudnn(tf_keras: Any) -> Any:
    """`textgenrnn` as the package builds it on a GPU, which wrote the file: CuDNNLSTM(128,
    return_sequences=True), weights in the CuDNN layout under the layer itself (tf_keras only; it
    builds and saves on CPU, runs only on a GPU)."""
    from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM

    L = tf_keras.layers
    inp = L.Input(shape=(40,), name="input")
    embedded = L.Embedding(465, 100, name="embedding")(inp)
    rnn_1 = CuDNNLSTM(128, return_sequences=True, name="rnn_1")(embedded)
    rnn_2 = CuDNNLSTM(128, return_sequences=True, name="rnn_2")(rnn_1)
    seq_concat = L.Concatenate(name="rnn_concat")([embedded, rnn_1, rnn_2])
    attention = attention_weighted_average(tf_keras)(name="attention")(seq_concat)
    output = L.Dense(465, activation="softmax", name="output")(attention)
    return tf_keras.Model(inputs=[inp], outputs=[output])


def reactionrnn(keras: Any) -> Any:
    """reactionrnn 0.1, reactionrnn/reactionrnn.py reactionrnn_model(maxlen=140) with the 400-token
    vocabulary (+1). Keras 2.0 GRU defaults (hard_sigmoid, no reset_after). The output layer's
    activation there is a Python lambda (relu(x) / sum(relu(x))): parameter-free, not serialisable,
    so the test model stops at the output layer's linear part and compares that."""
    L = keras.layers
    inp = L.Input(shape=(140,), name="input")
    embedded = L.Embedding(401, 100, name="embedding")(inp)
    rnn = L.GRU(256, return_sequences=False, reset_after=False,
                recurrent_activation=_keras2_hard_sigmoid(keras), name="rnn")(embedded)
    output = L.Dense(5, name="output")(rnn)
    return keras.Model(inputs=[inp], outputs=[output])


def chars2vec(keras: Any) -> Any:
    """chars2vec 0.1.7, chars2vec/model.py Chars2Vec.__init__: `embedding_model` (the part saved as
    weights.h5) for eng_50: emb_dim 50, a 59-character vocabulary; Keras 2.2 LSTM defaults."""
    L = keras.layers
    inp = L.Input(shape=(None, 59), name="input_1")
    x = L.LSTM(50, return_sequences=True, recurrent_activation=_keras2_hard_sigmoid(keras), name="lstm_1")(inp)
    x = L.LSTM(50, recurrent_activation=_keras2_hard_sigmoid(keras), name="lstm_2")(x)
    return keras.Model(inputs=[inp], outputs=x)


def humanactivity(keras: Any) -> Any:
    """humanactivity 0.2.1, har_model_json (the package's own model.to_json(), Keras 2.0.6)."""
    L = keras.layers
    return keras.Sequential([
        L.Input(shape=(90, 3)),
        L.Conv1D(60, 60, strides=1, padding="valid", activation="relu", name="conv1d_1"),
        L.MaxPooling1D(pool_size=20, strides=2, padding="valid", name="max_pooling1d_1"),
        L.Conv1D(6, 6, strides=1, padding="valid", activation="relu", name="conv1d_2"),
        L.Flatten(name="flatten_1"),
        L.Dense(10000, activation="relu", name="dense_1"),
        L.Dense(6, activation="sigmoid", name="dense_2"),
    ])


def rnnmorph(keras: Any) -> Any:
    """rnnmorph 0.4.1, models/en/eval_model.json (the package's own config of the model built by
    rnnmorph/model.py LSTMMorphoAnalysis.build), inference path (dropouts are identity)."""
    L = keras.layers
    hard_sigmoid = _keras2_hard_sigmoid(keras)
    chars = L.Input(shape=(None, 32), name="chars")
    x = L.TimeDistributed(L.Embedding(153, 20, name="chars_embeddings"), name="time_distributed_1")(chars)
    x = L.Reshape((-1, 640), name="reshape_2")(x)
    x = L.Dropout(0.2, name="dropout_5")(x)
    x = L.Dense(200, activation="relu", name="dense_2")(x)
    grammemes = L.Input(shape=(None, 13), name="grammemes")
    x = L.Dropout(0.2, name="dropout_6")(x)
    g = L.Dropout(0.2, name="dropout_1")(grammemes)
    x = L.Dense(100, activation="linear", name="dense_3")(x)
    g = L.Dense(10, activation="relu", name="dense_1")(g)
    x = L.Dropout(0.2, name="dropout_7")(x)
    x = L.Concatenate(name="LSTM_input")([g, x])
    x = L.Dense(200, activation="relu", name="dense_5")(x)
    forward = L.LSTM(128, return_sequences=True, recurrent_activation=hard_sigmoid, name="LSTM_1_forward")(x)
    backward = reversed_lstm(keras)(128, return_sequences=True, recurrent_activation=hard_sigmoid,
                                    name="LSTM_1_backward")(x)
    x = L.Concatenate(name="BiLSTM_input")([forward, backward])
    x = L.Bidirectional(L.LSTM(128, return_sequences=True, recurrent_activation=hard_sigmoid, name="LSTM_0"),
                        merge_mode="concat", name="bidirectional_1")(x)
    x = L.TimeDistributed(L.Dense(128, name="dense_6"), name="time_distributed_2")(x)
    x = L.TimeDistributed(L.Dropout(0.2, name="dropout_8"), name="time_distributed_3")(x)
    x = L.TimeDistributed(L.BatchNormalization(name="batch_normalization_1"), name="time_distributed_4")(x)
    x = L.TimeDistributed(L.Activation("relu", name="activation_1"), name="time_distributed_5")(x)
    out = L.Dense(187, activation="softmax", name="main_pred")(x)
    return keras.Model(inputs=[grammemes, chars], outputs=[out])


# The models that wrote files whose layers only run on a GPU, for checking flat outputs by name.
CUDNN_FACTORIES = {"textgenrnn": textgenrnn_cudnn}

FACTORIES = {
    "deepcut": deepcut,
    "textgenrnn": textgenrnn,
    "reactionrnn": reactionrnn,
    "chars2vec": chars2vec,
    "humanactivity": humanactivity,
    "rnnmorph": rnnmorph,
}


# Custom layers of full models whose Keras 3 build runs the SavedModel's own traced graph for them.
REVIVED_KERAS3 = ("basic_pitch",)
# TFOpLambda ops a revived config may call (tf_keras wrote `tf.expand_dims(x, axis=-1)` this way).
_TF_OPS = frozenset({"expand_dims"})


def revived_keras3(keras: Any, saved_model_dir: str) -> Any:
    """A Keras 3 model of a TF 2.0-2.4 tf.keras SavedModel with custom layers, for judging Keras 3 weights.

    Keras 3 has no loader for such a SavedModel, and the package's layers (basic-pitch's CQT2010v2,
    HarmonicStacking, ...) exist only for tf.keras. The config is the one the SavedModel records in its
    object-graph metadata (read with TensorFlow's own protos); Keras 3's legacy loader rebuilds it,
    Keras's own layers as Keras 3 layers with fresh variables, each custom layer as a weightless
    stand-in of the same class name whose call is that layer's traced function from the SavedModel
    (`layer-N.__call__`, the graph tf_keras's `load_model` runs too; no Python code from the artifact).
    A stand-in refuses a layer that holds variables: their Keras 3 order would be a guess."""
    import json as _json

    import tensorflow as tf
    from keras.src.legacy.saving import saving_utils
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(f"{saved_model_dir}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    metadata = _json.loads(proto.meta_graphs[0].object_graph_def.nodes[0].user_object.metadata)
    config = _untuple({"class_name": metadata["class_name"], "config": metadata["config"]})
    loaded = tf.saved_model.load(saved_model_dir)
    layers = config["config"]["layers"]
    calls = {}
    for i, layer in enumerate(layers):  # tf.keras tracks model.layers[i] as `layer-i`
        revived = getattr(loaded, f"layer-{i}")
        if layer["class_name"] == "TFOpLambda":
            if isinstance(layer["inbound_nodes"][0][0], str):  # TF <= 2.4 wrote one level less
                layer["inbound_nodes"] = [layer["inbound_nodes"]]
        elif hasattr(revived, "__call__") and not hasattr(keras.layers, layer["class_name"]):
            if list(revived.variables):
                raise ValueError(f"custom layer {layer['config']['name']!r} holds variables")
            calls[layer["config"]["name"]] = revived.__call__

    class Revived(keras.layers.Layer):
        def __init__(self, name=None, trainable=True, dtype=None, **_config):
            super().__init__(name=name, trainable=trainable, dtype=dtype)
            self._traced = calls[name]

        def call(self, x):
            return self._traced(x)

    class TFOpLambda(keras.layers.Layer):
        def __init__(self, name=None, trainable=True, dtype=None, function=None, **_config):
            super().__init__(name=name, trainable=trainable, dtype=dtype)
            if function not in _TF_OPS:
                raise ValueError(f"TFOpLambda {name!r} calls tf.{function}, not one of {sorted(_TF_OPS)}")
            self.function = function

        def call(self, x, axis):
            return getattr(tf, self.function)(x, axis=axis)

    customs = {"TFOpLambda": TFOpLambda}
    for layer in layers:
        if layer["config"]["name"] in calls:
            customs[layer["class_name"]] = type(layer["class_name"], (Revived,), {})
    return saving_utils.model_from_config(config, custom_objects=customs)


def _untuple(node: Any) -> Any:
    """tf.keras's JSON tuple markers ({"class_name": "__tuple__", "items": [...]}) as lists."""
    if isinstance(node, list):
        return [_untuple(item) for item in node]
    if isinstance(node, dict):
        if node.get("class_name") == "__tuple__":
            return [_untuple(item) for item in node["items"]]
        return {key: _untuple(value) for key, value in node.items()}
    return node


def inputs(name: str) -> list[np.ndarray]:
    """Fixed inputs for artifact `name` (seeded; token ids inside each vocabulary)."""
    rng = np.random.default_rng(20240607)
    if name == "fer":
        return [rng.random((3, 64, 64, 1), dtype=np.float32) * 2 - 1]
    if name == "deepcut":
        return [rng.integers(0, 178, (3, 21)).astype(np.float32), rng.integers(0, 12, (3, 21)).astype(np.float32)]
    if name == "textgenrnn":
        return [rng.integers(0, 465, (3, 40)).astype(np.float32)]
    if name == "reactionrnn":
        return [rng.integers(0, 401, (3, 140)).astype(np.float32)]
    if name == "chars2vec":
        return [rng.random((3, 9, 59), dtype=np.float32)]
    if name == "humanactivity":
        return [rng.standard_normal((3, 90, 3)).astype(np.float32)]
    if name == "ethnicolr":
        return [rng.integers(0, 956, (3, 20)).astype(np.float32)]
    if name == "inaspeechsegmenter":
        return [rng.standard_normal((3, 68, 21)).astype(np.float32)]
    if name == "rnnmorph":
        return [rng.random((3, 7, 13), dtype=np.float32), rng.integers(0, 153, (3, 7, 32)).astype(np.float32)]
    if name == "basic_pitch":
        return [(rng.standard_normal((1, 43844, 1)) * 0.1).astype(np.float32)]
    raise KeyError(name)
