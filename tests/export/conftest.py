"""Zoo models are built once per session, on first use, into the session's work folder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.export.zoo import build


@pytest.fixture(scope="session")
def zoo_model(workdir: Path) -> Callable[[str], tuple[Path, Path]]:
    """`zoo_model(name)` → (model path, sample path), built on first request and then reused."""
    built: dict[str, tuple[Path, Path]] = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in built:
            built[name] = build(name, workdir / "zoo")
        return built[name]

    return get


# Parity figures of the zoo exports, printed at the end of the run (docs/lowering.md quotes them).
ZOO_PARITY: dict[str, tuple[str, float, int]] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if not ZOO_PARITY:
        return
    terminalreporter.section("zoo export parity (source framework vs onnxruntime, max |diff|)")
    for name, (framework, figure, compared) in sorted(ZOO_PARITY.items()):
        terminalreporter.write_line(f"{name:28s} {framework:8s} {figure:.2e}  over {compared} inputs")
