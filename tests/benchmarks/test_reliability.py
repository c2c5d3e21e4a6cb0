"""What a real MMS survives: a few seconds of sustained load, and a worker killed with SIGKILL under load.

The same functions run for 60 s in `make soak` (benchmarks/reliability.py); here they run for a
few seconds on the handler tests' small MLP, served by 2 workers at batch size 1.
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.load_client import ClosedLoop, run_for
from benchmarks.reliability import kill_under_load, main, soak
from mms_handlers.archive import build_archive
from mms_handlers.server import MmsServer, ServerConfig
from tests.conftest import free_port
from tests.mms_handlers import models

pytestmark = pytest.mark.integration

BODY = b'{"inputs": {"x": [[0.5, -1.0, 2.0, 0.25]]}}'
WORKERS = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    store = root / "store"
    build_archive(models.mlp(root / "registry"), store)
    config = ServerConfig(
        model_store=store,
        inference_port=free_port(),
        management_port=free_port(),
        workers=WORKERS,
        batch_size=1,
        job_queue_size=256,
        runtime_dir=root / "mms",
    )
    with MmsServer(config) as server:
        server.register("mlp.mar")
        yield server


def test_sustained_load_has_no_errors_and_flat_memory(served):
    report = soak(served, "mlp", BODY, seconds=8.0, concurrency=32, warmup_fraction=0.4)
    print(
        f"\nsoak 8 s at c=32: {report.requests} requests, {report.requests_per_s} req/s, errors {report.errors}, "
        f"Java {report.java_mb_after_warmup} MB ({report.java_growth_pct:+} %), "
        f"workers {report.workers_mb_after_warmup} MB ({report.workers_growth_pct:+} %)"
    )
    assert report.requests > 100
    assert report.errors == 0 and report.statuses == {"200": report.requests}
    assert len(report.samples) >= 8 and all(s.java_kb > 0 and s.workers_kb > 0 for s in report.samples)
    assert report.java_growth_pct <= 10.0, report.samples
    assert report.workers_growth_pct <= 10.0, report.samples
    assert served.ping() == "Healthy"


def test_a_worker_killed_under_load_is_replaced_and_only_its_request_fails(served):
    forks_before = served.handler_pids()
    assert len(forks_before) == WORKERS
    report = kill_under_load(served, "mlp", BODY, concurrency=16, target="worker", timeout_s=10.0)
    print(
        f"\nkill -9 at c=16: {report.requests} requests, {report.failures} failed of {report.in_flight_at_kill} "
        f"in flight, worker replaced after {report.restarted_s} s, new worker answering after {report.recovered_s} s"
    )
    assert report.unfinished == 0 and report.longest_request_s <= report.timeout_s
    # MMS fails only what the dead process held: at batch size 1, one request at most, with MMS's JSON message.
    # Which one is the kernel's timing: the process may still take a request sent after os.kill() returned
    # (seen: 1 of 7,631), so when it started is not asserted (docs/reliability.md; a replica retries it).
    assert report.failures <= 1
    assert set(report.failure_statuses) <= {"500 Worker died."}, report.failure_statuses
    assert math.isfinite(report.restarted_s) and math.isfinite(report.recovered_s)
    assert report.healthy_after == "Healthy"
    forks_after = served.handler_pids()
    assert len(forks_after) == WORKERS and forks_after != forks_before


def test_a_killed_backend_is_started_again_by_the_supervisor_and_its_queue_served(served):
    """MMS 1.1.11 alone would retry the dead backend's socket with a growing back-off while /ping says Healthy."""
    recoveries = len(served.supervisor.recoveries)
    report = kill_under_load(served, "mlp", BODY, concurrency=16, target="backend", timeout_s=10.0)
    print(
        f"\nbackend kill -9 at c=16: {report.requests} requests, {report.failures} failed of {report.in_flight_at_kill} "
        f"in flight ({report.failure_statuses}), serving again after {report.recovered_s} s"
    )
    assert [r.model for r in served.supervisor.recoveries[recoveries:]] == ["mlp"]
    assert served.supervisor.recoveries[-1].error is None
    assert report.unfinished == 0 and report.longest_request_s <= report.timeout_s
    # Only the requests the dead processes held fail (one per handler process at batch size 1); those queued
    # meanwhile are answered, none times out.
    assert report.failures <= WORKERS
    assert set(report.failure_statuses) <= {"500 Worker died."}, report.failure_statuses
    assert math.isfinite(report.recovered_s) and report.healthy_after == "Healthy"
    assert len(served.handler_pids()) == WORKERS


def test_a_flood_past_the_queue_gets_quick_503s_and_leaves_the_workers_alone(tmp_path):
    """64 clients against a queue of 2: the excess is refused at once with MMS's JSON 503, nothing dies."""
    store = tmp_path / "store"
    build_archive(models.mlp(tmp_path / "registry"), store)
    config = ServerConfig(
        model_store=store, inference_port=free_port(), management_port=free_port(), job_queue_size=2, runtime_dir=tmp_path / "mms"
    )
    with MmsServer(config) as server:
        server.register("mlp.mar")
        pids = server.worker_pids()
        loop = ClosedLoop(f"{config.inference_url}/predictions/mlp", BODY, concurrency=64, timeout_s=10.0)
        outcomes = run_for(3.0, loop)
        statuses = {outcome.status for outcome in outcomes}
        refused = [outcome for outcome in outcomes if outcome.status == 503]
        print(f"\nflood of 64 clients on a queue of 2: {len(outcomes)} requests, {len(refused)} refused with 503")
        assert statuses <= {200, 503} and refused and any(o.ok for o in outcomes), statuses
        assert "Consider increasing job queue size" in json.loads(refused[0].body)["message"] and loop.unfinished == 0
        assert server.ping() == "Healthy" and server.worker_pids() == pids


@pytest.mark.parametrize(
    "argv, fragment",
    [(["--seconds", "0"], "--seconds must be more than 0, got 0"), (["--kill-concurrency", "0"], "--kill-concurrency must be at least 1")],
)
def test_the_soak_command_refuses_bad_options_before_doing_anything(capsys, argv, fragment):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and fragment in err and "Traceback" not in err
