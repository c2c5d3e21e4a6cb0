"""`python -m benchmarks.server_variants`: MMS server settings measured against each other and Flask, interleaved.

`cloud_rounds` measures one MMS (the project's settings) against its peers; a server-wide setting
(the frame codec, log lines, netty threads) can only be compared by running the server twice. Here
every variant is a running MMS of its own, all side by side (idle ones cost memory, not CPU), and
each round measures every variant and the Flask + gunicorn peer in turn on the same model, body and
concurrency, so each variant's ratio to Flask is taken within a round, seconds apart. Variants:

- `project`: the project's settings as `edgecloud serve` writes them;
- `mms-codec`: MMS's own frame reader and writer in the worker (EDGECLOUD_MMS_CODEC=mms);
- `request-lines`: MMS's per-request log lines kept (ServerConfig.request_lines);
- `sync-logging`: async_logging off;
- `netty-N`: N netty threads for the frontend and N for its worker connections;
- `before`: all four of the above at once, at batch size 1 (what the server did before issue 26);
- `batchN-Mms`: models registered at batch size N with an M ms delay (the project's: 8, 0 ms).

Every variant serves 2 workers per model, as gunicorn runs 2 workers.

Besides requests per second, each point records the CPU time the server's processes spent per
request (`/proc`, every process of the server: Java, MMS's Python backends and their forks; gunicorn's
master and workers): on a machine shared with other jobs, a server with more threads gets a larger
share of the CPUs, which inflates its requests per second against a server with fewer; CPU per
request is not shared out that way, and at saturation on an idle machine, throughput is cores ÷ CPU
per request. So Flask's CPU per request ÷ a variant's is the throughput ratio the variant would
have at c=32 on an idle machine, measured on a busy one.

Reads the models `python -m benchmarks.cloud_rounds` left in .edgecloud/bench (run it first).
Writes the rows as JSON and prints each variant's ratios to Flask per point: median (lowest–highest).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from mms_handlers import server as mms_server, worker_hooks
from mms_handlers.ports import free_port
from mms_handlers.process_group import group_members

from .cloud import FLASK, Target, _warm_up, json_body
from .hot_path import cpu_seconds
from .machine import machine, now
from .models import existing_models
from .peers import FlaskPeer
from .rounds import Spread, rotated
from .run import REPO, say

WORKERS = 2  # MMS workers per model, as gunicorn's 2 workers


@dataclass(frozen=True)
class Variant:
    name: str
    codec: str = ""  # "mms": MMS's own frame code in the worker
    request_lines: bool = False
    async_logging: bool = mms_server.ASYNC_LOGGING
    netty_threads: tuple[int, int] = (mms_server.NETTY_THREADS, mms_server.NETTY_CLIENT_THREADS)
    batch_size: int = mms_server.DEFAULT_BATCH_SIZE
    max_batch_delay_ms: int = mms_server.DEFAULT_BATCH_DELAY_MS


def variant(name: str) -> Variant:
    if name == "project":
        return Variant(name)
    if name == "mms-codec":
        return Variant(name, codec="mms")
    if name == "request-lines":
        return Variant(name, request_lines=True)
    if name == "sync-logging":
        return Variant(name, async_logging=False)
    if name == "before":
        return Variant(name, codec="mms", request_lines=True, async_logging=False, netty_threads=(0, 0), batch_size=1)
    if name.startswith("netty-") and name[6:].isdigit():
        return Variant(name, netty_threads=(int(name[6:]), int(name[6:])))
    size, _, delay = name.removeprefix("batch").partition("-")
    if name.startswith("batch") and size.isdigit() and delay.endswith("ms") and delay[:-2].isdigit():
        return Variant(name, batch_size=int(size), max_batch_delay_ms=int(delay[:-2]))
    raise ValueError(f"unknown variant {name!r}: project, mms-codec, request-lines, sync-logging, before, netty-N, batchN-Mms")


@contextlib.contextmanager
def started(chosen: Variant, model_store: Path) -> Iterator[mms_server.MmsServer]:
    """One MMS with the variant's settings (module settings patched while it writes its config and starts)."""
    config = mms_server.ServerConfig(
        model_store=model_store,
        inference_port=free_port(),
        management_port=free_port(),
        workers=WORKERS,
        job_queue_size=256,
        request_lines=chosen.request_lines,
    )
    environment = {worker_hooks.CODEC_ENV: chosen.codec} if chosen.codec else {}
    with (
        mock.patch.multiple(
            mms_server,
            ASYNC_LOGGING=chosen.async_logging,
            NETTY_THREADS=chosen.netty_threads[0],
            NETTY_CLIENT_THREADS=chosen.netty_threads[1],
        ),
        mock.patch.dict(os.environ, environment),
    ):
        server = mms_server.MmsServer(config).start()
    try:
        yield server
    finally:
        server.stop()


