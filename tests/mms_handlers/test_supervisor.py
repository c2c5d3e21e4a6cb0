"""The supervisor on a real MMS: a dead backend comes back, an unregistered model stays gone, and
stopping the server leaves no process behind (a restarted backend lives outside MMS's group)."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from mms_handlers.archive import build_archive
from mms_handlers.process_group import group_members, model_of
from mms_handlers.server import MmsServer, ServerConfig
from tests.conftest import free_port

from . import models

pytestmark = pytest.mark.integration


def start(tmp_path) -> MmsServer:
    store = tmp_path / "store"
    build_archive(models.mlp(tmp_path / "registry"), store)
    config = ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port(), runtime_dir=tmp_path / "mms")
    server = MmsServer(config).start()
    server.register("mlp.mar")
    return server


def predict(server: MmsServer) -> int:
    """The HTTP status of one prediction (0 when no answer came), so a caller can wait for a 200."""
    request = urllib.request.Request(
        f"{server.config.inference_url}/predictions/mlp", data=b"[[1, 2, 3, 4]]", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_model_of_reads_the_model_name_of_backend_processes_only():
    assert model_of(["python3", "/x/mms/model_service_worker.py", "--model-name", "mlp", "--tmp-dir", "/t"]) == "mlp"
    assert model_of(["python3", "/x/mms/model_service_worker.py", "--model-name"]) is None
    assert model_of(["java", "--model-name", "mlp"]) is None


def test_a_dead_backend_is_started_again_and_stop_leaves_nothing(tmp_path):
    server = start(tmp_path)
    try:
        first = server.worker_pids()
        assert predict(server) == 200
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: len(server.supervisor.recoveries) == 1 and len(server.worker_pids()) == len(first))
        assert not set(server.worker_pids()) & set(first)
        assert wait_for(lambda: predict(server) == 200)
        restarted_groups = [process.pid for process in server.supervisor.started]
        assert restarted_groups and all(group_members(pgid) for pgid in restarted_groups)
    finally:
        server.stop()
    assert all(group_members(pgid) == [] for pgid in restarted_groups)


def test_an_unregistered_model_is_not_brought_back(tmp_path):
    server = start(tmp_path)
    try:
        assert server.worker_pids()
        request = urllib.request.Request(f"{server.config.management_url}/models/mlp", method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        assert wait_for(lambda: server.worker_pids() == [])
        time.sleep(4 * server.supervisor.interval + 0.5)  # several supervisor rounds
        assert server.supervisor.recoveries == [] and server.worker_pids() == []
    finally:
        server.stop()
