"""`python -m benchmarks.personalisation --smoke`: a tiny demo build, its head step run on each
validation person's first seconds, the report written. Asserts shape and sanity, never a speed
or a gain (one epoch on 6 s of a one-epoch model proves the plumbing, not the benefit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecloud.builder.data import DataSpec, personal_parts

REPO = Path(__file__).resolve().parents[2]


def test_personal_parts_never_straddle_the_cut():
    spec = DataSpec(stride=5)
    signal = np.arange(1000, dtype=np.float32)
    parts = personal_parts(signal, spec, first_seconds=4.0)
    assert parts.y_first.max() < 400 <= parts.x_later.min()
    assert parts.x_first.shape[1:] == (spec.window, 1) and parts.y_later.shape[1:] == (spec.horizon,)
    with pytest.raises(ValueError, match="shorter than one window"):
        personal_parts(signal, spec, first_seconds=9.0)


@pytest.mark.integration
@pytest.mark.keras
def test_smoke_run_writes_a_row_per_validation_person(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "benchmarks.personalisation", "--smoke", "--work", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "results" / "personalisation.json").read_text())
    report = json.loads((tmp_path / "demo" / "build" / "report.json").read_text())
    assert [row["person"] for row in results["people"]] == [p["id"] for p in report["data"]["validation_people"]]
    for row in results["people"]:
        assert row["steps"] >= 1 and row["train_windows"] > 0 and row["test_windows"] > 0, row
        assert row["mae_before"] > 0 and row["mae_after"] > 0 and np.isfinite(row["first_loss"]), row
        assert row["mae_after"] != row["mae_before"], "the personalised parameters changed nothing"
    assert "| **mean** |" in (tmp_path / "results" / "PERSONALISATION.md").read_text()
