"""Helpers for version rollouts: versions whose answers name them, publishing into a registry folder,
and a closed-loop load of concurrent clients that records every answer."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from onnx import TensorProto, helper

from registry import Registry
from tests.builders import write_version_dir

X = [[0.5, -1.0, 2.0, 0.0]]


def plus_model(version: int):
    """y = x + version: an answer's values say which version computed it, whatever model_version says."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    c = helper.make_tensor("c", TensorProto.FLOAT, [1], [float(version)])
    graph = helper.make_graph([helper.make_node("Add", ["x", "c"], ["y"])], "plus", [x], [y], [c])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13)])


def version_of(outputs: dict) -> int:
    """The version whose model computed `outputs` (y - x)."""
    difference = np.array(outputs["y"]) - np.array(X)
    return round(float(difference.mean()))


def set_latest(registry: Path, name: str, version: int | str) -> None:
    """Move NAME/latest.json atomically to any value, a broken one included (Registry.set_latest checks
    first, so a test of what a replica does with a bad latest.json writes it itself)."""
    path = Path(registry) / name / "latest.json"
    partial = path.with_name(".latest.json.partial")
    partial.write_text(json.dumps({"name": name, "version": str(version)}))
    os.replace(partial, path)


def publish(registry: Path, name: str, version: int, *, latest: bool = True) -> Path:
    """Publish version `version` of the plus model through the registry (staged, renamed into place),
    moving latest.json to it unless `latest` is False."""
    store = Registry(registry)
    with tempfile.TemporaryDirectory() as tmp, store.stage(name, version) as staging:
        built = write_version_dir(Path(tmp) / str(version), name, plus_model(version))
        for file in built.iterdir():
            shutil.copy2(file, staging.path / file.name)
        store.publish(staging, make_latest=latest)
    return store.version_dir(name, version)


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic() when the request was sent
    path: str
    status: int
    version: int | None  # from the values
    model_version: str | None  # what the body says


def body_for(path: str) -> bytes:
    if path.startswith("/v2/"):
        return json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": X[0]}]}).encode()
    return json.dumps({"inputs": {"x": X}}).encode()


def read_answer(path: str, status: int, payload: bytes, started: float) -> Answer:
    if status != 200:
        return Answer(started, path, status, None, None)
    body = json.loads(payload)
    if path.startswith("/v2/"):
        outputs = {out["name"]: np.array(out["data"]).reshape(out["shape"]) for out in body["outputs"]}
    else:
        outputs = body["outputs"]
    return Answer(started, path, status, version_of(outputs), str(body.get("model_version")))


def ask(base: str, path: str) -> Answer:
    """One request on a fresh connection."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        started = time.monotonic()
        connection.request("POST", path, body_for(path), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return read_answer(path, response.status, response.read(), started)
    finally:
        connection.close()


class Load:
    """`clients` threads, each sending one request after the other over its own keep-alive connection;
    a connection error counts as status 0 (a failed request) and the client reconnects."""

    def __init__(self, base: str, paths: list[str], clients: int = 32) -> None:
        self.base, self.paths, self.clients = urlsplit(base), paths, clients
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)

    def _client(self, index: int) -> None:
        path = self.paths[index % len(self.paths)]
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=60)
                connection.request("POST", path, body_for(path), {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = read_answer(path, response.status, response.read(), started)
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                answer = Answer(started, path, 0, None, None)
                if connection is not None:
                    connection.close()
                connection = None
            with self._lock:
                self.answers.append(answer)
        if connection is not None:
            connection.close()

    def failed(self) -> list[Answer]:
        with self._lock:
            return [answer for answer in self.answers if answer.status != 200]

    def count(self) -> int:
        with self._lock:
            return len(self.answers)


def wait_for_version(base: str, paths: list[str], version: int, limit_s: float = 180.0) -> float:
    """Poll until every path answers with `version`; the time it was first seen on all (monotonic).
    Fails after `limit_s`: a generous bound for a loaded machine, not a timing assertion."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if all(ask(base, path).version == version for path in paths):
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"{paths} did not answer with version {version} within {limit_s:.0f} s")
