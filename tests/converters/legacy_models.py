"""The architectures of the legacy-layout fixtures (fixtures/legacy), for any Keras module.

Shared by fixtures/make_fixtures.py, which writes the artifacts, and the tests, which rebuild the
models to load ckit's conversions with the frameworks' own loaders.  Each factory takes the Keras
module (tf_keras or keras), the calling rule of `--model`.
"""

from __future__ import annotations

from typing import Any

TIMESTEPS, FEATURES = 6, 5


def time_distributed_model(k: Any) -> Any:
    inp = k.Input((TIMESTEPS, FEATURES))
    x = k.layers.TimeDistributed(k.layers.Dense(4), name="frames")(inp)
    x = k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True), name="bi")(x)
    x = k.layers.TimeDistributed(k.layers.Dense(2), name="per_step")(x)
    return k.Model(inp, x, name="time_distributed")


def cudnn_model(k: Any, cudnn_lstm: Any, cudnn_gru: Any) -> Any:
    inp = k.Input((TIMESTEPS, FEATURES))
    x = cudnn_lstm(4, return_sequences=True, name="encoder")(inp)
    x = cudnn_gru(3, name="decoder")(x)
    return k.Model(inp, x, name="cudnn")


def standard_rnn_model(k: Any) -> Any:
    """`cudnn_model` with the standard layers that run anywhere (GRU with reset_after=True, as CuDNNGRU)."""
    inp = k.Input((TIMESTEPS, FEATURES))
    x = k.layers.LSTM(4, return_sequences=True, name="encoder")(inp)
    x = k.layers.GRU(3, reset_after=True, name="decoder")(x)
    return k.Model(inp, x, name="cudnn")


def cudnn_tf_keras(k: Any) -> Any:
    """`cudnn_model` built with tf_keras's CuDNN layers (build and save on CPU; they run only on a GPU)."""
    from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU
    from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM

    return cudnn_model(k, CuDNNLSTM, CuDNNGRU)


def transformer_model(k: Any) -> Any:
    inp = k.Input((TIMESTEPS, FEATURES))
    attended = k.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="attention")(inp, inp)
    x = k.layers.LayerNormalization(name="norm")(k.layers.Add()([inp, attended]))
    x = k.layers.EinsumDense("btf,fo->bto", output_shape=(None, 4), bias_axes="o", name="project")(x)
    return k.Model(inp, x, name="transformer")


def keras1_rnn_model(k: Any) -> Any:
    """fixtures/keras1/rnn in today's Keras: Keras 1's LSTM/GRU gates used hard_sigmoid, and its GRU
    applied the reset gate before the recurrent kernel (reset_after=False)."""
    tokens = k.Input((7,), dtype="int32")
    x = k.layers.Embedding(20, 4, name="embedding")(tokens)
    x = k.layers.LSTM(5, return_sequences=True, recurrent_activation="hard_sigmoid", name="lstm")(x)
    x = k.layers.GRU(3, recurrent_activation="hard_sigmoid", reset_after=False, name="gru")(x)
    x = k.layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
    return k.Model(tokens, k.layers.Dense(2, name="dense")(x))
