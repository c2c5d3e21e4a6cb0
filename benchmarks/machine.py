"""What a result depends on: the machine (CPU, cores, memory, load), the versions of every part, the date."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from edgecloud.browser import CHROMIUM
from edgecloud.paths import node_modules

from .loadtest import wrk_version


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    # `java -version` prints on stderr; the chromium wrapper prints shell noise on stderr.
    text = done.stdout.strip() or done.stderr.strip()
    return text.splitlines()[0].strip() if text else "?"


def _read(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def _npm(name: str) -> str:
    try:
        return json.loads((node_modules() / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "missing"


def machine() -> dict[str, str]:
    memory_kb = _read("/proc/meminfo", "MemTotal").split()[0]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": _read("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory_kb) / 1024 / 1024:.1f} GiB" if memory_kb.isdigit() else "?",
        "os": platform.platform(),
        "load average at start (1, 5, 15 min)": ", ".join(f"{value:.2f}" for value in load),
    }


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "onnxruntime": _package("onnxruntime"),
        "onnx": _package("onnx"),
        "multi-model-server": _package("multi-model-server"),
        "java": _first_line(["java", "-version"]),
        "flask / gunicorn": f"{_package('flask')} / {_package('gunicorn')}",
        "keras / tf2onnx": f"{_package('keras')} / {_package('tf2onnx')}",
        "chromium": _first_line([CHROMIUM, "--version"]),
        "playwright": _package("playwright"),
        "onnxjs": _npm("onnxjs"),
        "onnxruntime-web": _npm("onnxruntime-web"),
        "wrk": wrk_version(),
    }


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
