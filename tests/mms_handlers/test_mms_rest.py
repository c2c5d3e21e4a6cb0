"""The handler in a real Multi Model Server: every request form, dynamic batching, the error matrix.

One MMS instance for this module (its own ports, runtime folder and a small max_request_size),
with the `mlp` model registered at batch size 8 and the two-input `pair` model at batch size 1.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mms_handlers.archive import build_archive
from mms_handlers.server import MmsServer, ServerConfig
from tests.conftest import free_port

from . import models
from .models import npy, npz

pytestmark = pytest.mark.integration

MAX_REQUEST = 20_000  # small, so an oversized body still fits the socket buffers before MMS answers 413
BATCH = 8


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, {k.lower(): v for k, v in headers.items()}

    def json(self):
        return json.loads(self.body)


def post(server: MmsServer, model: str, body: bytes, content_type: str | None = "application/json") -> Answer:
    headers = {"Content-Type": content_type} if content_type else {}
    url = f"{server.config.inference_url}/predictions/{urllib.parse.quote(model)}"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read(), dict(error.headers))


def worker_ids(server: MmsServer, model: str) -> list[str]:
    return sorted(worker["id"] for worker in server.describe(model)["workers"])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest")
    store = root / "store"
    build_archive(models.mlp(root / "registry"), store)
    build_archive(models.two_in_two_out(root / "registry"), store)
    config = ServerConfig(
        model_store=store,
        inference_port=free_port(),
        management_port=free_port(),
        max_request_size=MAX_REQUEST,
        runtime_dir=root / "mms",
    )
    with MmsServer(config) as server:
        server.register("mlp.mar", batch_size=BATCH, max_batch_delay_ms=100)
        server.register("pair.mar", batch_size=1)
        server.wait_until_healthy()
        server.workers_at_start = {name: worker_ids(server, name) for name in ("mlp", "pair")}
        server.worker_pids_at_start = server.worker_pids()
        yield server


def test_every_form_gets_the_same_numbers_in_its_own_form(served):
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    want = models.mlp_reference(x)

    plain = post(served, "mlp", json.dumps({"inputs": {"x": x.tolist()}}).encode())
    bare = post(served, "mlp", json.dumps(x.tolist()).encode())
    v2 = post(
        served,
        "mlp",
        json.dumps({"id": "q1", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x.reshape(-1).tolist()}]}).encode(),
    )
    as_npy = post(served, "mlp", npy(x), "application/x-npy")
    assert [a.status for a in (plain, bare, v2, as_npy)] == [200] * 4

    np.testing.assert_allclose(plain.json()["outputs"]["y"], want, atol=1e-6)
    assert bare.json() == plain.json()
    v2_answer = v2.json()
    assert (v2_answer["model_name"], v2_answer["model_version"], v2_answer["id"]) == ("mlp", "1", "q1")
    (tensor,) = v2_answer["outputs"]
    assert (tensor["name"], tensor["shape"], tensor["datatype"]) == ("y", [2, 3], "FP32")
    np.testing.assert_allclose(np.reshape(tensor["data"], (2, 3)), want, atol=1e-6)
    array = np.load(io.BytesIO(as_npy.body), allow_pickle=False)
    assert array.dtype == np.float32 and array.shape == (2, 3)
    np.testing.assert_allclose(array, want, atol=1e-6)
    # MMS 1.1.11 sends no Content-Type on handler answers (setting one corrupts batched frames):
    # clients tell JSON from .npy/.npz by the body (docs/rest.md).
    assert "content-type" not in plain.headers and "content-type" not in as_npy.headers


def test_two_inputs_two_outputs_in_v2_and_npz(served):
    a = np.array([[1.5, 2.5]], np.float32)
    n = np.array([[4]], np.int64)
    v2 = post(
        served,
        "pair",
        json.dumps(
            {
                "inputs": [
                    {"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1.5, 2.5]},
                    {"name": "n", "shape": [1, 1], "datatype": "INT64", "data": [4]},
                ]
            }
        ).encode(),
    )
    assert v2.status == 200
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["sum"]["data"] == [2.5, 3.5] and outputs["twice"] == {"name": "twice", "shape": [1, 1], "datatype": "INT64", "data": [8]}

    as_npz = post(served, "pair", npz(a=a, n=n), "application/x-npz")
    assert as_npz.status == 200
    answer = np.load(io.BytesIO(as_npz.body), allow_pickle=False)
    assert answer["twice"].dtype == np.int64 and answer["twice"].tolist() == [[8]]
    np.testing.assert_array_equal(answer["sum"], a + 1)


NAN_BODY = b'{"inputs": {"x": [[0.1, NaN, 0.3, 0.4]]}}'
GARBAGE = bytes(np.random.default_rng(8).integers(0, 256, 3000, dtype=np.uint8))
NPZ_WITH_OBJECTS = npz(a=np.zeros((1, 2), np.float32), n=np.array([[{"a": 1}]], dtype=object))
ERROR_MATRIX = [
    # (model, body, content type, status, fragment of the message)
    ("mlp", b"{not json", "application/json", 400, "invalid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ("mlp", b"", "application/json", 400, "empty request body"),
    ("mlp", b"[[1, 2, 3, 4]]", "text/csv", 415, "unsupported Content-Type 'text/csv'"),
    ("mlp", b"[[1, 2, 3, 4]]", "application/x-www-form-urlencoded", 415, "add -H 'Content-Type: application/json'"),
    ("mlp", NAN_BODY, "application/json", 400, "input 'x': expected finite values, got NaN or Inf at index [0, 1]"),
    ("mlp", b'{"inputs": {"x": [[1, 2, 3]]}}', "application/json", 400, "input 'x': expected float32[?, 4], got shape [1, 3]"),
    ("mlp", b'{"inputs": {"x": [1, 2, 3, 4]}}', "application/json", 400, "input 'x': expected rank 2 float32[?, 4], got shape [4]"),
    ("mlp", b'{"inputs": {"x": [["a", "b", "c", "d"]]}}', "application/json", 400, "input 'x': expected float32[?, 4], got text"),
    ("mlp", b'{"inputs": {"z": [[1, 2, 3, 4]]}}', "application/json", 400, "missing input 'x': expected inputs ['x']"),
    ("mlp", b'{"inputs": {"x": [[1, 2, 3, 4]], "z": [1]}}', "application/json", 400, "unexpected input 'z'"),
    (
        "mlp",
        json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}).encode(),
        "application/json",
        400,
        "input 'x': expected float32[?, 4], got dtype float64",
    ),
    (
        "mlp",
        json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": [1, 2, 3, 4]}]}).encode(),
        "application/json",
        400,
        "unsupported datatype 'BYTES'",
    ),
    ("mlp", npy(np.zeros((1, 4))), "application/x-npy", 400, "input 'x': expected float32[?, 4], got dtype float64"),
    ("mlp", b"\x93NUMPY garbage", "application/x-npy", 400, "not a readable .npy/.npz file"),
    ("pair", npy(np.zeros((1, 2), np.float32)), "application/x-npy", 400, "carries one array but the model has inputs ['a', 'n']"),
    ("pair", b"[[1, 2]]", "application/json", 400, "a bare list is only accepted by single-input models"),
    ("mlp", b'{"inputs": {"x": [[1, 2, 3', "application/json", 400, "invalid JSON: Expecting ',' delimiter at line 1 column 27"),
    ("mlp", GARBAGE, "application/json", 400, "request body is not UTF-8 JSON"),
    ("mlp", GARBAGE, "application/octet-stream", 400, "body is not a readable .npy/.npz file"),
    ("pair", GARBAGE, "application/x-npz", 400, "body is not a readable .npy/.npz file"),
    ("mlp", b"[" * 50_00 + b"]" * 50_00, "application/json", 400, "JSON nested too deeply"),
    (
        "mlp",
        rb'{"inputs": {"x": [[1, 2, 3, 4]], "\u1e8b\ud83d\ude00": [1]}}',
        "application/json",
        400,
        "unexpected input '\u1e8b\U0001f600'",
    ),
    (
        "mlp",
        b'{"inputs": {"x": [[1, -Infinity, 3, 4]]}}',
        "application/json",
        400,
        "expected finite values, got NaN or Inf at index [0, 1]",
    ),
    ("mlp", b'{"inputs": {"x": null}}', "application/json", 400, "input 'x': expected float32[?, 4], got null"),
    ("mlp", b'{"inputs": {"x": [[1e999999, 2, 3, 4]]}}', "application/json", 400, "expected finite values"),
    (
        "mlp",
        json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode(),
        "application/json",
        400,
        "input 'x': shape [2, 4] needs 8 values, data holds 4",
    ),
    (
        "mlp",
        json.dumps({"inputs": [{"name": ["x"], "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode(),
        "application/json",
        400,
        "inputs[0]: name must be a string, got a JSON list",
    ),
    ("mlp", npy(np.array([{"a": 1}, 2], dtype=object)), "application/x-npy", 400, "Object arrays cannot be loaded when allow_pickle=False"),
    ("mlp", npy(np.zeros((1, 4), np.complex64)), "application/x-npy", 400, "input 'x': expected float32[?, 4], got dtype complex64"),
    ("pair", NPZ_WITH_OBJECTS, "application/x-npz", 400, "not a readable .npz file"),
    ("nosuch", b"[[1, 2, 3, 4]]", "application/json", 404, "Model not found: nosuch"),
    ("\u00e9\U0001f600", b"[[1, 2, 3, 4]]", "application/json", 404, "Model not found: \u00e9\U0001f600"),
    ("pair", b'{"inputs": {"a": [[1, 2]], "n": [[1.5]]}}', "application/json", 400, "input 'n': expected int64[?, 1], got float64 values"),
]


@pytest.mark.parametrize("model, body, content_type, status, fragment", ERROR_MATRIX)
def test_error_matrix_answers_one_clear_message(served, model, body, content_type, status, fragment):
    answer = post(served, model, body, content_type)
    assert answer.status == status, answer.body
    assert answer.json()["code"] == status and fragment in answer.json()["message"]


def test_body_over_max_request_size_is_413(served):
    """MMS answers 413 from the Content-Length and closes at once; a client still writing the body
    may then see a connection reset instead of the answer, so send the head and a first chunk only."""
    body = json.dumps([[0.5] * 4] * 1200).encode()
    assert len(body) > MAX_REQUEST
    head = (
        f"POST /predictions/mlp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", served.config.inference_port), timeout=30) as sock:
        sock.sendall(head + body[:4096])
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


def test_after_the_error_matrix_the_workers_are_untouched(served):
    assert served.ping() == "Healthy"
    for name, ids in served.workers_at_start.items():
        assert worker_ids(served, name) == ids, name
    assert len(served.worker_pids_at_start) == 4  # two models, one worker each: its process and its fork
    assert served.worker_pids() == served.worker_pids_at_start
    log = (served.log_dir / "mms_log.log").read_text()
    assert "Worker died" not in log and "Backend worker process died" not in log
    assert post(served, "mlp", b"[[1, 2, 3, 4]]").status == 200


def test_requests_go_through_our_frame_reader_and_leave_no_log_line_each_but_error_counts_stay(served):
    """The workers swapped in mms_handlers.wire's frame reader at load (so every test here ran through it) and left
    out MMS's PredictionTime line; log4j2.xml drops MMS's per-request lines (Backend response time, Requests2XX)
    but keeps the error matrix's Requests4XX."""
    for _ in range(5):
        assert post(served, "pair", json.dumps({"inputs": {"a": [[1.5, 2.5]], "n": [[4]]}}).encode()).status == 200
    log = (served.log_dir / "mms_log.log").read_text()
    assert log.count("MMS worker functions swapped by mms_handlers.worker_hooks: retrieve_msg, emit_metrics") == 2
    assert "Backend response time" not in log
    metrics = (served.log_dir / "mms_metrics.log").read_text()
    assert "Requests4XX" in metrics and "Requests2XX" not in metrics
    assert "PredictionTime" not in (served.log_dir / "model_metrics.log").read_text()


