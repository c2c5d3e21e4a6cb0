"""The servers the cloud benchmark loads besides MMS: the seed's Flask app under gunicorn.

Each runs in its own process group so stopping it leaves nothing behind; ports are picked
below 32768 because MMS 1.1.11 refuses higher ones (one rule for every peer keeps it simple).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

GUNICORN_WORKERS = 2


def free_port() -> int:
    """A free loopback port below 32768."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


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


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process group (launcher, java, workers), wait until it is gone, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(process.pid):
            process.poll()  # reap the launcher so a zombie does not keep the group alive
            time.sleep(0.1)
        if not _group_alive(process.pid):
            break
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


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
        command = [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
                   "--log-level", "warning", "benchmarks.flask_app:app"]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
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
