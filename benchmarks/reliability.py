"""What the serving stack survives: sustained load with memory sampled, and a worker killed under load.

`python -m benchmarks.reliability` (`make soak`) runs both on the zoo MLP (exported with the
project's own pipeline) and writes `results/RELIABILITY.md` + `.json`; the tests run the same
functions for a few seconds (tests/benchmarks/test_reliability.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mms_handlers.server import MmsServer

from .load_client import ClosedLoop, Outcome, percentile, run_for

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"


# -- processes and memory -------------------------------------------------------------------------
def resident_kb(pid: int) -> int:
    """Resident set size (VmRSS) in KiB; 0 once the process has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemorySample:
    at_s: float
    java_kb: int
    workers_kb: int  # every backend process of the instance, summed


def sample_memory(mms: MmsServer, at_s: float) -> MemorySample:
    return MemorySample(round(at_s, 2), resident_kb(mms.java_pid() or 0), sum(resident_kb(pid) for pid in mms.worker_pids()))


def growth_percent(samples: list[MemorySample], key: str, warmup_s: float) -> float:
    """Growth from the first sample after warm-up to the mean of the last quarter of the run, in %."""
    after = [getattr(s, key) for s in samples if s.at_s >= warmup_s]
    if len(after) < 2 or after[0] == 0:
        return 0.0
    tail = after[-max(1, len(after) // 4) :]
    return round(100.0 * (sum(tail) / len(tail) - after[0]) / after[0], 2)


# -- sustained load -------------------------------------------------------------------------------
@dataclass
class SoakReport:
    seconds: float
    concurrency: int
    warmup_s: float
    requests: int
    errors: int
    statuses: dict[str, int]
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    java_growth_pct: float
    workers_growth_pct: float
    java_mb_after_warmup: float
    workers_mb_after_warmup: float
    samples: list[MemorySample] = field(default_factory=list)


def soak(
    mms: MmsServer, model: str, body: bytes, seconds: float, concurrency: int, warmup_fraction: float = 0.25, timeout_s: float = 10.0
) -> SoakReport:
    """POST `body` to `model` from `concurrency` clients for `seconds`, sampling resident memory twice a second."""
    samples: list[MemorySample] = []
    loop = ClosedLoop(f"{mms.config.inference_url}/predictions/{model}", body, concurrency, timeout_s)
    outcomes = run_for(seconds, loop, lambda at: samples.append(sample_memory(mms, at)), every=0.5)
    warmup_s = seconds * warmup_fraction
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[str(outcome.status)] = statuses.get(str(outcome.status), 0) + 1
    latencies = [1000.0 * o.seconds for o in outcomes]
    first = next((s for s in samples if s.at_s >= warmup_s), samples[-1])
    return SoakReport(
        seconds=seconds,
        concurrency=concurrency,
        warmup_s=warmup_s,
        requests=len(outcomes),
        errors=sum(not o.ok for o in outcomes) + loop.unfinished,
        statuses=statuses,
        requests_per_s=round(len(outcomes) / seconds, 1),
        p50_ms=round(percentile(latencies, 50), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        max_ms=round(max(latencies, default=0.0), 2),
        java_growth_pct=growth_percent(samples, "java_kb", warmup_s),
        workers_growth_pct=growth_percent(samples, "workers_kb", warmup_s),
        java_mb_after_warmup=round(first.java_kb / 1024, 1),
        workers_mb_after_warmup=round(first.workers_kb / 1024, 1),
        samples=samples,
    )


# -- a worker, or a model's whole backend, killed under load -------------------------------------------------------------------
@dataclass
class KillReport:
    target: str  # "worker" or "backend"
    concurrency: int
    timeout_s: float
    requests: int
    in_flight_at_kill: int
    failures: int
    failure_statuses: list[str]
    failures_started_after_kill: int
    recovered_s: float  # kill → a new worker serving (its first answer to a request sent after the kill)
    restarted_s: float  # kill → MMS lists the worker count again with a new PID among them
    longest_request_s: float
    unfinished: int  # client threads still waiting after their timeout: must be 0
    healthy_after: str


def kill_under_load(
    mms: MmsServer,
    model: str,
    body: bytes,
    concurrency: int = 16,
    target: str = "worker",
    before_s: float = 2.0,
    after_s: float = 4.0,
    timeout_s: float = 10.0,
    base_url: str | None = None,
) -> KillReport:
    """SIGKILL, while `concurrency` clients are sending, one `worker` (a process running the handler) or the
    model's whole `backend` (the process MMS started and every worker it forked). The clients send to
    `base_url` (a replica's front door), else to MMS's own inference address."""
    base_url = base_url or mms.config.inference_url
    loop = ClosedLoop(f"{base_url}/predictions/{model}", body, concurrency, timeout_s).start()
    time.sleep(before_s)
    forks = mms.handler_pids()
    if not forks:
        loop.stop()
        raise RuntimeError(f"no worker of {model} found to kill")
    victims = forks[:1] if target == "worker" else mms.worker_pids()
    killed_at = time.monotonic()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    restarted_s = _wait_for_replacement(mms, victims, len(forks), killed_at, limit_s=30.0)
    time.sleep(after_s)
    outcomes = loop.stop()
    failures = [o for o in outcomes if not o.ok]
    served_after = [o.finished for o in outcomes if o.ok and o.started > killed_at + restarted_s]
    return KillReport(
        target=target,
        concurrency=concurrency,
        timeout_s=timeout_s,
        requests=len(outcomes),
        in_flight_at_kill=sum(o.started <= killed_at < o.finished for o in outcomes),
        failures=len(failures),
        failure_statuses=sorted({_describe(o) for o in failures}),
        failures_started_after_kill=sum(o.started > killed_at for o in failures),
        recovered_s=round(min(served_after, default=float("inf")) - killed_at, 3),
        restarted_s=round(restarted_s, 3),
        longest_request_s=round(max((o.seconds for o in outcomes), default=0.0), 3),
        unfinished=loop.unfinished,
        healthy_after=mms.ping(),
    )


def _wait_for_replacement(mms: MmsServer, victims: list[int], count: int, since: float, limit_s: float) -> float:
    """Seconds until `count` workers serve again, none of them a victim (inf after `limit_s`)."""
    while time.monotonic() - since < limit_s:
        forks = mms.handler_pids()
        if len(forks) == count and not set(forks) & set(victims):
            return time.monotonic() - since
        time.sleep(0.02)
    return float("inf")


def _describe(outcome: Outcome) -> str:
    if isinstance(outcome.status, str):
        return outcome.status
    try:
        return f"{outcome.status} {json.loads(outcome.body)['message']}"
    except (ValueError, KeyError, TypeError):
        return str(outcome.status)


# -- the `make soak` run --------------------------------------------------------------------------
def write_report(out: Path, soak_report: SoakReport, kills: list[KillReport], command: str) -> Path:
    from .machine import machine, now

    out.mkdir(parents=True, exist_ok=True)
    data = {"when": now(), "command": command, "machine": machine(), "soak": asdict(soak_report), "kills": [asdict(k) for k in kills]}
    (out / "reliability.json").write_text(json.dumps(data, indent=1))
    s = soak_report
    lines = [
        "# Reliability run",
        "",
        f"Run {data['when']} with `{command}` on "
        + ", ".join(f"{key} {value}" for key, value in data["machine"].items())
        + ". **This machine is shared and noisy.**",
        "",
        f"## Sustained load: {s.seconds:.0f} s at concurrency {s.concurrency} (zoo MLP, MMS batch size 1, 2 workers)",
        "",
        "| requests | errors | req/s | p50 ms | p99 ms | max ms | Java RSS after warm-up | growth | workers RSS after warm-up | growth |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {s.requests} | {s.errors} | {s.requests_per_s} | {s.p50_ms} | {s.p99_ms} | {s.max_ms} | "
        f"{s.java_mb_after_warmup} MB | {s.java_growth_pct} % | {s.workers_mb_after_warmup} MB | {s.workers_growth_pct} % |",
        "",
        f"Warm-up: the first {s.warmup_s:.0f} s. Growth: first sample after warm-up → mean of the last quarter. "
        "Java's heap is fixed and touched at start (`--java-heap`), so its growth is memory outside the heap.",
        "",
        "## Processes killed with SIGKILL under load",
        "",
        "`worker`: one process running the handler (MMS's backend forks a new one). `backend`: the model's whole "
        "Python process tree (MMS 1.1.11 never restarts it; `mms_handlers/supervisor.py` starts it again).",
        "",
        "| killed | clients | requests | in flight at the kill | failed | failed that started after the kill | "
        "replaced after | first answer after | longest request (client timeout) | clients past their timeout | /ping after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in kills:
        lines.append(
            f"| {k.target} | {k.concurrency} | {k.requests} | {k.in_flight_at_kill} | {k.failures} "
            f"({', '.join(k.failure_statuses) or 'none'}) | {k.failures_started_after_kill} | {k.restarted_s} s | "
            f"{k.recovered_s} s | {k.longest_request_s} s ({k.timeout_s:.0f} s) | {k.unfinished} | {k.healthy_after} |"
        )
    report = out / "RELIABILITY.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the sustained-load run (60)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients during the sustained load (32)")
    parser.add_argument("--kill-concurrency", type=int, default=16, help="clients while a worker is killed (16)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for RELIABILITY.md and reliability.json")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error(f"--seconds must be more than 0, got {args.seconds:g}")
    for flag in ("concurrency", "kill_concurrency"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    from mms_handlers.ports import free_port
    from mms_handlers.server import ServerConfig

    from .models import export_zoo_model

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="edgecloud-soak-") as tmp:
        work = Path(tmp)
        registry, store = work / "registry", work / "store"
        registry.mkdir(), store.mkdir()
        print("soak: exporting the zoo MLP", file=sys.stderr, flush=True)
        model = export_zoo_model("mlp", work, registry, store)
        body = json.dumps({"inputs": {name: value.tolist() for name, value in model.sample().items()}}).encode()
        config = ServerConfig(
            model_store=store, inference_port=free_port(), management_port=free_port(), workers=2, batch_size=1, job_queue_size=256
        )
        with MmsServer(config) as mms:
            mms.register(model.mar.name)
            print(f"soak: {args.seconds:.0f} s at concurrency {args.concurrency}", file=sys.stderr, flush=True)
            soak_report = soak(mms, model.name, body, args.seconds, args.concurrency)
            kills = []
            for target in ("worker", "backend"):
                print(f"soak: killing a {target} at concurrency {args.kill_concurrency}", file=sys.stderr, flush=True)
                kills.append(kill_under_load(mms, model.name, body, args.kill_concurrency, target))
    command = "make soak" if argv is None and os.environ.get("MAKELEVEL") else " ".join(["python -m benchmarks.reliability", *sys.argv[1:]])
    report = write_report(args.out, soak_report, kills, command)
    print(report.read_text())
    return 0 if soak_report.errors == 0 and not any(k.unfinished for k in kills) else 1


if __name__ == "__main__":
    sys.exit(main())
