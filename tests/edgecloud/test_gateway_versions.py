"""`edgecloud serve --replicas 2` and versions: every replica watches the registry, so a version published
while 32 clients call the gateway reaches every replica with no failed request; and when serve stops,
no process of the run is left, also those started again after a kill (issue 23, item 8: with the
replica's SIGTERM-while-starting handling and the replica set's sweep both removed, this test finds
the orphaned `mms.model_server` launcher and its java, as the issue saw them)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from edgecloud.gateway.replicas import MMS_LOG_VARIABLE
from edgecloud.gateway.stack import GatewayOptions, GatewayStack
from mms_handlers.archive import build_archive
from mms_handlers.process_group import (
    arguments,
    group_members,
    model_of,
    parent_pid,
    processes_with_env,
)
from mms_handlers.server import ServerConfig
from mms_handlers.settings import ServingSettings
from tests.conftest import consecutive_free_ports, free_port
from tests.mms_handlers.replica.rollout import Load, ask, publish, wait_for_version

pytestmark = pytest.mark.integration

NAME = "plus"
PATHS = [f"/predictions/{NAME}", f"/v2/models/{NAME}/infer"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway-versions")
    registry = root / "registry"
    build_archive(publish(registry, NAME, 1), root / "store")
    base = consecutive_free_ports(4)
    server = ServerConfig(model_store=root / "store", inference_port=base, management_port=base + 1, java_heap_mb=256)
    options = GatewayOptions(
        server=server,
        registry=registry,
        replicas=2,
        gateway_port=consecutive_free_ports(3),  # and the replicas' front doors, gateway + 1 and + 2
        web_port=free_port(),
        settings=ServingSettings(drain_seconds=1.0),
    )
    stack = GatewayStack(options, runtime_dir=root / "run").start()
    stack.registry = registry
    yield stack
    stack.stop()


def test_a_version_published_under_load_reaches_every_replica_with_no_failed_request(stack):
    replicas = [replica.url for replica in stack.replica_set.replicas]
    assert {ask(url, PATHS[0]).version for url in replicas} == {1}
    with Load(stack.url, PATHS, clients=32) as load:
        while load.count() < 64:
            time.sleep(0.05)
        published = time.monotonic()
        publish(stack.registry, NAME, 2)
        reached = [wait_for_version(url, PATHS, 2) for url in replicas]
        seen = wait_for_version(stack.url, PATHS, 2)
        count_at_seen = load.count()
        while load.count() < count_at_seen + 200:
            time.sleep(0.05)
    assert load.failed() == [], f"{len(load.failed())} of {load.count()} failed: {load.failed()[:3]}"
    assert {a.version for a in load.answers if a.started >= max([seen, *reached])} == {2}
    print(
        f"\npublish → every replica answering version 2: {max(reached) - published:.2f} s "
        f"(replicas {', '.join(f'{t - published:.2f}' for t in reached)} s); {load.count()} requests, 0 failed"
    )


def test_serve_stopping_leaves_no_process_after_restarts(stack):
    first, second = stack.replica_set.replicas
    # A backend killed: the replica's supervisor starts it again, in a process group of its own.
    backend = next(iter(_backends(first)))
    os.kill(backend, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while (not _backends(first) or backend in _backends(first)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _backends(first) and backend not in _backends(first)
    # A replica's whole MMS killed: the replica exits and the replica set starts it again; serve is
    # stopped while that replica is still starting its new MMS (before it could name MMS's group).
    starts = second.starts
    group = second.mms_group()
    assert group is not None and group_members(group)
    os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + 180
    while not (second.starts > starts and processes_with_env(MMS_LOG_VARIABLE, second.runtime_dir)):
        assert time.monotonic() < deadline, "the replica was not started again"
        time.sleep(0.05)
    assert not second.ready()
    run = stack.runtime_dir
    assert processes_with_env(MMS_LOG_VARIABLE, run)  # the run's MMS processes are found this way
    stack.stop()
    left = processes_with_env(MMS_LOG_VARIABLE, run)
    replicas_left = [r.process.pid for r in stack.replica_set.replicas if r.process and r.process.poll() is None]
    assert left == [] and replicas_left == []


def _backends(replica) -> set[int]:
    """PIDs of the MMS model backends of one replica (processes running MMS's worker script)."""
    return {pid for pid in processes_with_env(MMS_LOG_VARIABLE, replica.root) if model_of(arguments(pid)) is not None and _is_backend(pid)}


def _is_backend(pid: int) -> bool:
    """A backend is the worker process whose parent is not itself a worker (its forks run the handler)."""
    return model_of(arguments(parent_pid(pid))) is None
