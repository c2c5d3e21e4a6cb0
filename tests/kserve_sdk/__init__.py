"""The kserve SDK, for tests that check we speak KServe: it lives in its own venv
(`make kserve-client`, pinned in requirements.txt) because kserve 0.21 requires protobuf < 7 and
the project's environment has protobuf 7.36 (onnx, onnxruntime, TensorFlow), so each check here is
a script that venv runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE.parents[1] / ".edgecloud" / "kserve-client" / "bin" / "python"


def run(script: str, document: object) -> tuple[int, str]:
    """Run `script` (a file beside this one) under the kserve venv with `document` as JSON on stdin."""
    if not VENV_PYTHON.exists():
        pytest.fail(f"the kserve SDK venv is missing ({VENV_PYTHON}): run `make kserve-client` (part of make setup)")
    done = subprocess.run([str(VENV_PYTHON), str(HERE / script)], input=json.dumps(document), capture_output=True, text=True, timeout=120)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr)
        pytest.fail(f"{script} crashed under the kserve venv (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return done.returncode, done.stdout.strip()
