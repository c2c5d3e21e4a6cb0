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
