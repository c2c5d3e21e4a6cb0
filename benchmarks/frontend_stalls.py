"""`python -m benchmarks.frontend_stalls`: where MMS's slowest requests at 32 clients wait.

At c=32 on two cores MMS's p99 swings from run to run (8–44 ms against Flask's steady 10–15 ms in
docs/benchmarks-hot-path.md) while its median stays put. This runs one MMS at the project's settings
and loads one model with wrk in several runs, and records, beside each run's p50/p99:

- the JVM's own pauses (`-Xlog:gc,safepoint`): every stop-the-world pause, its length;
- the Python workers' view (a `sitecustomize` on the workers' PYTHONPATH wraps the frame reader
  `mms_handlers.wire.retrieve_msg`): each time a worker waited more than `--stall-ms` for its next
  request frame, or spent more than that between receiving a request and asking for the next.

A worker that waits for its next frame while 30 of the 32 clients' requests are outstanding waits
on the Java side of its socket (netty, the job queue, the hand-over to the worker thread). When
both workers wait at the same moment, nothing on the Python side holds the requests. So the run
tells apart a frontend stall (both workers waiting, no JVM pause at that moment), a JVM pause, and
a worker held up in its handler. The wrapping is only in this benchmark's MMS; the product's reader
is untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from mms_handlers import server as mms_server
from mms_handlers.ports import free_port

from .cloud import json_body
from .loadtest import run_wrk
from .machine import machine, now
from .models import existing_models
from .run import REPO, say

WAITS_ENV = "EDGECLOUD_BENCH_FRAME_WAITS"
SITECUSTOMIZE = '''"""Written by benchmarks.frontend_stalls: log a worker's long waits for, and long holds of, a request frame."""
import os
import time

_folder = os.environ.get("{env}")
if _folder:
    try:
        from mms_handlers import wire as _wire
    except Exception:  # not a process that can run the worker: leave it alone
        _wire = None
    if _wire is not None:
        _read, _threshold = _wire.retrieve_msg, float(os.environ.get("{env}_MS", "5")) / 1e3
        _out, _last = None, [None]

        def retrieve_msg(conn):
            global _out
            asked = time.monotonic()
            message = _read(conn)
            got = time.monotonic()
            held = asked - _last[0] if _last[0] is not None else 0.0
            _last[0] = got
            if got - asked > _threshold or held > _threshold:
                if _out is None:
                    _out = open(os.path.join(_folder, "waits-%d.log" % os.getpid()), "a", buffering=1)
                _out.write("%.6f %.6f %.6f\\n" % (asked, got, held))
            return message

        _wire.retrieve_msg = retrieve_msg
