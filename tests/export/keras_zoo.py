"""Small Keras models that stress the browser lowering, one builder per zoo entry.

Each builder returns `(model, sample)`; the browser zoo test saves the model as `.keras`,
exports it with `edgecloud export` and runs the edge file in Chromium. Other frameworks plug
their own builders into `tests/export/test_edge_zoo.py`'s `ZOO` the same way.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Builder = Callable[[], tuple[object, np.ndarray]]


def _sample(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, *shape)).astype("float32")


def dense_mlp():
    import keras

    inputs = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="y")(hidden)), _sample((8,))


def conv1d_forecaster():
    import keras

    inputs = keras.Input((32, 1), name="window")
    x = keras.layers.Conv1D(4, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.AveragePooling1D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="forecast")(x)), _sample((32, 1))


def lstm():
    import keras

    inputs = keras.Input((6, 3), name="seq")
    x = keras.layers.LSTM(5)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(x)), _sample((6, 3))


def gru():
    import keras

    inputs = keras.Input((6, 3), name="seq")
    x = keras.layers.GRU(5)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(x)), _sample((6, 3))


def simple_rnn():
    import keras

    inputs = keras.Input((6, 3), name="seq")
    x = keras.layers.SimpleRNN(5, return_sequences=True)(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(x)), _sample((6, 3))


def batchnorm_dropout():
    import keras

    inputs = keras.Input((8,), name="x")
    x = keras.layers.Dense(16)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("tanh")(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(x)), _sample((8,))


def conv2d_cnn():
    import keras

    inputs = keras.Input((12, 12, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x)), _sample((12, 12, 1))


def residual():
    import keras

    inputs = keras.Input((8,), name="x")
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.Add()([inputs, x])
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(x)), _sample((8,))


def softmax_non_last_axis():
    import keras

    inputs = keras.Input((5, 4), name="x")
    x = keras.layers.Dense(4)(inputs)
    x = keras.layers.Softmax(axis=1)(x)
    return keras.Model(inputs, keras.layers.Flatten(name="probs")(x)), _sample((5, 4))


KERAS_ZOO: dict[str, Builder] = {
    "keras_dense_mlp": dense_mlp,
    "keras_conv1d_forecaster": conv1d_forecaster,
    "keras_lstm": lstm,
    "keras_gru": gru,
    "keras_simple_rnn": simple_rnn,
    "keras_batchnorm_dropout": batchnorm_dropout,
    "keras_conv2d_cnn": conv2d_cnn,
    "keras_residual_add": residual,
    "keras_softmax_non_last_axis": softmax_non_last_axis,
}
