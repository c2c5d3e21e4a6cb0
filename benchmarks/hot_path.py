"""`python -m benchmarks.hot_path`: where one request's time goes in MMS + our handler, in microseconds per stage.

While wrk loads a batch-1 model at a given concurrency, py-spy samples every handler process
(the forks of the model's backend that run `handle`) and /proc gives the CPU time of each
process. Each stage's microseconds per request are its share of py-spy's on-CPU samples times the
handler's CPU time per request: sampling says where, the kernel's accounting says how much, and
neither is skewed much by other programs on a shared machine (a stage's wall time would be).
The Java frontend's share is its own CPU time per request; its log's "Backend response time"
(ms, per handler call, from handing the batch to the worker to its reply) against the client's
latency says how long a request spends in Java and the sockets rather than in Python.

py-spy (pinned in the dev extra) is the sampling profiler; what is written here is only the
bookkeeping around it: which frame belongs to which stage (`STAGES`) and the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .run import REPO, run_and_report, say

DEFAULT_OUT = REPO / "benchmarks" / "results" / "hot-path"
SAMPLE_RATE_HZ = 250
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# (stage, path fragment of the frame's file, function names or None for any); the leaf-most frame
# that matches decides, so numpy or orjson called from a stage count for that stage.
MMS_READ, MMS_UNPACK, MMS_ANSWER, MMS_METRICS = (
    "MMS Python: read the request frame (recv)",
    "MMS Python: unpack the request",
    "MMS Python: build and send the answer",
    "MMS Python: metrics log lines",
)
DECODE, ORT, ENCODE, HANDLER = ("our decoding and checks", "onnxruntime", "our encoding", "our handler: batching, metrics, rest")
STAGES: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    # our frame codec (mms_handlers/wire.py) does MMS's reading and writing: counted as those stages
    (MMS_READ, "mms_handlers/wire.py", ("retrieve_msg", "_requests", "_fill", "recv", "int", "compact", "reader_for")),
    (MMS_ANSWER, "mms_handlers/wire.py", None),
    (ORT, "mms_handlers/engines/", None),
    (ORT, "onnxruntime/", None),
    (ENCODE, "mms_handlers/codecs.py", ("encode", "dump_json", "_v2_tensor", "_as_lists")),
    (DECODE, "mms_handlers/codecs.py", None),
    (DECODE, "mms_handlers/signature.py", None),
    (DECODE, "mms_handlers/service.py", ("_prepare", "_body", "_content_type")),
    (HANDLER, "mms_handlers/", None),
    (MMS_METRICS, "mms/metrics/", None),
    (MMS_METRICS, "logging/", None),
    (MMS_METRICS, "mms/service.py", ("emit_metrics",)),
    (
        MMS_READ,
        "mms/protocol/otf_message_handler.py",
        (
            "retrieve_msg",
            "_retrieve_buffer",
            "_retrieve_int",
            "_retrieve_inference_msg",
            "_retrieve_request",
            "_retrieve_reqest_header",
            "_retrieve_input_data",
        ),
    ),
    (MMS_ANSWER, "mms/protocol/otf_message_handler.py", None),
    (MMS_UNPACK, "mms/service.py", None),
    (MMS_UNPACK, "mms/context.py", None),
    (MMS_ANSWER, "mms/model_service_worker.py", ("handle_connection",)),
)
OTHER = "other Python"
PYTHON_ORDER = (MMS_READ, MMS_UNPACK, DECODE, ORT, ENCODE, HANDLER, MMS_ANSWER, MMS_METRICS, OTHER)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_BACKEND_TIME = re.compile(r"Backend response time: (\d+)")


def stage_of(stack: str) -> str:
    """The stage of one collapsed py-spy stack (`root;...;leaf`)."""
    for frame in reversed(stack.split(";")):
        match = _FRAME.match(frame.strip())
        if not match:
            continue
        file, names = match.group("file"), set(match.group("function").split("."))  # Class.method.<locals>.f
        for stage, fragment, functions in STAGES:
            if fragment in file and (functions is None or names & set(functions)):
                return stage
    return OTHER


def stage_samples(collapsed: str) -> Counter[str]:
    """Samples per stage from py-spy's `--format raw` output (one `stack count` per line)."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[stage_of(stack)] += int(count)
    return counts


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads) so far; 0 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy not found: install the dev extra (pip install -e '.[dev]')")
    return found