'''.format(env=WAITS_ENV)

JVM_PAUSE = re.compile(r'\[(?P<uptime>[\d.]+)s\].*Safepoint "(?P<kind>\w+)".*Total: (?P<total>\d+) ns')


@dataclass(frozen=True)
class Wait:
    """One worker's long wait for its next request frame (monotonic seconds), or its long hold of the last one."""

    worker: int
    asked: float
    got: float
    held: float

    @property
    def waited(self) -> float:
        return self.got - self.asked


def read_waits(folder: Path) -> list[Wait]:
    waits = []
    for log in sorted(folder.glob("waits-*.log")):
        worker = int(log.stem.split("-")[1])
        for line in log.read_text().splitlines():
            asked, got, held = (float(x) for x in line.split())
            waits.append(Wait(worker, asked, got, held))
    return waits


def jvm_pauses(log_text: str) -> list[tuple[str, float]]:
    """(kind, milliseconds) of every safepoint in a `-Xlog:safepoint` log."""
    return [(m["kind"], int(m["total"]) / 1e6) for m in JVM_PAUSE.finditer(log_text)]


def joint_waits(waits: list[Wait], threshold_s: float) -> int:
    """How many long waits of one worker overlap a long wait of another by at least `threshold_s`:
    moments when no worker had a request to run."""
    long = [w for w in waits if w.waited > threshold_s]
    count = 0
    for index, wait in enumerate(long):
        if any(
            other.worker != wait.worker and min(wait.got, other.got) - max(wait.asked, other.asked) >= threshold_s
            for other in long[index + 1 :]
        ):
            count += 1
    return count


def summary(waits: list[Wait], pauses: list[tuple[str, float]], threshold_s: float) -> dict[str, object]:
    waited = [w.waited * 1e3 for w in waits if w.waited > threshold_s]
    held = [w.held * 1e3 for w in waits if w.held > threshold_s]
    long_pauses = [ms for _, ms in pauses if ms > threshold_s * 1e3]
    return {
        "worker_waits_over_threshold": len(waited),
        "worker_wait_max_ms": round(max(waited, default=0.0), 1),
        "both_workers_waiting": joint_waits(waits, threshold_s),
        "worker_holds_over_threshold": len(held),
        "worker_hold_max_ms": round(max(held, default=0.0), 1),
        "jvm_pauses": len(pauses),
        "jvm_pauses_over_threshold": len(long_pauses),
        "jvm_pause_max_ms": round(max((ms for _, ms in pauses), default=0.0), 1),
        "jvm_pause_total_ms": round(sum(ms for _, ms in pauses), 1),
    }


@contextlib.contextmanager
def instrumented_server(model_store: Path, folder: Path, stall_ms: float) -> Iterator[mms_server.MmsServer]:
    """MMS at the project's settings, its JVM logging pauses and its workers logging long frame waits."""
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    jvm_log = folder / "jvm.log"
    project_options = mms_server.java_options

    def java_options(heap_mb: int) -> str:
        return f"{project_options(heap_mb)} -Xlog:gc,safepoint:file={jvm_log}"

    python_path = f"{site}:{REPO}"
    environment = {WAITS_ENV: str(folder), f"{WAITS_ENV}_MS": str(stall_ms), "PYTHONPATH": python_path}
    config = mms_server.ServerConfig(model_store=model_store, inference_port=free_port(), management_port=free_port(), workers=2)
    with mock.patch.object(mms_server, "java_options", java_options), mock.patch.dict("os.environ", environment):
        server = mms_server.MmsServer(config).start()
    try:
        yield server
    finally:
        server.stop()


def run(model_name: str, runs: int, seconds: float, concurrency: int, stall_ms: float, work: Path) -> dict[str, object]:
    models = {m.name: m for m in existing_models(work)}
    if model_name not in models:
        raise RuntimeError(f"no built model {model_name!r} in {work}: run python -m benchmarks.cloud_rounds first")
    model, threshold_s = models[model_name], stall_ms / 1e3
    host, started_at, rows = machine(), now(), []
    with tempfile.TemporaryDirectory(prefix="edgecloud-stalls-") as tmp:
        folder = Path(tmp)
        with instrumented_server(model.mar.parent, folder, stall_ms) as server:
            server.register(model.mar.name, initial_workers=2)
            url, body = f"{server.config.inference_url}/predictions/{model.name}", json_body(model)
            say("warming up for 5 s")
            run_wrk(url, body, concurrency, 5)
            for number in range(1, runs + 1):
                seen_waits = len(read_waits(folder))
                seen_pauses = len(jvm_pauses((folder / "jvm.log").read_text()))
                result = run_wrk(url, body, concurrency, seconds)
                waits = read_waits(folder)[seen_waits:]
                pauses = jvm_pauses((folder / "jvm.log").read_text())[seen_pauses:]
                row = {"run": number, "requests_per_s": round(result.requests_per_s), "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}
                row |= summary(waits, pauses, threshold_s)
                rows.append(row)
                say(json.dumps(row))
    return {"date": started_at, "machine": host, "model": model_name, "concurrency": concurrency, "stall_ms": stall_ms, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frontend_stalls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp", help="a model python -m benchmarks.cloud_rounds built (default mlp)")
    parser.add_argument("--runs", type=int, default=6, help="wrk runs after a 5 s warm-up (default 6)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per run (default 5)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stall-ms", type=float, default=5.0, help="a wait or hold longer than this is logged (default 5)")
    parser.add_argument("--work", type=Path, default=REPO / ".edgecloud" / "bench")
    parser.add_argument("--out", type=Path, help="write the rows here as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.seconds <= 0 or args.concurrency < 1 or args.stall_ms <= 0:
        parser.error("--runs, --seconds, --concurrency and --stall-ms must be positive")
    result = run(args.model, args.runs, args.seconds, args.concurrency, args.stall_ms, args.work)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
