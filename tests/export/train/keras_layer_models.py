"""Keras models with layers beyond Dense for issue 28's step tests (export tests and browser tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SERIES = 40


def cnn(path: Path) -> Path:
    """Conv1D → MaxPool → Conv1D (same) → GlobalAveragePooling → Dense: the issue's `all` example."""
    import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((SERIES, 1), name="series"),
        keras.layers.Conv1D(4, 5, activation="relu", name="c1"),
        keras.layers.MaxPooling1D(2),
        keras.layers.Conv1D(6, 3, padding="same", activation="relu", name="c2"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(3, name="out"),
    ])  # fmt: skip
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    model.save(path)
    return path
