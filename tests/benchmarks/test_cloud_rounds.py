"""Interleaved rounds and the hot path profile: the spread rule, per-round ratios, the stage of a stack,
and `python -m benchmarks.cloud_rounds --smoke` then `python -m benchmarks.hot_path --reuse` end to end.

The smoke runs assert shape (every peer in every round, a ratio per point, the load of each round,
every stage of the profile), never a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import hot_path
from benchmarks.cloud import FLASK, IN_PROCESS, MMS_B1, MMS_B8, MMS_B8_WAIT, PEERS, PING, TORCHSERVE, CloudRow, median_rows
from benchmarks.report import cloud_ratios, round_loads
from benchmarks.rounds import NO_DIFFERENCE, Spread, rotated

REPO = Path(__file__).resolve().parents[2]


def test_a_spread_that_holds_one_is_no_difference():
    assert Spread.of([0.9, 1.2, 1.05]).ratio_text() == f"{NO_DIFFERENCE} (median 1.05, 0.90–1.20)"
    assert Spread.of([1.1, 1.3, 1.2]).ratio_text() == "1.20 (1.10–1.30)"
    assert Spread.of([0.5, 0.7, 0.6]).straddles_one is False
    assert Spread.of([2.0]).ratio_text() == "2.00"  # one round: a figure, no verdict
    assert Spread.of([float("nan")]) is None and Spread.of([]) is None


def test_rounds_rotate_the_order_of_peers():
    peers = ["a", "b", "c"]
    assert [rotated(peers, r) for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def _rows(b1_by_round: list[float]) -> list[CloudRow]:
    rows = []
    for number, b1 in enumerate(b1_by_round, start=1):
        rows.append(CloudRow(PING, "-", 1, 1000.0, 0.1, 0.2, 10, 0, number, 2.0))
        rows.append(CloudRow(IN_PROCESS, "m", 1, 5000.0, 0.05, 0.1, 10, 0, number, 2.0))
        for peer, rps in ((MMS_B1, b1), (MMS_B8, 2 * b1), (MMS_B8_WAIT, b1 / 4), (FLASK, 100.0)):
            rows.append(CloudRow(peer, "m", 1, rps, 1.0 + number, 2.0, 10, 0, number, 1.0 + number))
    return rows


def test_ratios_are_taken_within_each_round_then_summarised():
    [summary] = cloud_ratios(_rows([90.0, 150.0, 120.0]))
    assert (summary["b1_over_flask"].median, summary["b1_over_flask"].low, summary["b1_over_flask"].high) == (
        pytest.approx(1.2),
        pytest.approx(0.9),
        pytest.approx(1.5),
    )
    assert summary["b8_over_b1"].low == summary["b8_over_b1"].high == pytest.approx(2.0)
    assert summary["b8_wait_over_b1"].median == pytest.approx(0.25)
    assert summary["b1_over_torchserve"] is None  # not measured
    assert summary["b1_p50_minus_floor_ms"].median == pytest.approx(2.95)
    assert [load["load_mean"] for load in round_loads(_rows([1.0, 1.0]))] == pytest.approx([(2 * 2 + 4 * 2) / 6, (2 * 2 + 4 * 3) / 6])
    medians = {row.peer: row for row in median_rows(_rows([90.0, 150.0, 120.0]))}
    assert medians[MMS_B1].requests_per_s == 120.0 and medians[MMS_B1].requests == 30


def test_a_stack_belongs_to_its_leaf_most_known_frame():
    root = "<module> (mms/model_service_worker.py:240);MXNetModelServiceWorker.handle_connection (mms/model_service_worker.py:141)"
    handle = root + ";Service.predict (mms/service.py:100);handle (mms_handlers/service.py:190)"
    batch = handle + ";ModelService.handle_batch (mms_handlers/service.py:84)"
    assert (
        hot_path.stage_of(batch + ";ModelService._prepare (mms_handlers/service.py:110);parse_json (mms_handlers/codecs.py:230)")
        == hot_path.DECODE
    )
    assert hot_path.stage_of(batch + ";_json_array (mms_handlers/signature.py:107);asarray (numpy/core/x.py:1)") == hot_path.DECODE
    assert hot_path.stage_of(batch + ";run (mms_handlers/engines/ort.py:59);Session.run (onnxruntime/capi/x.py:3)") == hot_path.ORT
    assert hot_path.stage_of(batch + ";PlainJsonCodec.encode.<locals>.<dictcomp> (mms_handlers/codecs.py:74)") == hot_path.ENCODE
    assert hot_path.stage_of(batch) == hot_path.HANDLER
    assert hot_path.stage_of(root + ";emit_metrics (mms/service.py:150);Logger.info (logging/__init__.py:1489)") == hot_path.MMS_METRICS
    assert (
        hot_path.stage_of(
            root + ";retrieve_msg (mms/protocol/otf_message_handler.py:40);_retrieve_buffer (mms/protocol/otf_message_handler.py:160)"
        )
        == hot_path.MMS_READ
    )
    assert hot_path.stage_of(root) == hot_path.MMS_ANSWER  # the socket send in handle_connection itself
    assert hot_path.stage_of("f (elsewhere.py:1)") == hot_path.OTHER
    counts = hot_path.stage_samples(f"{batch} 3\n{root} 2\nnot a sample line\n")
    assert counts == {hot_path.HANDLER: 3, hot_path.MMS_ANSWER: 2}


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def test_bad_rounds_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cloud_rounds", "--rounds", "0"], cwd=REPO, capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 2 and "--rounds" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.integration
@pytest.mark.keras
def test_smoke_runs_measure_every_peer_in_every_round_then_profile_the_stages(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cloud_rounds", "--smoke", "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _check_rounds(out)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.hot_path",
            "--reuse",
            "--models",
            "mlp",
            "--concurrency",
            "1",
            "--seconds",
            "1",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(tmp_path / "profile"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "building" not in done.stderr  # --reuse: the smoke run's models
    [profile] = json.loads((tmp_path / "profile" / "hot_path.json").read_text())["profiles"]
    assert profile["requests"] > 0 and profile["samples"] > 0 and profile["handler_cpu_us"] > 0, profile
    assert set(profile["python_stages_us"]) == set(hot_path.PYTHON_ORDER)
    # Every sample lands in one stage, so the stages share out the handler's CPU time exactly. (Which
    # stages get samples is chance: the mlp's onnxruntime is ~2 % of 1 s of samples; the real frames
    # are classified in test_py_spy_samples_of_our_engine_are_counted_as_onnxruntime.)
    assert sum(profile["python_stages_us"].values()) == pytest.approx(profile["handler_cpu_us"], rel=1e-6)
    # The server is profiled as shipped: MMS writes no per-request "Backend response time" line.
    assert profile["backend_response_ms"] is None
    assert "| onnxruntime |" in (tmp_path / "profile" / "HOT_PATH.md").read_text()


def _check_rounds(out: Path) -> None:
    results = json.loads((out / "cloud_rounds.json").read_text())
    rows = results["cloud"]
    assert {(row["peer"], row["round"]) for row in rows} == {(p, r) for p in set(PEERS) - {TORCHSERVE} for r in (1, 2)}
    for row in rows:
        assert row["requests"] > 0 and row["errors"] == 0 and row["load_1min"] >= 0, row
    report = (out / "CLOUD_ROUNDS.md").read_text()
    for section in ("## Cloud\n", "## Cloud ratios\n", "## Cloud rounds\n"):
        assert section in report
    assert "| mlp | 1 |" in report.split("## Cloud ratios")[1]
    assert "| 2 | 6 |" in report.split("## Cloud rounds")[1]  # round 2: the floor, ping, 3 MMS peers, Flask


ENGINE_LOOP = """
import sys, time
import numpy as np
from onnx import TensorProto, helper
from mms_handlers.engines.ort import OnnxRuntimeEngine
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [256, 256])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [256, 256])
graph = helper.make_graph([helper.make_node("MatMul", ["x", "x"], ["y"])], "g", [x], [y])
model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])
path = sys.argv[1]
open(path, "wb").write(model.SerializeToString())
engine = OnnxRuntimeEngine(path)
feeds = {"x": np.ones((256, 256), np.float32)}
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    engine.run(feeds)
"""


@pytest.mark.integration
def test_py_spy_samples_of_our_engine_are_counted_as_onnxruntime(tmp_path):
    """The stage table against real stacks: py-spy on a process doing nothing but our engine's `run`
    finds onnxruntime in most samples (the profile's own run is too short to say so for the mlp)."""
    loop = subprocess.Popen(
        [sys.executable, "-c", ENGINE_LOOP, str(tmp_path / "matmul.onnx")], cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert loop.stdout is not None and loop.stdout.readline().strip() == "ready"
        raw = tmp_path / "samples.txt"
        done = subprocess.run(
            [
                hot_path.py_spy(),
                "record",
                "--pid",
                str(loop.pid),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--duration",
                "1",
                "-o",
                str(raw),
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-1000:]
    finally:
        loop.kill()
        loop.wait()
    counts = hot_path.stage_samples(raw.read_text())
    assert sum(counts.values()) > 0
    assert counts[hot_path.ORT] > sum(counts.values()) / 2, counts
