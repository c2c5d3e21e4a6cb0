"""`python -m benchmarks.run --smoke` end to end (real MMS, gunicorn, wrk, Chromium), so the benchmarks cannot rot.

The smoke run is seconds-long per point; what is asserted is shape and sanity (every section,
every peer, positive figures, no failed requests, browser parity), never a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cloud import PEERS, TORCHSERVE
from benchmarks.edge import RUNTIMES
from benchmarks.loadtest import parse_wrk
from benchmarks.plots import PLOTS
from benchmarks.report import SECTIONS

REPO = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8080/predictions/mlp
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms    2.00ms  30.00ms   90.00%
  Latency Distribution
     50%  850.00us
     75%    4.00ms
     90%    6.00ms
     99%    1.20s
  1597 requests in 1.02s, 300.00KB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:   1560.12
Transfer/sec:    293.00KB
"""


def test_wrk_output_is_read_with_units_and_errors():
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_s == pytest.approx(1560.12)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.requests == 1597
    assert result.errors == 5 + 3  # non-2xx + timeouts; "read" errors are closes by non-keep-alive servers


def test_bad_usage_exits_2():
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--no-such-flag"], cwd=REPO, capture_output=True, text=True, env=_env())
    assert done.returncode == 2
    assert "--no-such-flag" in done.stderr


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


@pytest.mark.integration
@pytest.mark.keras
def test_smoke_run_writes_every_section_with_sane_figures(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]

    report = (out / "REPORT.md").read_text()
    for section in SECTIONS:
        assert f"\n## {section}\n" in report, section
    for plot in PLOTS:
        assert (out / plot).stat().st_size > 1000, plot
    results = json.loads((out / "results.json").read_text())
    assert results["machine"]["cores"] and results["versions"]["onnxjs"] == "0.1.8"

    cloud = results["cloud"]
    assert {row["peer"] for row in cloud} == set(PEERS) - {TORCHSERVE}  # smoke mode skips the optional peer
    assert "Not measured in smoke mode" in report.split("## TorchServe")[1]
    assert {row["concurrency"] for row in cloud} == {1, 8, 32}
    for row in cloud:
        assert row["requests_per_s"] > 0 and row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"], row
        assert row["requests"] > 0 and row["errors"] == 0, row
    assert "| mlp | 32 |" in report.split("## Cloud ratios")[1]

    edge = {(row["model"], row["runtime"]): row for row in results["edge"]}
    for runtime in RUNTIMES:  # the tiny MLP runs everywhere; the demo model may not (e.g. LSTM on ONNX.js)
        row = edge[("mlp", runtime)]
        assert row["error"] is None, row
        assert row["cold_ms"] > 0 and row["warm_ms"] > 0 and row["p50_ms"] > 0 and row["runs"] > 0, row
        assert row["max_abs_diff"] <= 1e-5 and row["isolated"] is True, row
    assert "| mlp | ortweb-wasm |" in report.split("## Edge vs cloud")[1]

    exports = {row["model"]: row for row in results["export"]}
    assert exports["mlp"]["export_seconds"] > 0 and exports["mlp"]["onnx_bytes"] > 0
    assert exports["mlp"]["parity"]["source vs onnxruntime"] <= 1e-5

    # The personalisation benchmark, on the demo model just exported (reused, not rebuilt): shape and
    # sanity only, never a gain (one epoch on 6 s of a one-epoch model proves the plumbing).
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.personalisation", "--smoke", "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    personal = json.loads((out / "personalisation.json").read_text())
    build = json.loads((tmp_path / "work" / "demo" / "build" / "report.json").read_text())
    assert [row["person"] for row in personal["people"]] == [p["id"] for p in build["data"]["validation_people"]]
    for row in personal["people"]:
        assert row["steps"] >= 1 and row["train_windows"] > 0 and row["test_windows"] > 0, row
        assert row["mae_before"] > 0 and row["mae_after"] > 0 and row["mae_after"] != row["mae_before"], row
    assert "| **mean** |" in (out / "PERSONALISATION.md").read_text()
    browser = personal["browser"]  # the Chromium half: every training runtime timed, one personalisation per run
    assert {(row["runtime"], row["backend"]) for row in browser["steps"]} == {
        ("onnxjs", "cpu"),
        ("onnxjs", "wasm"),
        ("onnxruntime-web", "wasm"),
    }
    assert all(row["median_ms"] > 0 and row["max_abs_diff"] <= 1e-5 for row in browser["steps"]), browser["steps"]
    trained = [run for run in browser["personalise"] if "policy" in run]
    assert len(trained) == 3 and all("error" not in run and run["steps"] >= 1 and run["wallMs"] > 0 for run in trained), trained
    assert browser["personalise"][-1]["run"].startswith("control") and browser["personalise"][-1]["maxLatenessMs"] >= 0

    # The trainable-set comparison (smoke: `all` only, one round): its own export, memory, Python and Chromium.
    sets = personal["sets"]
    assert sets["sets"] == ["all"]
    memory = sets["memory"]["all"]
    demo = json.loads((tmp_path / "work" / "demo" / "registry" / "forecaster" / "1" / "model.json").read_text())
    head_values = sum(int(np.prod(p["shape"])) for p in demo["training"]["parameters"])  # the demo's default: head
    assert memory["parameters"] > head_values and memory["state_bytes"] == 2 * memory["parameter_bytes"]  # Adam: m and v
    assert memory["train_onnx_bytes"] > 0
    (python,) = sets["python"]
    assert all(p["mae_after"] > 0 and p["mae_after"] != p["mae_before"] for p in python["people"]), python
    runs = sets["browser"]["runs"]
    assert [(r["set"], r["person"]) for r in runs] == [("all", p["id"]) for p in build["data"]["validation_people"]]
    for run in runs:
        assert "error" not in run and run["backend"].startswith("onnxruntime-web") and run["wallMs"] > 0, run
        # The page's own forecasts and onnxruntime's on model.onnx with the browser's parameters by name agree.
        assert run["mae_after_page"] == pytest.approx(run["mae_after"], rel=1e-4), run
    (step,) = sets["browser"]["steps"]
    assert step["median_ms"] > 0 and step["max_abs_diff"] <= 1e-5, step
    assert "## Which layers to train: head vs last:2 vs all" in (out / "PERSONALISATION.md").read_text()