@dataclass
class Profile:
    model: str
    concurrency: int
    requests: int
    requests_per_s: float
    client_p50_ms: float
    backend_response_ms: float | None  # Java's mean "Backend response time" per handler call (with request_lines)
    java_cpu_us: float  # per request
    handler_cpu_us: float  # per request, every handler process
    in_process_p50_us: float
    python_stages_us: dict[str, float] = field(default_factory=dict)
    samples: int = 0


def _backend_times(log: Path, start: int) -> list[int]:
    with open(log, "rb") as handle:
        handle.seek(start)
        return [int(m.group(1)) for m in _BACKEND_TIME.finditer(handle.read().decode("utf-8", "replace"))]


def profile_point(mms, model, concurrency: int, seconds: float, floor_us: float) -> Profile:
    """One wrk run at `concurrency` on the batch-1 model with py-spy on each handler process."""
    from .cloud import json_body
    from .loadtest import run_wrk

    url = f"{mms.config.inference_url}/predictions/{model.name}"
    handlers = mms.handler_pids()  # one MMS per profiled model: every handler process is this model's
    java = mms.java_pid()
    log = mms.log_dir / "mms_log.log"
    log_start = log.stat().st_size
    with tempfile.TemporaryDirectory(prefix="edgecloud-pyspy-") as tmp:
        spies = [
            subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(SAMPLE_RATE_HZ),
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--duration",
                    str(round(seconds) + 1),
                    "-o",
                    f"{tmp}/{pid}.txt",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in handlers
        ]
        time.sleep(0.5)  # py-spy attached
        before = {pid: cpu_seconds(pid) for pid in [java, *handlers]}
        result = run_wrk(url, json_body(model), concurrency, seconds)
        after = {pid: cpu_seconds(pid) for pid in [java, *handlers]}
        for spy in spies:
            spy.wait(timeout=seconds + 30)
        counts: Counter[str] = Counter()
        for pid in handlers:
            path = Path(f"{tmp}/{pid}.txt")
            counts += stage_samples(path.read_text() if path.exists() else "")
    requests = max(1, result.requests)
    handler_cpu = sum(after[pid] - before[pid] for pid in handlers) / requests * 1e6
    total = sum(counts.values())
    stages = {stage: counts.get(stage, 0) / total * handler_cpu for stage in PYTHON_ORDER} if total else {}
    backend = _backend_times(log, log_start)
    return Profile(
        model.name,
        concurrency,
        result.requests,
        result.requests_per_s,
        result.p50_ms,
        sum(backend) / len(backend) if backend else None,
        (after[java] - before[java]) / requests * 1e6,
        handler_cpu,
        floor_us,
        stages,
        total,
    )