def test_concurrent_clients_form_batches_with_unbatched_answers(served):
    """16 threads post 96 requests (2 of them bad) to mlp at batch size 8: MMS groups them, the handler
    stacks each group into one onnxruntime run, and every answer equals the request's own run."""
    rng = np.random.default_rng(11)
    inputs = [rng.standard_normal((1 + i % 3, 4)).astype(np.float32) for i in range(96)]
    bad = {17, 60}
    answers: dict[int, Answer] = {}

    def client(indices: range) -> None:
        for i in indices:
            body = b'{"inputs": {"x": [[1, 2]]}}' if i in bad else json.dumps({"inputs": {"x": inputs[i].tolist()}}).encode()
            answers[i] = post(served, "mlp", body)

    threads = [threading.Thread(target=client, args=(range(k, 96, 16),)) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    import onnxruntime

    session = onnxruntime.InferenceSession(str(Path(served.config.model_store).parent / "registry/mlp/1/model.onnx"))
    for i, x in enumerate(inputs):
        if i in bad:
            assert answers[i].status == 400 and "got shape [1, 2]" in answers[i].json()["message"]
            continue
        assert answers[i].status == 200, answers[i].body
        (alone,) = session.run(["y"], {"x": x})
        np.testing.assert_allclose(answers[i].json()["outputs"]["y"], alone, rtol=0, atol=1e-6)

    batches = read_batches(served.log_dir / "model_metrics.log", "mlp")
    assert max(size for size, _ in batches.values()) > 1, batches
    stacked = [(size, runs) for size, runs in batches.values() if size > 1]
    # Every request MMS handed over together went into one onnxruntime run (all share the trailing dims).
    assert any(runs == 1 for size, runs in stacked), stacked


def test_a_bad_request_fails_alone_inside_a_real_batch(served):
    """8 clients released together (one sending a wrong shape) land in one MMS batch: the bad one
    gets its 400, its neighbours their 200s. Bursts repeat until the metrics show a shared batch."""
    x = np.full((1, 4), 0.25, np.float32)
    for _burst in range(5):
        barrier = threading.Barrier(BATCH)
        answers: dict[int, Answer] = {}

        def client(i: int) -> None:
            body = b'{"inputs": {"x": [[1, 2]]}}' if i == 3 else json.dumps({"inputs": {"x": x.tolist()}}).encode()
            barrier.wait()
            answers[i] = post(served, "mlp", body)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(BATCH)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bad_id = answers[3].headers["x-request-id"]
        batch = batch_holding(served.log_dir / "model_metrics.log", "mlp", bad_id)
        if len(batch) > 1:
            break
    assert len(batch) > 1, "the bad request never shared a batch"
    assert answers[3].status == 400 and "got shape [1, 2]" in answers[3].json()["message"]
    neighbours = [i for i in answers if i != 3 and answers[i].headers["x-request-id"] in batch]
    assert neighbours and all(answers[i].status == 200 for i in neighbours)
    for i in neighbours:
        np.testing.assert_allclose(answers[i].json()["outputs"]["y"], models.mlp_reference(x), atol=1e-6)


_METRIC = re.compile(r" - (BatchSize|EngineRuns)\.Count:(\d+)\|#ModelName:(\w+),.*requestID:([^,]+(?:,[^,]+)*),timestamp:")


def batch_holding(metrics_log: Path, model: str, request_id: str, wait: float = 10.0) -> tuple[str, ...]:
    """The request ids of the handler call that served `request_id`; MMS writes the metrics line
    a moment after the answer, so wait for it."""
    deadline = time.monotonic() + wait
    while True:
        batch = next((ids for ids in read_batches(metrics_log, model) if request_id in ids), ())
        if batch or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


def read_batches(metrics_log: Path, model: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """{request ids of one handler call: (BatchSize, EngineRuns)} from MMS's model_metrics.log."""
    found: dict[tuple[str, ...], dict[str, int]] = {}
    for line in metrics_log.read_text().splitlines():
        match = _METRIC.search(line)
        if match and match.group(3) == model:
            ids = tuple(match.group(4).split(","))
            found.setdefault(ids, {})[match.group(1)] = int(match.group(2))
    return {ids: (values.get("BatchSize", 0), values.get("EngineRuns", 0)) for ids, values in found.items()}
