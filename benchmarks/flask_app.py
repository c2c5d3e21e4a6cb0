"""The seed's approach, as the peer MMS is measured against: a small Flask JSON API on onnxruntime.

Run under gunicorn (`gunicorn -w 2 benchmarks.flask_app:app`). The model files come from
`EDGECLOUD_BENCH_MODELS` (JSON `{"name": "path/to/model.onnx"}`); the request and answer are the
same plain JSON as MMS (`{"inputs": {"x": [[...]]}}` → `{"outputs": {"y": [[...]]}}`), and
onnxruntime gets one intra-op thread per worker like our MMS handler.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime
from flask import Flask, Response, jsonify, request

MODELS_ENV = "EDGECLOUD_BENCH_MODELS"


def _session(path: str) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


app = Flask(__name__)
_sessions = {name: _session(path) for name, path in json.loads(os.environ.get(MODELS_ENV, "{}")).items()}
_input_types = {
    name: {i.name: np.float32 if i.type == "tensor(float)" else np.int64 for i in session.get_inputs()}
    for name, session in _sessions.items()
}


@app.get("/ping")
def ping() -> Response:
    return jsonify(status="Healthy")


@app.post("/predictions/<name>")
def predict(name: str) -> Response | tuple[Response, int]:
    session = _sessions.get(name)
    if session is None:
        return jsonify(code=404, message=f"unknown model {name!r}"), 404
    try:
        inputs = request.get_json(force=True)["inputs"]
        feeds = {key: np.asarray(inputs[key], dtype=dtype) for key, dtype in _input_types[name].items()}
        outputs = session.run(None, feeds)
    except Exception as error:  # noqa: BLE001 - the seed answered any failure with a 400
        return jsonify(code=400, message=f"{type(error).__name__}: {error}"), 400
    names = [output.name for output in session.get_outputs()]
    return jsonify(outputs={key: value.tolist() for key, value in zip(names, outputs)})
