"""The layering rule of DESIGN.md, checked on the source: edgecloud -> export, mms_handlers;
`mms_handlers` never imports `export` or a training framework (an MMS worker must start without
them); `export` never imports the serving side. Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAINING_FRAMEWORKS = {"tensorflow", "keras", "torch", "sklearn", "tf2onnx", "skl2onnx", "onnxscript", "keras_tuner"}
FORBIDDEN = {
    "mms_handlers": {"export", "edgecloud", "aggregation", "benchmarks", "tests"} | TRAINING_FRAMEWORKS,
    "export": {"mms_handlers", "edgecloud", "aggregation", "benchmarks", "tests"},
    # The aggregator averages arrays and keeps rounds; making and serving versions is edgecloud's.
    "aggregation": {"export", "edgecloud", "mms_handlers", "onnx", "onnxruntime", "benchmarks", "tests"} | TRAINING_FRAMEWORKS,
    "edgecloud": {"benchmarks", "tests"},
}


def imported_roots(package: str) -> dict[str, set[str]]:
    """{top-level module imported: files of `package` importing it}; relative imports stay inside and are skipped."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_may(package: str) -> None:
    imports = imported_roots(package)
    assert "numpy" in imports, f"the import scan found nothing in {package}/"  # the scan itself works
    broken = {name: sorted(files) for name, files in imports.items() if name in FORBIDDEN[package]}
    assert not broken, f"{package}/ imports what its layer must not: {broken}"


def test_scan_sees_imports_inside_functions() -> None:
    # mms_handlers imports onnxruntime at module level in engines/ort.py but mxnet only lazily,
    # inside a function: both must be seen, or a lazy `import torch` would slip through.
    imports = imported_roots("mms_handlers")
    assert {"onnxruntime", "mxnet"} <= imports.keys()
