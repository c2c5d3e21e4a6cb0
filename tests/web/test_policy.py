"""policy.js's pure functions, run in the browser: which runtime and backends model.json allows."""

from __future__ import annotations

import pytest

from .registry_models import verified_table

pytestmark = [pytest.mark.integration]

CHOOSE = """async (edge) => {
  const { chooseEdgeRuntime, DEFAULT_POLICY } = await import('/src/policy.js');
  try {
    return chooseEdgeRuntime({ name: 'm', version: '1', edge }, DEFAULT_POLICY);
  } catch (error) {
    return { error: error.message };
  }
}"""

TABLE = {
    "file": "model.edge.onnx",
    "passed": True,
    "results": [
        {"runtime": "onnxjs", "backend": "cpu", "passed": True},
        {"runtime": "onnxjs", "backend": "wasm", "passed": True},
        {"runtime": "onnxjs", "backend": "webgl", "passed": False},
        {"runtime": "onnxruntime-web", "backend": "wasm", "passed": True},
    ],
}


@pytest.mark.parametrize(
    "edge, expected",
    [
        ({"file": "model.onnx", "runtime": "onnxjs", "verified": {}}, {"runtime": "onnxjs", "backends": ["wasm", "cpu", "webgl"]}),
        ({"file": "model.onnx", "runtime": "onnxruntime-web", "verified": {}}, {"runtime": "onnxruntime-web", "backends": ["wasm"]}),
        # only the backends that passed, in the policy's order
        (
            {"file": "model.onnx", "runtime": "onnxjs", "verified": verified_table("model.onnx", cpu=True, webgl=False)},
            {"runtime": "onnxjs", "backends": ["cpu"]},
        ),
        # the table `edgecloud verify` records
        ({"file": "model.edge.onnx", "runtime": "onnxjs", "verified": TABLE}, {"runtime": "onnxjs", "backends": ["wasm", "cpu"]}),
        # a table about another file says nothing; the static check's backends decide
        ({"file": "model.onnx", "runtime": "onnxjs", "backends": ["cpu"], "verified": TABLE}, {"runtime": "onnxjs", "backends": ["cpu"]}),
        # every ONNX.js backend failed in the browser: onnxruntime-web runs it
        (
            {"file": "model.onnx", "runtime": "onnxjs", "verified": verified_table("model.onnx", cpu=False, wasm=False, webgl=False)},
            {"runtime": "onnxruntime-web", "backends": ["wasm"]},
        ),
        ({"runtime": "onnxjs"}, {"error": "model.json of m v1 names no edge file"}),
    ],
)
def test_runtime_and_backends_follow_model_json(page, site, edge, expected):
    page.goto(f"{site.url}/harness/index.html")
    assert page.evaluate(CHOOSE, edge) == expected
