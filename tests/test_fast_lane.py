"""The fast lane's promise that `tests/conftest.py` loads nothing heavy: one part's tests (here the
aggregator's, which need no ONNX) collect and run in an environment where onnx, onnxruntime, the
training frameworks and Playwright cannot even be imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("onnx", "onnxruntime", "torch", "tensorflow", "keras", "mxnet", "sklearn", "playwright")


def test_the_aggregators_tests_collect_and_pass_without_onnx() -> None:
    # sys.modules[name] = None makes `import name` raise ImportError: as if it were not installed.
    script = (
        f"import sys\nfor name in {HEAVY!r}: sys.modules[name] = None\n"
        "import pytest\nsys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/aggregation']))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "error" not in result.stdout.lower(), result.stdout[-2000:]
