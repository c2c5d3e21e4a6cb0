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
    # The registry's layout is a leaf every other package may use: it imports none of them.
    "registry": {"export", "edgecloud", "aggregation", "mms_handlers", "onnx", "onnxruntime", "numpy", "benchmarks", "tests"}
    | TRAINING_FRAMEWORKS,
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
    assert imports, f"the import scan found nothing in {package}/"  # the scan itself works
    broken = {name: sorted(files) for name, files in imports.items() if name in FORBIDDEN[package]}
    assert not broken, f"{package}/ imports what its layer must not: {broken}"


def test_scan_sees_imports_inside_functions() -> None:
    # mms_handlers imports onnxruntime at module level in engines/ort.py but mxnet only lazily,
    # inside a function: both must be seen, or a lazy `import torch` would slip through.
    imports = imported_roots("mms_handlers")
    assert {"onnxruntime", "mxnet"} <= imports.keys()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(package: str) -> dict[str, set[str]]:
    """{module: modules of the same package it imports}, every import counted (also lazy ones)."""
    modules = {module_name(path): path for path in sorted((REPO / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
                module = ".".join(filter(None, [base, node.module or ""]))
                for alias in node.names:  # `from . import x` / `from .a import b`: x or a.b may be a module
                    targets.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_cycle_inside_a_package(package: str) -> None:
    graph = internal_imports(package)
    assert sum(map(len, graph.values())) >= min(6, len(graph) - 1), f"the scan found no internal import in {package}/"
    assert cycles(graph) == [], f"modules of {package}/ import each other in a cycle: {cycles(graph)}"


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