def run(names: list[str], models: list[str], concurrencies: tuple[int, ...], seconds: float, rounds: int, work: Path) -> dict[str, object]:
    from .loadtest import run_wrk  # noqa: F401 - fail early when wrk is missing

    chosen_models = [m for m in existing_models(work) if m.name in models]
    if not chosen_models:
        raise RuntimeError(f"no built models named {', '.join(models)} in {work}: run python -m benchmarks.cloud_rounds first")
    variants = [variant(name) for name in names]
    rows: list[dict[str, object]] = []
    host, started_at = machine(), now()
    with contextlib.ExitStack() as stack:
        servers = {v.name: stack.enter_context(started(v, chosen_models[0].mar.parent)) for v in variants}
        flask = stack.enter_context(FlaskPeer({m.name: m.version_dir / m.manifest["cloud"]["file"] for m in chosen_models}))
        processes: dict[str, Callable[[], list[int]]] = {v.name: servers[v.name].process_ids for v in variants}
        processes[FLASK] = lambda: group_members(flask.process.pid) if flask.process else []
        targets: dict[str, list[Target]] = {}
        for model in chosen_models:
            body = json_body(model)
            targets[model.name] = [Target(FLASK, model.name, f"{flask.url}/predictions/{model.name}", body)]
            for v in variants:
                servers[v.name].register(
                    model.mar.name, initial_workers=WORKERS, batch_size=v.batch_size, max_batch_delay_ms=v.max_batch_delay_ms
                )
                targets[model.name].append(
                    Target(v.name, model.name, f"{servers[v.name].config.inference_url}/predictions/{model.name}", body)
                )
        for target in (t for group in targets.values() for t in group):
            _warm_up(target.url, target.body or b"")
        for round_number in range(1, rounds + 1):
            for model in chosen_models:
                for concurrency in concurrencies:
                    say(f"round {round_number}/{rounds}: {model.name} at concurrency {concurrency}")
                    for target in rotated(targets[model.name], round_number - 1):
                        rows.append(measure(target, processes[target.peer], concurrency, seconds, round_number))
    return {"date": started_at, "machine": host, "rows": rows}


def _cpu(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}


def measure(target: Target, pids: Callable[[], list[int]], concurrency: int, seconds: float, round_number: int) -> dict[str, object]:
    """One wrk point, with the CPU time the server's processes (alive at both ends) spent per request."""
    before = _cpu(pids())
    row = target.measure(concurrency, seconds, round_number)
    after = _cpu(pids())
    spent = sum(max(0.0, after[pid] - before[pid]) for pid in after.keys() & before.keys())  # 0 once gone
    return row.as_json() | {"cpu_us_per_request": spent / row.requests * 1e6 if row.requests else None}


def ratios(rows: list[dict]) -> list[str]:
    """One line per (variant, model, concurrency), each against Flask in the same round: req/s ÷ Flask's, p99 ÷
    Flask's, Flask's CPU per request ÷ the variant's (above 1: the variant needs less CPU per request)."""
    flask = {(r["model"], r["concurrency"], r["round"]): r for r in rows if r["peer"] == FLASK}
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for row in rows:
        if row["peer"] != FLASK:
            groups.setdefault((row["peer"], row["model"], row["concurrency"]), []).append(row)
    lines = []
    for (peer, model, concurrency), group in groups.items():
        pairs = [(r, flask[(model, concurrency, r["round"])]) for r in group if (model, concurrency, r["round"]) in flask]
        speed = Spread.of(r["requests_per_s"] / f["requests_per_s"] for r, f in pairs if f["requests_per_s"])
        p99 = Spread.of(r["p99_ms"] / f["p99_ms"] for r, f in pairs if f["p99_ms"])
        cpu = Spread.of(
            f["cpu_us_per_request"] / r["cpu_us_per_request"]
            for r, f in pairs
            if r.get("cpu_us_per_request") and f.get("cpu_us_per_request")
        )
        own_cpu = Spread.of(r.get("cpu_us_per_request") for r in group)
        load = sum(r["load_1min"] for r in group) / len(group)
        errors = sum(r["errors"] for r in group)
        lines.append(
            f"{model:10} c={concurrency:<3} {peer:14} ÷ Flask: req/s {speed.ratio_text() if speed else '-'}; "
            f"p99 {p99.ratio_text() if p99 else '-'}; CPU/request Flask÷this {cpu.ratio_text() if cpu else '-'} "
            f"(this {own_cpu.median if own_cpu else float('nan'):.0f} µs); errors {errors}; load {load:.1f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_variants", description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="project, mms-codec, request-lines, sync-logging, before, netty-N, batchN-Mms")
    parser.add_argument("--models", default="mlp,forecaster", help="comma-separated (default mlp,forecaster)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated (default 1,8,32)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per point (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--work", type=Path, default=REPO / ".edgecloud" / "bench")
    parser.add_argument("--out", type=Path, help="write the rows here as JSON")
    args = parser.parse_args(argv)
    try:
        names = [variant(name).name for name in args.variants]
        concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    except ValueError as error:
        parser.error(str(error))
    if args.seconds <= 0 or args.rounds < 1 or min(concurrencies) < 1:
        parser.error("--seconds, --rounds and --concurrency must be positive")
    result = run(names, args.models.split(","), concurrencies, args.seconds, args.rounds, args.work)
    result["command"] = " ".join(["python -m benchmarks.server_variants", *(argv if argv is not None else sys.argv[1:])])
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"# {result['command']}\n# {result['date']}, load average at start {result['machine'].get('load average at start (1, 5, 15 min)')}"
    )
    print("\n".join(ratios(result["rows"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
