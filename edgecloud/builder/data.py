"""The Prediction Builder's data: simulated ECG of several people → windows → next samples.

Signals come from neurokit2's `ecg_simulate` (the ECGSYN dynamical model, offline). Each
simulated person differs the way real people's ECGs do: their own heart rate, heart-rate
variability (and its LF/HF balance), beat morphology (ECGSYN's P, Q, R, S, T wave amplitudes,
timings and widths), overall amplitude (electrode placement, body build), baseline wander
(breathing) and noise level. So a model trained on the population keeps an error particular to
each person, which fine-tuning on that person's own recording can reduce (edge learning).
People are split between training and validation so the validation error measures how the model
does on someone it has never seen. Everything is deterministic for a given `DataSpec` (seed included).

ECGSYN's own knobs (`ti`, `ai`, `bi`, `lfhfratio`) are passed through `ecg_simulate`'s keyword
arguments; the overall gain and the baseline wander are applied here after it, since ECGSYN
rescales every signal to -0.4..1.2 mV.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

SLOWEST_HEART_RATE_BPM = 40
FASTEST_HEART_RATE_BPM = 200


@dataclass(frozen=True)
class DataSpec:
    """What to simulate and how to cut it; the defaults are the demo's settings."""

    sampling_rate: int = 100  # Hz
    window_seconds: float = 2.5  # the model sees this much signal ...
    horizon_seconds: float = 0.25  # ... and forecasts this much after it
    people: int = 8
    validation_people: int = 2
    seconds_per_person: int = 60
    stride: int = 5  # samples between the starts of two consecutive windows
    seed: int = 0
    morphology: float = 1.0  # how much people's beat shape, amplitude and wander differ (0: not at all)

    @property
    def window(self) -> int:
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def horizon(self) -> int:
        return int(round(self.horizon_seconds * self.sampling_rate))

    def beat_lags(self) -> tuple[int, int]:
        """Beat periods (samples) a window can show, from 200 bpm down to 40 bpm or the window's length."""
        shortest = max(1, round(60 / FASTEST_HEART_RATE_BPM * self.sampling_rate))
        longest = min(round(60 / SLOWEST_HEART_RATE_BPM * self.sampling_rate), self.window - 1)
        return shortest, longest

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        if self.sampling_rate < 20:
            raise ValueError(f"sampling rate {self.sampling_rate} Hz is too low for an ECG (use 20 Hz or more)")
        if self.horizon < 1:
            raise ValueError(f"the horizon of {self.horizon_seconds:g} s holds no sample at {self.sampling_rate} Hz")
        if self.window <= self.beat_lags()[0]:
            beat = f"one beat at {FASTEST_HEART_RATE_BPM} bpm"
            raise ValueError(f"the window of {self.window_seconds:g} s is shorter than {beat}")
        if not 1 <= self.validation_people < self.people:
            raise ValueError(f"validation people must be between 1 and {self.people - 1}, got {self.validation_people}")
        if not 0 <= self.morphology <= 2:
            raise ValueError(f"morphology must be between 0 and 2, got {self.morphology:g}")
        if self.stride < 1:
            raise ValueError(f"stride must be at least 1 sample, got {self.stride}")
        if self.seconds_per_person * self.sampling_rate < self.window + self.horizon:
            raise ValueError("each person's recording is shorter than one window plus the horizon")


# ECGSYN's defaults for the five waves P, Q, R, S, T (McSharry et al. 2003): angle on the limit
# cycle (degrees), amplitude, width.
WAVE_ANGLES = (-70.0, -15.0, 0.0, 15.0, 100.0)
WAVE_AMPLITUDES = (1.2, -5.0, 30.0, -7.5, 0.75)
WAVE_WIDTHS = (0.25, 0.1, 0.1, 0.1, 0.4)


