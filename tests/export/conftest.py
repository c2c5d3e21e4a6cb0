"""Zoo models are built, and exported, once per session, on first use, into the session's work folder."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Callable

import pytest

from tests.export.zoo import build, export_flags


@pytest.fixture(scope="session")
def zoo_model(workdir: Path) -> Callable[[str], tuple[Path, Path]]:
    """`zoo_model(name)` → (model path, sample path), built on first request and then reused."""
    built: dict[str, tuple[Path, Path]] = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in built:
            built[name] = build(name, workdir / "zoo")
        return built[name]

    return get


@pytest.fixture(scope="session")
def zoo_export(zoo_model, workdir: Path) -> Callable[[str], tuple[int, str, Path]]:
    """`zoo_export(name)` → (exit code, stderr, version folder) of `edgecloud export` on zoo model `name`,
    run once per session: the export test and the browser zoo judge the same export."""
    from edgecloud.cli import main as cli
    from tests.export.zoo import ZOO

    done: dict[str, tuple[int, str, Path]] = {}

    def get(name: str) -> tuple[int, str, Path]:
        if name not in done:
            model_path, sample_path = zoo_model(name)
            registry = workdir / "zoo-registry"
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = cli(
                    [
                        "export",
                        str(model_path),
                        "--sample",
                        str(sample_path),
                        "--name",
                        name,
                        "--out",
                        str(registry),
                        *export_flags(ZOO[name].framework),
                    ]
                )
            done[name] = (code, err.getvalue(), registry / name / "1")
        return done[name]

    return get


# Parity figures of the zoo exports, printed at the end of the run (docs/lowering.md quotes them).
ZOO_PARITY: dict[str, tuple[str, float, int]] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if not ZOO_PARITY:
        return
    terminalreporter.section("zoo export parity (source framework vs onnxruntime, max |diff|)")
    for name, (framework, figure, compared) in sorted(ZOO_PARITY.items()):
        terminalreporter.write_line(f"{name:28s} {framework:8s} {figure:.2e}  over {compared} inputs")
