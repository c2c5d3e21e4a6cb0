"""The set comparison's own arithmetic: parameters put in by name, memory from model.json, the
verdict. The comparison itself runs in smoke mode in tests/benchmarks/test_bench_smoke.py."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.personalisation import main
from benchmarks.trainable_sets import set_model_name, spread, step_memory, verdict, with_parameters


def _affine(path):
    weight = numpy_helper.from_array(np.eye(3, dtype=np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(3, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [weight, bias],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def test_parameters_go_in_by_initializer_name(tmp_path):
    _affine(tmp_path / "model.onnx")
    weight = np.arange(9, dtype=np.float32).reshape(3, 3)
    model = with_parameters(tmp_path / "model.onnx", {"w": weight, "b": np.array([1, 2, 3], np.float32)})
    x = np.array([[1.0, -1.0, 2.0]], np.float32)
    y = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(y, x @ weight + [1, 2, 3])
    with pytest.raises(ValueError, match="no initializer named 'kernel'"):
        with_parameters(tmp_path / "model.onnx", {"kernel": weight})


def test_memory_is_read_from_model_json_and_the_step_file(tmp_path):
    (tmp_path / "train.onnx").write_bytes(b"x" * 1234)
    training = {
        "file": "train.onnx",
        "parameters": [{"shape": [32, 25]}, {"shape": [25]}],
        "state": [{"shape": [32, 25]}, {"shape": [25]}, {"shape": [32, 25]}, {"shape": [25]}],
    }
    (tmp_path / "model.json").write_text(json.dumps({"training": training}))
    assert step_memory(tmp_path) == {
        "tensors": 2,
        "parameters": 825,
        "parameter_bytes": 3300,
        "state_bytes": 6600,
        "train_onnx_bytes": 1234,
    }


def _run(trainable, person, mae, wall_ms=1000.0, lateness=5.0):
    return {"set": trainable, "person": person, "mae_after": mae, "wallMs": wall_ms, "maxLatenessMs": lateness}


def test_verdict_holds_every_run_to_the_goals_and_compares_with_head():
    runs = [_run("head", 0, 0.09), _run("head", 1, 0.11), _run("all", 0, 0.07), _run("all", 1, 0.09, lateness=51.0)]
    runs.append(_run("last:2", 0, 0.2) | {"error": "boom"})
    summary = {}
    for trainable in ("head", "all", "last:2"):
        mine = [r for r in runs if r["set"] == trainable and "error" not in r]
        summary[trainable] = {"mae_after": {p: spread([r["mae_after"] for r in mine if r["person"] == p]) for p in (0, 1)}}
    result = {"browser": {"runs": runs, "summary": summary}}
    verdicts = verdict(result, wall_goal_s=10.0, lateness_goal_ms=50.0)
    assert verdicts["head"] == {"within_goals": True, "mean_mae_after": pytest.approx(0.10), "better_than_head": False}
    assert verdicts["all"]["within_goals"] is False  # one timer 51 ms late is enough
    assert verdicts["all"]["better_than_head"] is True
    assert verdicts["last:2"] == {"within_goals": False, "mean_mae_after": None, "better_than_head": None}


def test_set_names_and_spread():
    assert [set_model_name("forecaster", s) for s in ("head", "last:2", "all")] == ["forecaster-head", "forecaster-last2", "forecaster-all"]
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "low": 1.0, "high": 3.0}
    assert spread([]) is None


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sets", "head,last:0"], "--trainable 'last:0'"),
        (["--sets", "head,none"], "pass --sets none alone"),
        (["--rates", "0.01,abc"], "as numbers"),
        (["--rates", "-1"], "must be positive"),
        (["--rounds", "0"], "--rounds must be at least 1"),
    ],
)
def test_bad_flags_exit_2_with_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(flags)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