def markdown(profiles: list[Profile]) -> str:
    """One column per (model, concurrency); rows: the Python stages, then the Java side and the totals."""
    header = ["µs per request"] + [f"{p.model} c={p.concurrency}" for p in profiles]
    rows = [[stage] + [f"{p.python_stages_us.get(stage, 0):.0f}" for p in profiles] for stage in PYTHON_ORDER]
    rows += [
        ["**handler processes, CPU in all**"] + [f"**{p.handler_cpu_us:.0f}**" for p in profiles],
        ["**Java frontend (netty, queue, worker I/O, logs), CPU**"] + [f"**{p.java_cpu_us:.0f}**" for p in profiles],
        ["Java's backend response time per handler call (wall, log)"]
        + ["–" if p.backend_response_ms is None else f"{p.backend_response_ms * 1000:.0f}" for p in profiles],
        ["client p50 latency (wall, wrk)"] + [f"{p.client_p50_ms * 1000:.0f}" for p in profiles],
        ["onnxruntime in-process p50 (wall, no HTTP)"] + [f"{p.in_process_p50_us:.0f}" for p in profiles],
        ["requests/s during the profile"] + [f"{p.requests_per_s:,.0f}" for p in profiles],
        ["py-spy samples (on CPU)"] + [str(p.samples) for p in profiles],
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def run(
    models_to_profile: tuple[str, ...],
    concurrencies: tuple[int, ...],
    seconds: float,
    work: Path,
    out: Path,
    command: str,
    reuse: bool = False,
) -> Path:
    from mms_handlers.ports import free_port
    from mms_handlers.server import MmsServer, ServerConfig

    from .cloud import WORKERS, InProcessFloor, _warm_up, json_body
    from .machine import machine, now
    from .models import existing_models, prepare_demo, prepare_models

    models = existing_models(work) if reuse else []
    if not models:
        say("building and exporting the models")
        demo = prepare_demo if any(name != "mlp" for name in models_to_profile) else None
        models = prepare_models(work, ("mlp",), demo=demo)[2]
    chosen = [m for m in models if m.name in models_to_profile]
    if not chosen:
        raise RuntimeError(f"none of {', '.join(models_to_profile)} was built; built: {', '.join(m.name for m in models)}")
    profiles: list[Profile] = []
    host, started = machine(), now()
    for model in chosen:  # one MMS per model, so the handler processes are that model's alone
        config = ServerConfig(
            model_store=model.mar.parent, inference_port=free_port(), management_port=free_port(), workers=WORKERS, job_queue_size=256
        )
        with MmsServer(config) as mms:
            mms.register(model.mar.name, initial_workers=WORKERS, batch_size=1)
            mms.wait_until_healthy()
            _warm_up(f"{config.inference_url}/predictions/{model.name}", json_body(model))
            floor = InProcessFloor(model).measure(min(seconds, 2.0)).p50_ms * 1000
            for concurrency in concurrencies:
                say(f"profiling {model.name} at concurrency {concurrency}")
                profiles.append(profile_point(mms, model, concurrency, seconds, floor))
    out.mkdir(parents=True, exist_ok=True)
    (out / "hot_path.json").write_text(
        json.dumps({"date": started, "command": command, "machine": host, "profiles": [asdict(p) for p in profiles]}, indent=1) + "\n"
    )
    report = out / "HOT_PATH.md"
    report.write_text(
        f"# Hot path profile\n\nRun on {started} with `{command}`; load average at start (1, 5, 15 min): "
        f"{host['load average at start (1, 5, 15 min)']}. MMS batch 1, {WORKERS} workers, {seconds:g} s of wrk "
        f"per column, py-spy at {SAMPLE_RATE_HZ} Hz on every handler process.\n\n{markdown(profiles)}\n"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    from .cloud_rounds import _concurrencies, _positive

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hot_path",
        description="Microseconds per stage of one request through MMS and the handler "
        "(py-spy on the workers, CPU time from /proc, Java's own log).",
    )
    parser.add_argument("--models", default="forecaster,mlp", help="comma-separated (default forecaster,mlp)")
    parser.add_argument("--concurrency", type=_concurrencies, default=(1, 32), help="comma-separated (default 1,32)")
    parser.add_argument("--seconds", type=_positive(float), default=5.0, help="seconds per column (default 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(REPO)}")
    parser.add_argument("--work", type=Path, default=REPO / ".edgecloud" / "bench", help="models and caches")
    parser.add_argument("--reuse", action="store_true", help="profile the models already in --work (no export)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks.hot_path", *(argv if argv is not None else sys.argv[1:])])
    models = tuple(args.models.split(","))
    return run_and_report(lambda: run(models, args.concurrency, args.seconds, args.work, args.out, command, args.reuse))


if __name__ == "__main__":
    sys.exit(main())
