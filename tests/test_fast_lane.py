"""What runs without the heavy packages, checked in an interpreter where they cannot even be imported:
the fast lane's promise that `tests/conftest.py` loads nothing heavy (the aggregator's tests run
without onnx, onnxruntime, the frameworks or Playwright), and the aggregator image's promise that
`edgecloud aggregate` loads no training framework (the image carries none)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("onnx", "onnxruntime", "torch", "tensorflow", "keras", "mxnet", "sklearn", "playwright")
FRAMEWORKS = ("torch", "tensorflow", "keras", "tf2onnx", "mxnet", "sklearn", "skl2onnx", "onnxscript")


def run_without(modules: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    # sys.modules[name] = None makes `import name` raise ImportError: as if it were not installed.
    script = f"import sys\nfor name in {modules!r}: sys.modules[name] = None\n{code}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_aggregators_tests_collect_and_pass_without_onnx() -> None:
    result = run_without(HEAVY, "import pytest\nsys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/aggregation']))")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "error" not in result.stdout.lower(), result.stdout[-2000:]


def test_the_aggregator_imports_without_a_training_framework() -> None:
    result = run_without(
        FRAMEWORKS, "import edgecloud.commands.aggregate, edgecloud.federation, export.federated_version\nprint('imported')"
    )
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr[-2000:]
