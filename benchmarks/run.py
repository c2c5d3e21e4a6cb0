"""`python -m benchmarks.run` (`make bench`): export, cloud and edge benchmarks in one run → REPORT.md + PNGs.

Everything is bounded: each load point lasts `cloud_seconds`, each browser row at most
`edge_seconds` of steady runs plus a page timeout. `--smoke` runs the same code in seconds
(one zoo model, 1 s points) so `make test` can prove the benchmarks still work.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Settings:
    mode: str
    cloud_seconds: float
    concurrencies: tuple[int, ...]
    edge_seconds: float
    edge_max_runs: int
    edge_timeout_s: float
    zoo: tuple[str, ...]
    mms_workers: int
    batch8_wait_ms: int
    torchserve: bool
    rounds: int


def settings_for(smoke: bool) -> Settings:
    from .cloud import BATCH8_WAIT_MS, ROUNDS, WORKERS
    from .models import ZOO_NAMES

    full = Settings("full", 5.0, (1, 8, 32), 3.0, 500, 90.0, ZOO_NAMES, WORKERS, BATCH8_WAIT_MS, True, ROUNDS)
    # Smoke: one round (the same code; tests/benchmarks/test_cloud_rounds.py runs several).
    return (
        replace(full, mode="smoke", cloud_seconds=1.0, edge_seconds=0.3, edge_max_runs=20, zoo=("mlp",), torchserve=False, rounds=1)
        if smoke
        else full
    )


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_and_report(work: Callable[[], Path]) -> int:
    """A benchmark command's end, shared by every `python -m benchmarks.*`: the report's path and
    exit 0, or one clear line and exit 1 (also on Ctrl-C)."""
    try:
        report = work()
    except KeyboardInterrupt:
        say("interrupted")
        return 1
    except Exception as error:  # noqa: BLE001 - one clear line, exit 1
        say(f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        return 1
    say(f"wrote {report}")
    return 0


def run(settings: Settings, out: Path, work: Path, command: str) -> Path:
    """The whole benchmark; returns the report's path."""
    from edgecloud.webserver import StaticSite
    from mms_handlers.ports import free_port
    from mms_handlers.server import MmsServer, ServerConfig

    from .cloud import register, run_cloud
    from .edge import run_edge
    from .export_figures import export_figures
    from .machine import machine, now, versions
    from .models import prepare_demo, prepare_models, prepare_small_demo
    from .report import Results, write_report
    from .torchserve_peer import start_torchserve

    results = Results(now(), command, asdict(settings), machine(), versions())
    say("building and exporting the models")
    demo = prepare_small_demo if settings.mode == "smoke" else prepare_demo
    registry, model_store, models = prepare_models(work, settings.zoo, demo=demo)
    cloud_models = [m for m in models if m.kind == "demo"] + [m for m in models if m.name == "mlp"]
    config = ServerConfig(
        model_store=model_store,
        inference_port=free_port(),
        management_port=free_port(),
        workers=settings.mms_workers,
        cors_origins=["*"],
        job_queue_size=256,
    )
    say("starting Multi Model Server")
    with MmsServer(config) as mms, ExitStack() as torchserve:
        register(mms, models, cloud_models)
        torchserve_url, results.torchserve = None, "Not measured in smoke mode (it adds a Java server start)."
        if settings.torchserve:
            say("starting TorchServe (installed on first use)")
            mars = {m.name: m.mar.name for m in cloud_models}
            torchserve_url, results.torchserve = start_torchserve(torchserve, model_store, mars, settings.mms_workers)
        results.cloud = run_cloud(mms, cloud_models, settings.concurrencies, settings.cloud_seconds, settings.rounds, torchserve_url, say)
        torchserve.close()
        with StaticSite(registry, {"cloud": config.inference_url}, port=free_port()) as site:
            results.edge = run_edge(
                site.url, config.inference_url, models, settings.edge_seconds, settings.edge_max_runs, settings.edge_timeout_s, progress=say
            )
    results.export = export_figures(models, results.edge)
    return write_report(results, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Cloud (MMS, Flask, in-process) and edge (ONNX.js, onnxruntime-web) benchmarks side by side.",
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long run of every benchmark (for make test)")
    parser.add_argument(
        "--out", type=Path, help=f"report folder (default {DEFAULT_OUT.relative_to(REPO)}; smoke: .edgecloud/bench-smoke/results)"
    )
    parser.add_argument("--work", type=Path, help="models and caches (default .edgecloud/bench[-smoke])")
    args = parser.parse_args(argv)
    suffix = "bench-smoke" if args.smoke else "bench"
    work = args.work or REPO / ".edgecloud" / suffix
    out = args.out or (work / "results" if args.smoke else DEFAULT_OUT)
    command = shlex.join(["python", "-m", "benchmarks.run", *(argv if argv is not None else sys.argv[1:])])
    return run_and_report(lambda: run(settings_for(args.smoke), out, work, command))


if __name__ == "__main__":
    sys.exit(main())