@dataclass(frozen=True)
class Person:
    """One simulated person: the ECGSYN settings their signal is drawn with, and what is added after.

    The defaults of the shape fields give ECGSYN's textbook beat (a person of `morphology=0`).
    """

    id: int
    heart_rate: float  # beats per minute
    heart_rate_std: float  # beat-to-beat variability, bpm
    noise: float  # amplitude of neurokit2's added noise, mV
    seed: int
    lf_hf_ratio: float = 0.5  # balance of the slow (Mayer) and breathing rhythms in the beat intervals
    wave_scale: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # P, Q, R, S, T amplitude factors
    wave_shift: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)  # P, Q, R, S, T angle shifts, degrees
    wave_width: float = 1.0  # factor on every wave's width (QRS and T duration)
    gain: float = 1.0  # overall amplitude factor
    wander_mv: float = 0.0  # baseline wander amplitude, mV
    wander_hz: float = 0.25  # its frequency (breathing), Hz


@dataclass(frozen=True)
class Normalisation:
    """`z = (x - mean) / std`, from the training people only (validation must stay unseen)."""

    mean: float
    std: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)


@dataclass
class Dataset:
    """Windows `x` [N, window, 1] and targets `y` [N, horizon], in the signal's own units (mV)."""

    spec: DataSpec
    train_people: list[Person]
    validation_people: list[Person]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    normalisation: Normalisation

    def describe(self) -> dict[str, Any]:
        """What the report records about the data."""
        return {
            "generator": "neurokit2.ecg_simulate(method='ecgsyn')",
            "spec": {**asdict(self.spec), "window": self.spec.window, "horizon": self.spec.horizon},
            "train_people": [asdict(person) for person in self.train_people],
            "validation_people": [asdict(person) for person in self.validation_people],
            "train_windows": int(len(self.x_train)),
            "validation_windows": int(len(self.x_val)),
            "input_shape": [None, self.spec.window, 1],
            "output_shape": [None, self.spec.horizon],
            "normalisation": asdict(self.normalisation),
        }


def simulate_people(spec: DataSpec) -> list[Person]:
    """Draw each person: heart rate (55-100 bpm), variability (1-4 bpm), noise (0.01-0.08 mV), then
    (scaled by `spec.morphology`) LF/HF ratio, wave amplitudes and timings, widths, gain and wander.

    The first four draws come first and in the same order as before the shape was added, so a
    seed gives the same heart rates, variabilities, noise levels and ECGSYN seeds as it always did.
    """
    rng = np.random.default_rng(spec.seed)
    basics = [
        dict(
            id=index,
            heart_rate=round(float(rng.uniform(55, 100)), 1),
            heart_rate_std=round(float(rng.uniform(1, 4)), 2),
            noise=round(float(rng.uniform(0.01, 0.08)), 3),
            seed=int(rng.integers(0, 2**31 - 1)),
        )
        for index in range(spec.people)
    ]
    shape_rng = np.random.default_rng([spec.seed, 1])
    return [Person(**basic, **_shape(shape_rng, spec.morphology)) for basic in basics]


def _shape(rng: np.random.Generator, spread: float) -> dict[str, Any]:
    """One person's beat shape, amplitude and wander; `spread` 0 gives the textbook beat.

    Ranges (at spread 1) stay within what healthy adults' single leads show: P and T waves from
    flat to twice the textbook (T can be low or tall), Q and S from small to deep, QT timing
    ±10 degrees, widths ±25 %, amplitude 0.6-1.6x, breathing wander up to 0.15 mV at 0.15-0.4 Hz.
    """

    def spread_factor(low: float, high: float) -> float:  # a factor in [low, high] pulled to 1 as spread -> 0
        return round(float(np.exp(spread * rng.uniform(np.log(low), np.log(high)))), 3)

    amplitudes = (
        spread_factor(0.4, 2.0),
        spread_factor(0.3, 2.5),
        spread_factor(0.7, 1.3),
        spread_factor(0.3, 2.5),
        spread_factor(0.3, 2.2),
    )
    shifts = tuple(round(float(spread * rng.uniform(-limit, limit)), 2) for limit in (10, 3, 0, 3, 12))
    return dict(
        lf_hf_ratio=round(float(0.5 * np.exp(spread * rng.uniform(np.log(0.5), np.log(4.0)))), 3),
        wave_scale=amplitudes,
        wave_shift=shifts,
        wave_width=spread_factor(0.8, 1.25),
        gain=spread_factor(0.6, 1.6),
        wander_mv=round(float(spread * rng.uniform(0.0, 0.15)), 3),
        wander_hz=round(float(rng.uniform(0.15, 0.4)), 3),
    )


