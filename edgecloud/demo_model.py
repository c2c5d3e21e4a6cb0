"""The walking skeleton's demo model: a small Dense forecaster trained in seconds on a generated signal.

The signal is a periodic, ECG-like pulse train (a sharp peak plus a wider wave per beat) with
noise; the model sees WINDOW samples and forecasts the next HORIZON. Deterministic with a seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

WINDOW = 64
HORIZON = 8


def pulse_signal(length: int, period: float = 50.0, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    phase = (t % period) / period
    peak = np.exp(-(((phase - 0.3) / 0.02) ** 2))
    wave = 0.3 * np.exp(-(((phase - 0.6) / 0.08) ** 2))
    return (peak + wave + noise * rng.standard_normal(length)).astype(np.float32)


def windows(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = len(signal) - WINDOW - HORIZON
    x = np.stack([signal[i : i + WINDOW] for i in range(count)])
    y = np.stack([signal[i + WINDOW : i + WINDOW + HORIZON] for i in range(count)])
    return x, y


def train_demo_model(out_dir: Path, epochs: int = 15, seed: int = 0) -> tuple[Path, Path]:
    """Write `forecaster.keras` and `sample.npy` into out_dir; returns both paths."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y = windows(pulse_signal(4000, seed=seed))
    inputs = keras.Input((WINDOW,), name="window")
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    outputs = keras.layers.Dense(HORIZON, name="forecast")(hidden)
    model = keras.Model(inputs, outputs, name="pulse_forecaster")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    model_path = out_dir / "forecaster.keras"
    sample_path = out_dir / "sample.npy"
    model.save(model_path)
    np.save(sample_path, x[:1])
    return model_path, sample_path
