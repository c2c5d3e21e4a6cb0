"""Where the browser files live, wherever the package is run from."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def web_root() -> Path:
    """`web_onnxjs/` (override with EDGECLOUD_WEB_ROOT)."""
    return Path(os.environ.get("EDGECLOUD_WEB_ROOT", REPO_ROOT / "web_onnxjs"))


def node_modules() -> Path:
    return web_root() / "node_modules"