def ecg_signal(person: Person, spec: DataSpec) -> np.ndarray:
    """The person's ECG at spec.sampling_rate, float32, in mV."""
    import neurokit2

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        signal = neurokit2.ecg_simulate(
            duration=spec.seconds_per_person,  # whole seconds: neurokit2 0.2.12's `length` is unreliable
            sampling_rate=spec.sampling_rate,
            heart_rate=person.heart_rate,
            heart_rate_std=person.heart_rate_std,
            noise=person.noise,
            method="ecgsyn",
            random_state=person.seed,
            lfhfratio=person.lf_hf_ratio,
            ti=tuple(np.add(WAVE_ANGLES, person.wave_shift)),
            ai=tuple(np.multiply(WAVE_AMPLITUDES, person.wave_scale)),
            bi=tuple(np.multiply(WAVE_WIDTHS, person.wave_width)),
        )
    seconds = np.arange(len(signal)) / spec.sampling_rate
    phase = 2 * np.pi * ((person.seed % 1000) / 1000)
    wander = person.wander_mv * np.sin(2 * np.pi * person.wander_hz * seconds + phase)
    return (person.gain * np.asarray(signal) + wander).astype(np.float32)


def cut_windows(signal: np.ndarray, window: int, horizon: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Every `window` samples (one every `stride`) and the `horizon` samples right after them."""
    starts = np.arange(0, len(signal) - window - horizon + 1, stride)
    x = np.stack([signal[start : start + window] for start in starts])
    y = np.stack([signal[start + window : start + window + horizon] for start in starts])
    return x[..., np.newaxis].astype(np.float32), y.astype(np.float32)


def split_people(people: list[Person], validation_people: int, seed: int) -> tuple[list[Person], list[Person]]:
    """A seeded shuffle of whole people: nobody is in both sets."""
    order = np.random.default_rng(seed + 1).permutation(len(people))
    shuffled = [people[index] for index in order]
    return (
        sorted(shuffled[validation_people:], key=lambda p: p.id),
        sorted(shuffled[:validation_people], key=lambda p: p.id),
    )


def make_dataset(spec: DataSpec = DataSpec()) -> Dataset:
    """Simulate, split by person, cut into windows; the normalisation comes from training signals."""
    spec.check()
    train_people, validation_people = split_people(simulate_people(spec), spec.validation_people, spec.seed)
    signals = {person.id: ecg_signal(person, spec) for person in train_people + validation_people}

    def windows_of(group: list[Person]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [cut_windows(signals[person.id], spec.window, spec.horizon, spec.stride) for person in group]
        return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])

    x_train, y_train = windows_of(train_people)
    x_val, y_val = windows_of(validation_people)
    training_signal = np.concatenate([signals[person.id] for person in train_people])
    normalisation = Normalisation(mean=float(training_signal.mean()), std=float(training_signal.std()))
    return Dataset(spec, train_people, validation_people, x_train, y_train, x_val, y_val, normalisation)


@dataclass
class PersonalParts:
    """One person's recording cut for personalisation: fine-tune on the first part, judge on the later.

    Windows never straddle the cut, so no later sample is seen while training.
    """

    x_first: np.ndarray
    y_first: np.ndarray
    x_later: np.ndarray
    y_later: np.ndarray


def personal_parts(signal: np.ndarray, spec: DataSpec, first_seconds: float) -> PersonalParts:
    """The windows of `signal`'s first `first_seconds` and those of the rest, as `cut_windows` cuts them."""
    cut = int(round(first_seconds * spec.sampling_rate))
    need = spec.window + spec.horizon
    if cut < need or len(signal) - cut < need:
        raise ValueError(
            f"cutting {len(signal) / spec.sampling_rate:g} s at {first_seconds:g} s leaves a part "
            f"shorter than one window plus the horizon ({need / spec.sampling_rate:g} s)"
        )
    x_first, y_first = cut_windows(signal[:cut], spec.window, spec.horizon, spec.stride)
    x_later, y_later = cut_windows(signal[cut:], spec.window, spec.horizon, spec.stride)
    return PersonalParts(x_first, y_first, x_later, y_later)
