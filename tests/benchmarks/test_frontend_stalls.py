"""benchmarks.frontend_stalls without MMS: the JVM log it parses, the worker-side wrapper it installs,
and how it counts moments when both workers waited."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks.frontend_stalls import SITECUSTOMIZE, WAITS_ENV, Wait, joint_waits, jvm_pauses, read_waits, summary
from mms_handlers import wire

JVM_LOG = """\
[0.461s][info][safepoint] Safepoint "ICBufferFull", Time since last: 336701256 ns, Reaching safepoint: 3606 ns, Cleanup: 155271 ns, At safepoint: 1442 ns, Total: 160319 ns
[0.552s][info][gc       ] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 25M->4M(512M) 7.812ms
[0.553s][info][safepoint] Safepoint "G1CollectForAllocation", Time since last: 83519779 ns, Reaching safepoint: 2914 ns, Cleanup: 42093 ns, At safepoint: 7976908 ns, Total: 8021915 ns
"""


def test_every_safepoint_of_the_jvm_log_is_a_pause_with_its_length() -> None:
    assert jvm_pauses(JVM_LOG) == [("ICBufferFull", 0.160319), ("G1CollectForAllocation", 8.021915)]


def test_only_waits_of_two_workers_overlapping_by_the_threshold_count_as_both_waiting() -> None:
    waits = [
        Wait(1, 10.000, 10.012, 0.0),
        Wait(2, 10.004, 10.015, 0.0),  # overlaps worker 1 by 8 ms
        Wait(1, 20.000, 20.010, 0.0),
        Wait(2, 20.008, 20.020, 0.0),  # overlaps by 2 ms only
        Wait(1, 30.000, 30.010, 0.0),
        Wait(1, 30.002, 30.012, 0.0),  # the same worker: not two workers waiting
    ]
    assert joint_waits(waits, 0.005) == 1
    figures = summary(waits, [("G1CollectForAllocation", 8.0), ("ICBufferFull", 0.2)], 0.005)
    assert figures["worker_waits_over_threshold"] == 6 and figures["both_workers_waiting"] == 1
    assert figures["jvm_pauses"] == 2 and figures["jvm_pauses_over_threshold"] == 1 and figures["jvm_pause_max_ms"] == 8.0


def test_the_worker_side_wrapper_logs_a_long_wait_and_a_long_hold_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delays = iter([0.03, 0.0, 0.0])

    def slow_reader(conn):
        time.sleep(next(delays))
        return {"conn": conn}

    monkeypatch.setattr(wire, "retrieve_msg", slow_reader)
    monkeypatch.setenv(WAITS_ENV, str(tmp_path))
    monkeypatch.setenv(f"{WAITS_ENV}_MS", "10")
    exec(compile(SITECUSTOMIZE, "sitecustomize.py", "exec"), {})
    assert wire.retrieve_msg is not slow_reader
    assert wire.retrieve_msg("a") == {"conn": "a"}  # waited 30 ms: logged
    time.sleep(0.03)  # the handler holds the request 30 ms: logged with the next read
    wire.retrieve_msg("b")
    wire.retrieve_msg("c")  # neither waited nor held: not logged
    waits = read_waits(tmp_path)
    assert len(waits) == 2
    assert waits[0].waited >= 0.03 and waits[0].held == 0.0
    assert waits[1].waited < 0.01 and waits[1].held >= 0.03
