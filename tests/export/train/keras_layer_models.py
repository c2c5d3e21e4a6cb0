"""Keras models with layers beyond Dense for issue 28's step tests (export tests and browser tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SERIES = 40
RECURRENT_STEPS = 10


def cnn(path: Path) -> Path:
    """Conv1D → MaxPool → Conv1D (same) → GlobalAveragePooling → Dense: the issue's `all` example."""
    import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((SERIES, 1), name="series"),
            keras.layers.Conv1D(4, 5, activation="relu", name="c1"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Conv1D(6, 3, padding="same", activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3, name="out"),
        ]
    )
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    model.save(path)
    return path


def conv2d_batchnorm_classifier(path: Path) -> Path:
    """Conv2D → BatchNormalization → ReLU → MaxPool2D → DepthwiseConv2D → GlobalAveragePooling2D → Dense softmax."""
    import keras

    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2), name="image"),
            keras.layers.Conv2D(4, 3, padding="same", name="conv"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
            keras.layers.DepthwiseConv2D(3, padding="valid", name="depthwise"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax", name="label"),
        ]
    )
    rng = np.random.default_rng(2)
    norm = model.get_layer("norm")
    norm.moving_mean.assign(rng.normal(0, 0.1, 4).astype("float32"))
    norm.moving_variance.assign(rng.uniform(0.5, 1.5, 4).astype("float32"))
    norm.beta.assign(rng.normal(0, 0.1, 4).astype("float32"))
    for layer in ("conv", "depthwise", "label"):
        bias = model.get_layer(layer).bias
        bias.assign(rng.normal(0, 0.1, bias.shape).astype("float32"))
    model.save(path)
    return path


def batchnorm_cnn(path: Path) -> Path:
    """Conv2D → BatchNormalization → ReLU → MaxPool → Conv2D → BatchNormalization → GlobalAveragePooling2D → Dense softmax.

    The first conv has a bias and tf2onnx keeps its BatchNormalization as a Mul and an Add; the
    second has a zero bias (a fresh layer) and tf2onnx fuses its BatchNormalization into its
    weights: the two folds batch_norm.py undoes. Running statistics are not the fresh 0 and 1.
    """
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(4, 3, padding="same", name="conv1"),
            keras.layers.BatchNormalization(name="norm1"),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(8, 3, padding="same", name="conv2"),
            keras.layers.BatchNormalization(name="norm2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax", name="label"),
        ]
    )
    rng = np.random.default_rng(3)
    model.get_layer("conv1").bias.assign(rng.normal(0, 0.1, 4).astype("float32"))
    for name, channels in (("norm1", 4), ("norm2", 8)):
        norm = model.get_layer(name)
        norm.moving_mean.assign(rng.normal(0, 0.2, channels).astype("float32"))
        norm.moving_variance.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
        norm.gamma.assign(rng.uniform(0.8, 1.2, channels).astype("float32"))
        norm.beta.assign(rng.normal(0, 0.1, channels).astype("float32"))
    model.save(path)
    return path


def conv_recurrent_regressor(path: Path, layer: str = "gru", *, fresh_biases: bool = False) -> Path:
    """Conv1D → a recurrent layer → Dense. `gru`: Keras's default reset_after=True, which tf2onnx
    leaves a Loop; `bidirectional-lstm`: one bidirectional ONNX LSTM; `bidirectional-gru`: two Loops
    (a ReverseSequence before the backward one). Biases random unless `fresh_biases` (Keras's
    initial ones: a Bidirectional's two directions then hold equal biases)."""
    import keras

    keras.utils.set_random_seed(7)
    recurrent = {
        "gru": lambda: keras.layers.GRU(4, name="rnn"),
        "bidirectional-lstm": lambda: keras.layers.Bidirectional(keras.layers.LSTM(3), name="rnn"),
        "bidirectional-gru": lambda: keras.layers.Bidirectional(keras.layers.GRU(3), name="rnn"),
    }[layer]()
    model = keras.Sequential(
        [
            keras.Input((RECURRENT_STEPS, 1), name="series"),
            keras.layers.Conv1D(3, 3, activation="relu", name="conv"),
            recurrent,
            keras.layers.Dense(2, name="out"),
        ]
    )
    rng = np.random.default_rng(3)
    for variable in [] if fresh_biases else model.trainable_variables:
        if "bias" in variable.path:  # non-zero biases: each variable is told apart by its values, and moves visibly
            variable.assign(rng.normal(0, 0.1, variable.shape).astype("float32"))
    model.save(path)
    return path


def keras_trained(source: Path, optimizer, x: np.ndarray, y: np.ndarray, *, batch: int, steps: int, variables: list[str] | None = None):
    """Keras's own `optimizer` on the named variables (all when None), MSE, GradientTape, training=False:
    `steps` batches of `batch` rows in order; returns the model."""
    import keras
    import tensorflow as tf

    model = keras.models.load_model(source)
    chosen = [v for v in model.trainable_variables if variables is None or v.path in variables]
    assert variables is None or len(chosen) == len(variables)
    for step in range(steps):
        rows = slice(step * batch, (step + 1) * batch)
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(y[rows], model(x[rows], training=False))
        optimizer.apply_gradients(zip(tape.gradient(loss, chosen), chosen))
    return model
