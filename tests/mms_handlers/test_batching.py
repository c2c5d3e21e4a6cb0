"""Stacking inside one MMS batch, with a counting fake engine and with the real handler on a stub context."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from mms_handlers import batching
from mms_handlers.service import ENGINE_FILE, REQUEST_METRICS_ENV, ModelService
from mms_handlers.signature import Signature, TensorSpec

from . import models
from .models import npy
from .stub_context import StubContext

SIGNATURE = Signature(inputs=(TensorSpec("x", "float32", (None, 4)),), outputs=(TensorSpec("y", "float32", (None, 4)),))


class CountingEngine:
    """y = 2x; records the batch of every run and fails on any run containing a negative value."""

    def __init__(self) -> None:
        self.runs: list[int] = []

    def __call__(self, feeds):
        self.runs.append(feeds["x"].shape[0])
        if (feeds["x"] < 0).any():
            raise ValueError("negative input")
        return {"y": feeds["x"] * 2}


def rows(count: int, value: float, width: int = 4) -> np.ndarray:
    return np.full((count, width), value, np.float32)


def test_compatible_requests_share_one_run_and_split_back():
    engine = CountingEngine()
    requests = {0: {"x": rows(1, 1)}, 1: {"x": rows(3, 2)}, 2: {"x": rows(2, 3)}}
    report = batching.run_batch(requests, SIGNATURE, engine)
    assert engine.runs == [6] and report.engine_runs == 1
    for index, feeds in requests.items():
        np.testing.assert_array_equal(report.results[index].outputs["y"], feeds["x"] * 2)
        assert report.results[index].stacked_with == 3


def test_incompatible_shapes_run_in_their_own_groups():
    engine = CountingEngine()
    wide = Signature(inputs=(TensorSpec("x", "float32", (None, None)),), outputs=(TensorSpec("y", "float32", (None, None)),))
    requests = {0: {"x": rows(1, 1, 4)}, 1: {"x": rows(1, 1, 5)}, 2: {"x": rows(2, 1, 4)}}
    assert batching.group(requests, wide) == [[0, 2], [1]]
    report = batching.run_batch(requests, wide, engine)
    assert sorted(engine.runs) == [1, 3]
    assert report.results[1].outputs["y"].shape == (1, 5)


def test_a_failing_member_is_found_and_fails_alone():
    engine = CountingEngine()
    requests = {0: {"x": rows(1, 1)}, 1: {"x": rows(1, -1)}, 2: {"x": rows(2, 3)}}
    report = batching.run_batch(requests, SIGNATURE, engine)
    assert engine.runs == [4, 1, 1, 2]  # the stacked try, then each alone
    assert isinstance(report.results[1].error, ValueError)
    assert report.results[0].outputs is not None and report.results[2].outputs is not None


def test_models_without_a_free_batch_dim_run_each_request_alone():
    engine = CountingEngine()
    fixed = Signature(inputs=(TensorSpec("x", "float32", (2, 4)),), outputs=(TensorSpec("y", "float32", (2, 4)),))
    report = batching.run_batch({0: {"x": rows(2, 1)}, 1: {"x": rows(2, 1)}}, fixed, engine)
    assert engine.runs == [2, 2] and report.engine_runs == 2


@pytest.fixture(scope="module")
def mlp_service(tmp_path_factory):
    version_dir = models.mlp(tmp_path_factory.mktemp("registry"))
    (version_dir / ENGINE_FILE).write_text(json.dumps({"engine": "onnxruntime"}))
    service = ModelService()
    service.initialize(StubContext(version_dir))
    return service, version_dir


def test_handler_batch_mixes_formats_and_fails_one_request_alone(mlp_service, monkeypatch):
    monkeypatch.setenv(REQUEST_METRICS_ENV, "1")  # the per-request timings too
    service, version_dir = mlp_service
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    bodies = [
        (json.dumps({"inputs": {"x": x[:1].tolist()}}).encode(), "application/json"),
        (b'{"inputs": {"x": [[1, 2, 3]]}}', "application/json"),  # wrong size: 400 for this one only
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x[1].tolist()}]}).encode(), "application/json"),
        (npy(x[2:3]), "application/x-npy"),
        (b"[[1, 2, 3, 4]]", "text/csv"),  # 415
    ]
    context = StubContext(version_dir, [content_type for _, content_type in bodies])
    answers = service.handle_batch([{"body": body} for body, _ in bodies], context)
    want = models.mlp_reference(x)
    np.testing.assert_allclose(json.loads(answers[0])["outputs"]["y"], want[:1], atol=1e-6)
    assert context.statuses[1][0] == 400 and "expected float32[?, 4], got shape [1, 3]" in json.loads(answers[1])["message"]
    np.testing.assert_allclose(json.loads(answers[2])["outputs"][0]["data"], want[1], atol=1e-6)
    np.testing.assert_allclose(np.load(io.BytesIO(answers[3]))[0], want[2], atol=1e-6)
    assert context.statuses[4][0] == 415 and set(context.statuses) == {1, 4}
    # The three good requests shared one onnxruntime run, and the metrics say so.
    assert [value for value, _ in context.metric("BatchSize")] == [5]
    assert [value for value, _ in context.metric("EngineRuns")] == [1]
    assert sorted(value for value, _ in context.metric("StackedRequests")) == [3, 3, 3]
    for name in ("PreprocessTime", "InferenceTime", "PostprocessTime"):
        assert len(context.metric(name)) in (3, 5) and all(value >= 0 for value, _ in context.metric(name))


def test_default_metrics_are_per_handler_call_and_none_for_a_lone_request(mlp_service, monkeypatch):
    monkeypatch.delenv(REQUEST_METRICS_ENV, raising=False)
    service, version_dir = mlp_service
    body = {"body": json.dumps({"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}).encode()}
    context = StubContext(version_dir, ["application/json"] * 3)
    service.handle_batch([body] * 3, context)
    assert sorted(metric.name for metric in context.metrics.store) == ["BatchSize", "EngineRuns"]
    assert [value for value, _ in context.metric("BatchSize")] == [3]
    context = StubContext(version_dir, ["application/json"])  # alone, at any batch size
    service.handle_batch([body], context)
    assert context.metrics.store == []
    monkeypatch.setenv(REQUEST_METRICS_ENV, "1")  # a replica's /metrics counts every call
    context = StubContext(version_dir, ["application/json"])
    service.handle_batch([body], context)
    assert [value for value, _ in context.metric("BatchSize")] == [1]


@pytest.mark.mxnet
def test_mxnet_engine_matches_onnxruntime(tmp_path):
    version_dir = models.mlp(tmp_path)
    (version_dir / ENGINE_FILE).write_text(json.dumps({"engine": "mxnet"}))
    service = ModelService()
    service.initialize(StubContext(version_dir))
    assert service.engine.name == "mxnet"
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    context = StubContext(version_dir, ["application/json"])
    (answer,) = service.handle_batch([{"body": json.dumps([*x.tolist()]).encode()}], context)
    np.testing.assert_allclose(json.loads(answer)["outputs"]["y"], models.mlp_reference(x), atol=1e-5)
    shutil.rmtree(version_dir)
