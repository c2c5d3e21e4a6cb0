"""The servers the cloud benchmark loads besides MMS: the seed's Flask app under gunicorn.

Each runs in its own process group so stopping it leaves nothing behind; ports come from MMS's
`free_port` (below 32768, which MMS 1.1.11 needs; one rule for every peer keeps it simple).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mms_handlers.ports import free_port
from mms_handlers.process_group import stop_process_group

GUNICORN_WORKERS = 2


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200; fail early if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


class FlaskPeer:
    """benchmarks.flask_app under gunicorn (sync workers), serving the given ONNX files."""

    def __init__(self, models: dict[str, Path], workers: int = GUNICORN_WORKERS) -> None:
        self.models = {name: str(Path(path).resolve()) for name, path in models.items()}
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="edgecloud-gunicorn-", suffix=".log", delete=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "FlaskPeer":
        env = dict(os.environ, EDGECLOUD_BENCH_MODELS=json.dumps(self.models))
        repo = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            "benchmarks.flask_app:app",
        ]
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_for_http(f"{self.url}/ping", 60, self.process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process_group(process)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
