"""A tiny real search end to end: `edgecloud build` → `export` → `archive` → a real MMS prediction.

Two trials of one epoch on a few seconds of simulated ECG: the model is poor (hence
--allow-worse), but it is a real Conv1D + LSTM model, and MMS must answer what Keras answers.
"""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request

import numpy as np
import pytest

from edgecloud.cli import main as cli

pytestmark = [pytest.mark.integration, pytest.mark.keras]

TINY = [
    "--trials",
    "2",
    "--epochs",
    "1",
    "--people",
    "3",
    "--validation-people",
    "1",
    "--seconds-per-person",
    "12",
    "--stride",
    "10",
    "--allow-worse",
]


@pytest.fixture(scope="module")
def tiny_build(workdir):
    """The build's folder and its stderr lines (the progress display)."""
    out = workdir / "tiny-build"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert cli(["build", "--out", str(out), *TINY]) == 0
    return out, stderr.getvalue().splitlines()


def test_build_writes_model_sample_and_a_report_of_every_trial(tiny_build):
    out, lines = tiny_build
    trial_lines = [line.removeprefix("build: ") for line in lines if line.startswith("build: trial ")]
    assert [line.split("  ")[0] for line in trial_lines] == ["trial 1/2", "trial 2/2"]
    assert all("val MAE" in line and "filters=" in line and "total" in line for line in trial_lines)
    report = json.loads((out / "report.json").read_text())
    assert [trial["number"] for trial in report["trials"]] == [1, 2]
    for trial in report["trials"]:
        assert trial["status"] == "COMPLETED" and trial["val_mae"] > 0
        assert set(trial["hyperparameters"]) == {"filters", "kernel", "units", "dropout", "learning_rate"}
    assert report["best"]["val_mae"] == pytest.approx(min(t["val_mae"] for t in report["trials"]), rel=1e-4)
    assert {"Conv1D", "LSTM", "Dense", "Rescaling"} <= set(report["best"]["layers"])
    assert set(report["baselines"]) == {"last_value", "repeat_previous_beat"}
    assert report["beats_baselines"] == (report["best"]["val_mae"] < min(b["val_mae"] for b in report["baselines"].values()))
    assert report["data"]["input_shape"] == [None, 250, 1] and report["stopped_by"] == "trials"
    markdown = (out / "report.md").read_text()
    assert "repeat previous beat" in markdown and markdown.count("| COMPLETED |") == 2
    assert np.load(out / "sample.npy").shape == (1, 250, 1)


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_built_model_exports_archives_and_mms_answers_like_keras(tiny_build, registry, model_store, mms):
    import keras

    out, _ = tiny_build
    assert (
        cli(["export", str(out / "model.keras"), "--sample", str(out / "sample.npy"), "--name", "builder_ecg", "--out", str(registry)]) == 0
    )
    manifest = json.loads((registry / "builder_ecg" / "1" / "model.json").read_text())
    assert manifest["inputs"] == [{"name": "window", "dtype": "float32", "shape": [None, 250, 1]}]
    assert manifest["outputs"] == [{"name": "forecast", "dtype": "float32", "shape": [None, 25]}]
    assert cli(["archive", str(registry / "builder_ecg" / "1"), "--out", str(model_store)]) == 0
    mms.register("builder_ecg.mar")
    mms.wait_until_healthy()

    sample = np.load(out / "sample.npy")
    batch = np.concatenate([sample, sample[:, ::-1] * 0.5 + 0.1, np.zeros_like(sample)]).astype(np.float32)
    want = np.asarray(keras.saving.load_model(out / "model.keras")(batch))
    body = json.dumps({"inputs": {"window": batch.tolist()}}).encode()
    status, body = post(f"{mms.config.inference_url}/predictions/builder_ecg", body)
    assert status == 200, body
    cloud = np.asarray(body["outputs"]["forecast"], dtype=np.float32)
    assert cloud.shape == (3, 25)
    assert np.max(np.abs(cloud - want)) <= 1e-5
