"""The aggregator's image carries no training framework: everything `edgecloud aggregate` imports
(the federation, federated versions, the export pipeline they reach) must load without them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("torch", "tensorflow", "keras", "tf2onnx", "mxnet", "sklearn", "skl2onnx", "onnxscript")


def test_the_aggregator_imports_without_a_training_framework() -> None:
    # sys.modules[name] = None makes `import name` raise ImportError: as if it were not installed.
    script = (
        f"import sys\nfor name in {FRAMEWORKS!r}: sys.modules[name] = None\n"
        "import edgecloud.commands.aggregate, edgecloud.federation, export.federated_version\nprint('imported')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr[-2000:]
