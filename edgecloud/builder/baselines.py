"""Naive forecasts a learned model has to beat to be worth serving.

`last_value` holds the last sample flat; `repeat_previous_beat` estimates each window's beat
period by autocorrelation and replays the samples one period back. Both take windows shaped
[N, T] or [N, T, 1] and return [N, horizon].
"""

from __future__ import annotations

import numpy as np


def _flat(windows: np.ndarray) -> np.ndarray:
    windows = np.asarray(windows, dtype=np.float64)
    return windows[..., 0] if windows.ndim == 3 else windows


def last_value(windows: np.ndarray, horizon: int) -> np.ndarray:
    x = _flat(windows)
    return np.repeat(x[:, -1:], horizon, axis=1)


def beat_period(windows: np.ndarray, min_lag: int, max_lag: int) -> np.ndarray:
    """Per window, the lag in [min_lag, max_lag] with the highest autocorrelation (samples).

    The sum over the overlap is not divided by its length, so shorter lags win ties: a window
    holding two beats picks the beat period, not twice it.
    """
    x = _flat(windows)
    length = x.shape[1]
    if not 1 <= min_lag <= max_lag < length:
        raise ValueError(f"lags must satisfy 1 <= {min_lag} <= {max_lag} < window length {length}")
    centred = x - x.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * length)))
    spectrum = np.fft.rfft(centred, size, axis=1)
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=1)[:, : max_lag + 1]
    return min_lag + np.argmax(autocorrelation[:, min_lag:], axis=1)


def repeat_previous_beat(windows: np.ndarray, horizon: int, min_lag: int, max_lag: int) -> np.ndarray:
    """Forecast sample h as the one a beat period P earlier: x[T - P + (h mod P)]."""
    x = _flat(windows)
    length = x.shape[1]
    periods = beat_period(x, min_lag, max_lag)[:, np.newaxis]
    steps = np.arange(horizon)[np.newaxis, :]
    return np.take_along_axis(x, length - periods + steps % periods, axis=1)


def mean_absolute_error(forecast: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(forecast, np.float64) - np.asarray(target, np.float64))))
