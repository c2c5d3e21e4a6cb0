"""The Prediction Builder's parts, each on a case small enough to reason about.

Data: deterministic, cut correctly, split by person. Baselines: exact on signals where the right
answer is known. Templates: found by name, entry point or module path, and checked before any
search. Bad options: one line, exit 2, before anything slow runs.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgecloud.builder import baselines
from edgecloud.builder.data import DataSpec, cut_windows, ecg_signal, make_dataset, simulate_people
from edgecloud.cli import main as cli

SMALL = DataSpec(people=4, validation_people=1, seconds_per_person=10, stride=20, seed=3)


@pytest.fixture(scope="module")
def small_dataset():
    return make_dataset(SMALL)


# --- data ---------------------------------------------------------------------------------


@pytest.mark.keras
def test_same_seed_same_arrays_other_seed_other_arrays(small_dataset):
    again = make_dataset(SMALL)
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert np.array_equal(getattr(small_dataset, name), getattr(again, name)), name
    assert small_dataset.normalisation == again.normalisation
    other = make_dataset(DataSpec(**{**SMALL.__dict__, "seed": 4}))
    assert not np.array_equal(small_dataset.x_train, other.x_train)


@pytest.mark.keras
def test_split_is_by_person_and_windows_come_from_their_people(small_dataset):
    train = {person.id for person in small_dataset.train_people}
    validation = {person.id for person in small_dataset.validation_people}
    assert train.isdisjoint(validation)
    assert train | validation == set(range(SMALL.people)) and len(validation) == SMALL.validation_people
    # Each validation window is a slice of a validation person's signal and of no training person's.
    (held_out,) = small_dataset.validation_people
    signal = ecg_signal(held_out, SMALL)
    assert np.array_equal(small_dataset.x_val[0, :, 0], signal[: SMALL.window])
    assert np.array_equal(small_dataset.y_val[0], signal[SMALL.window : SMALL.window + SMALL.horizon])
    first_train = ecg_signal(small_dataset.train_people[0], SMALL)
    assert np.array_equal(small_dataset.x_train[0, :, 0], first_train[: SMALL.window])
    assert not np.array_equal(first_train[: SMALL.window], signal[: SMALL.window])


@pytest.mark.keras
def test_people_differ_and_shapes_follow_the_spec(small_dataset):
    people = small_dataset.train_people + small_dataset.validation_people
    assert len({person.heart_rate for person in people}) == len(people)
    assert all(55 <= person.heart_rate <= 100 and 0.01 <= person.noise <= 0.08 for person in people)
    assert small_dataset.x_train.shape[1:] == (SMALL.window, 1) and small_dataset.x_train.dtype == np.float32
    assert small_dataset.y_train.shape[1:] == (SMALL.horizon,)
    per_person = (SMALL.seconds_per_person * SMALL.sampling_rate - SMALL.window - SMALL.horizon) // SMALL.stride + 1
    assert len(small_dataset.x_val) == per_person and len(small_dataset.x_train) == 3 * per_person
    z = small_dataset.normalisation.apply(small_dataset.x_train)
    assert abs(float(z.mean())) < 0.2 and 0.7 < float(z.std()) < 1.3


def test_people_differ_in_beat_shape_unless_morphology_is_zero():
    people = simulate_people(SMALL)
    assert len({person.wave_scale for person in people}) == len(people)
    assert len({person.gain for person in people}) == len(people) and all(0.6 <= p.gain <= 1.6 for p in people)
    flat = simulate_people(DataSpec(**{**SMALL.__dict__, "morphology": 0.0}))
    assert {(p.wave_scale, p.wave_shift, p.gain, p.wander_mv) for p in flat} == {((1.0,) * 5, (0.0,) * 5, 1.0, 0.0)}
    # The shape is drawn after the rest: rates, variability, noise and ECGSYN seeds do not move with it.
    basics = lambda group: [(p.heart_rate, p.heart_rate_std, p.noise, p.seed) for p in group]  # noqa: E731
    assert basics(flat) == basics(people)
    with pytest.raises(ValueError, match="morphology"):
        DataSpec(morphology=3.0).check()


def test_cut_windows_pairs_each_window_with_the_samples_after_it():
    x, y = cut_windows(np.arange(20, dtype=np.float32), window=5, horizon=2, stride=3)
    assert x[:, :, 0].tolist()[:2] == [[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]]
    assert y.tolist()[:2] == [[5, 6], [8, 9]]
    assert x[-1, -1, 0] + 2 <= 19 and len(x) == 5


# --- baselines ----------------------------------------------------------------------------


def periodic(period: int, length: int) -> np.ndarray:
    """A beat-like pattern: one sharp peak and a wider wave per period, no noise."""
    phase = (np.arange(length) % period) / period
    return np.exp(-(((phase - 0.3) / 0.03) ** 2)) + 0.3 * np.exp(-(((phase - 0.6) / 0.1) ** 2))


@pytest.mark.parametrize("period, horizon", [(40, 25), (37, 10), (31, 70)])
def test_repeat_previous_beat_is_exact_on_a_periodic_signal(period, horizon):
    x, y = cut_windows(periodic(period, 600).astype(np.float32), window=200, horizon=horizon, stride=7)
    assert set(baselines.beat_period(x, 20, 150).tolist()) == {period}
    forecast = baselines.repeat_previous_beat(x, horizon, 20, 150)
    assert forecast.shape == y.shape
    assert baselines.mean_absolute_error(forecast, y) < 1e-6
    assert baselines.mean_absolute_error(baselines.last_value(x, horizon), y) > 0.05


def test_last_value_holds_the_last_sample_and_mae_is_the_mean_of_absolute_errors():
    windows = np.array([[1.0, 2.0, 3.0], [5.0, 4.0, -1.0]])
    assert baselines.last_value(windows, 2).tolist() == [[3.0, 3.0], [-1.0, -1.0]]
    assert baselines.mean_absolute_error([[1.0, 2.0]], [[2.0, 0.0]]) == pytest.approx(1.5)


def test_beat_period_refuses_impossible_lags():
    with pytest.raises(ValueError, match="lags"):
        baselines.beat_period(np.zeros((1, 50)), 10, 60)


# --- templates ----------------------------------------------------------------------------

USER_TEMPLATES = textwrap.dedent(
    """
    import keras

    def gru(hp, *, window, horizon):
        inputs = keras.Input((window, 1))
        hidden = keras.layers.Conv1D(hp.Choice("filters", [4, 8]), 3, padding="same")(inputs)
        hidden = keras.layers.GRU(hp.Int("units", 4, 8, step=4))(hidden)
        model = keras.Model(inputs, keras.layers.Dense(horizon)(hidden))
        model.compile(optimizer="adam", loss="mse")
        return model

    def wrong_output(hp, *, window, horizon):
        inputs = keras.Input((window, 1))
        model = keras.Model(inputs, keras.layers.Dense(horizon + 1)(keras.layers.Flatten()(inputs)))
        model.compile(optimizer="adam", loss="mse")
        return model

    def not_compiled(hp, *, window, horizon):
        inputs = keras.Input((window, 1))
        return keras.Model(inputs, keras.layers.Dense(horizon)(keras.layers.Flatten()(inputs)))

    def broken(hp, *, window, horizon):
        raise ZeroDivisionError("oops")

    def fails_to_train(hp, *, window, horizon):
        def loss(y_true, y_pred):
            raise ArithmeticError("loss exploded")

        inputs = keras.Input((window, 1))
        hidden = keras.layers.Dense(hp.Choice("units", [2, 3]))(keras.layers.Flatten()(inputs))
        model = keras.Model(inputs, keras.layers.Dense(horizon)(hidden))
        model.compile(optimizer="adam", loss=loss)
        return model
    """
)


@pytest.fixture
def user_templates(tmp_path: Path, monkeypatch) -> str:
    """A module of user templates and an installed-looking distribution advertising one of them."""
    (tmp_path / "user_ecg_templates.py").write_text(USER_TEMPLATES)
    dist_info = tmp_path / "user_ecg_templates-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: user-ecg-templates\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[edgecloud.templates]\nuser-gru = user_ecg_templates:gru\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_ecg_templates"


@pytest.mark.keras
def test_template_by_module_path_and_by_entry_point(user_templates):
    from edgecloud.builder import templates

    by_path = templates.resolve(f"{user_templates}:gru")
    assert by_path.origin == "module path"
    templates.check(by_path, window=40, horizon=5)
    assert "user-gru" in templates.available() and "ecg-forecaster" in templates.available()
    by_entry_point = templates.resolve("user-gru")
    assert by_entry_point.build is by_path.build and by_entry_point.origin.startswith("entry point")


@pytest.mark.keras
def test_builtin_template_builds_a_conv_lstm_model_and_declares_the_searched_hyperparameters():
    import keras_tuner

    from edgecloud.builder import templates

    hp = keras_tuner.HyperParameters()
    model = templates.resolve("ecg-forecaster").build(hp, window=250, horizon=25)
    assert {type(layer).__name__ for layer in model.layers} >= {"Conv1D", "MaxPooling1D", "LSTM", "Dense"}
    assert set(hp.values) == {"filters", "kernel", "units", "dropout", "learning_rate"}
    assert model.output_shape == (None, 25)


@pytest.mark.keras
@pytest.mark.parametrize(
    "template, message",
    [
        ("no-such-template", "unknown template 'no-such-template'; choose one of ecg-forecaster"),
        ("no_such_module_xyz:f", "cannot import template module 'no_such_module_xyz'"),
        ("user_ecg_templates:missing", "has no function 'missing'"),
        ("user_ecg_templates:wrong_output", "must return one output (None, 25)"),
        ("user_ecg_templates:not_compiled", "not compiled"),
        ("user_ecg_templates:broken", "failed to build: ZeroDivisionError: oops"),
    ],
)
def test_bad_templates_exit_2_with_one_line(user_templates, tmp_path, capsys, template, message):
    code = cli(["build", "--template", template, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--trials", "0"], "--trials must be at least 1, got 0"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--max-seconds", "0"], "--max-seconds must be positive"),
        (["--people", "3", "--validation-people", "3"], "validation people must be between 1 and 2, got 3"),
        (["--window-seconds", "0.2"], "shorter than one beat at 200 bpm"),
        (["--horizon-seconds", "0.001"], "holds no sample"),
    ],
)
def test_bad_build_options_exit_2_with_one_line(tmp_path, capsys, options, message):
    code = cli(["build", "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err


@pytest.mark.keras
def test_a_search_where_every_trial_fails_exits_1_naming_the_error(user_templates, tmp_path, capsys):
    tiny = ["--people", "2", "--validation-people", "1", "--seconds-per-person", "4", "--stride", "50"]
    code = cli(
        [
            "build",
            "--template",
            "user_ecg_templates:fails_to_train",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
            *tiny,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert [line.split("  ")[0] for line in err if line.startswith("build: trial")] == ["build: trial 1/2", "build: trial 2/2"]
    assert "FAILED: ArithmeticError: loss exploded" in err[-2]
    assert not any("Traceback" in line for line in err)
    assert err[-1].startswith("edgecloud build: error: the search failed: no trial finished") and "loss exploded" in err[-1]


def test_a_model_worse_than_a_baseline_fails_the_build_unless_allowed(tmp_path, capsys, monkeypatch):
    """The exit code policy, with the (slow) build itself stubbed: 1 without --allow-worse, 0 + WARNING with."""
    from edgecloud.builder import build as build_module

    verdict = "The model does NOT beat the repeat-previous-beat baseline (val MAE 0.2000 mV): do not serve it as is."
    report = {
        "best": {"trial": 1, "val_mae": 0.2},
        "baselines": {"last_value": {"val_mae": 0.3}, "repeat_previous_beat": {"val_mae": 0.1}},
        "beats_baselines": False,
        "verdict": verdict,
    }
    result = build_module.BuildResult(tmp_path, tmp_path / "model.keras", tmp_path / "sample.npy", report)
    monkeypatch.setattr(build_module, "build", lambda settings, out, progress: result)
    assert cli(["build", "--out", str(tmp_path)]) == 1
    assert f"edgecloud build: error: {verdict}" in capsys.readouterr().err
    assert cli(["build", "--out", str(tmp_path), "--allow-worse"]) == 0
    assert f"WARNING: {verdict}" in capsys.readouterr().err


def test_verdict_names_the_baseline_that_was_not_beaten():
    from edgecloud.builder.build import verdict

    scores = {"last_value": {"val_mae": 0.3}, "repeat_previous_beat": {"val_mae": 0.1}}
    assert verdict(0.05, scores)[0] is True
    beats, text = verdict(0.2, scores)
    assert beats is False and "repeat-previous-beat" in text and "last-value" not in text


# --- demo cache ---------------------------------------------------------------------------


def test_demo_reuses_a_build_only_when_its_settings_match(tmp_path, monkeypatch):
    from edgecloud.builder import build as build_module
    from edgecloud.builder.report import REPORT_JSON
    from edgecloud.cli import build_parser
    from edgecloud.commands import demo
    from edgecloud.commands.build import settings_from

    calls = []

    def fake_build(settings, out, progress):
        calls.append(settings)
        (out / "model.keras").write_text("model")
        (out / "sample.npy").write_text("sample")
        report = {"settings": settings.as_json(), "created": "now"}
        (out / REPORT_JSON).write_text(json.dumps(report))
        return build_module.BuildResult(out, out / "model.keras", out / "sample.npy", report)

    monkeypatch.setattr(build_module, "build", fake_build)
    out = tmp_path / "build"
    out.mkdir()
    settings = settings_from(build_parser().parse_args(["demo"]))
    assert settings.as_json() == demo.demo_settings().as_json()  # `prepare(cache)` and `edgecloud demo` share a cache
    demo.cached_build(settings, out, rebuild=False)
    demo.cached_build(settings, out, rebuild=False)
    assert len(calls) == 1
    demo.cached_build(settings_from(build_parser().parse_args(["demo", "--epochs", "2"])), out, rebuild=False)
    assert len(calls) == 2 and calls[-1].search.epochs == 2
    demo.cached_build(calls[-1], out, rebuild=True)
    assert len(calls) == 3


def test_no_trial_starts_that_would_be_expected_to_end_past_the_time_budget():
    from edgecloud.builder.search import SearchSettings, TrialBudget, TrialRecord

    budget = TrialBudget(SearchSettings(trials=10, max_seconds=100, epochs=1), progress=print)
    assert not budget.out_of_time()  # nothing measured yet: the first trial always runs
    budget.started -= 50  # 50 s spent on two trials of 20 and 30 s: the next one would end near 75 s
    budget.records += [TrialRecord(1, {}, 0.1, 20.0, "COMPLETED"), TrialRecord(2, {}, 0.1, 30.0, "COMPLETED")]
    assert not budget.out_of_time()
    budget.started -= 30  # 80 s spent: one more trial of 25 s would end past 100 s
    assert budget.out_of_time()
