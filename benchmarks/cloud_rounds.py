"""`python -m benchmarks.cloud_rounds`: the cloud part of `make bench` alone, in interleaved rounds.

The same peers, points and report sections as `benchmarks.run` (`cloud.run_cloud`,
`report.cloud_sections`) without the edge and export parts, so the cloud figures can be measured
again (and late, when the shared machine is quiet) in minutes. Writes CLOUD_ROUNDS.md and
cloud_rounds.json. `--smoke` runs the zoo's mlp alone (no demo build), two rounds of 1 s points,
so `make test` proves the command works.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .run import REPO, run_and_report, say

DEFAULT_OUT = REPO / "benchmarks" / "results" / "cloud-rounds"


@dataclass(frozen=True)
class RoundSettings:
    mode: str
    rounds: int
    cloud_seconds: float
    concurrencies: tuple[int, ...]
    mms_workers: int
    batch8_wait_ms: int
    demo: bool


def settings_for(smoke: bool, rounds: int | None, seconds: float | None, concurrencies: tuple[int, ...] | None) -> RoundSettings:
    from .cloud import BATCH8_WAIT_MS, ROUNDS, WORKERS

    chosen = RoundSettings("full", ROUNDS, 5.0, (1, 8, 32), WORKERS, BATCH8_WAIT_MS, True)
    if smoke:
        chosen = replace(chosen, mode="smoke", rounds=2, cloud_seconds=1.0, concurrencies=(1,), demo=False)
    return replace(
        chosen,
        rounds=rounds or chosen.rounds,
        cloud_seconds=seconds or chosen.cloud_seconds,
        concurrencies=concurrencies or chosen.concurrencies,
    )


def run(settings: RoundSettings, out: Path, work: Path, command: str, reuse: bool = False) -> Path:
    from mms_handlers.ports import free_port
    from mms_handlers.server import MmsServer, ServerConfig

    from .cloud import register, run_cloud
    from .machine import machine, now, versions
    from .models import existing_models, prepare_demo, prepare_models
    from .report import cloud_sections

    models = existing_models(work) if reuse else []
    if not models:
        say("building and exporting the models")
        models = prepare_models(work, ("mlp",), demo=prepare_demo if settings.demo else None)[2]
    model_store = models[0].mar.parent
    started, host = now(), machine()
    config = ServerConfig(
        model_store=model_store, inference_port=free_port(), management_port=free_port(), workers=settings.mms_workers, job_queue_size=256
    )
    say("starting Multi Model Server")
    with MmsServer(config) as mms:
        register(mms, models, models)
        rows = run_cloud(mms, models, settings.concurrencies, settings.cloud_seconds, settings.rounds, progress=say)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cloud_rounds.json").write_text(
        json.dumps(
            {
                "date": started,
                "command": command,
                "settings": asdict(settings),
                "machine": host,
                "versions": versions(),
                "cloud": [row.as_json() for row in rows],
            },
            indent=1,
        )
        + "\n"
    )
    header = [
        "# Cloud benchmark in rounds",
        f"Run on {started} (finished {now()}) with `{command}` ({settings.mode} mode) on {host['cpu']}, "
        f"{host['cores']} cores; load average at start (1, 5, 15 min): "
        f"{host['load average at start (1, 5, 15 min)']}. Raw rows: `cloud_rounds.json`.",
    ]
    report = out / "CLOUD_ROUNDS.md"
    report.write_text("\n\n".join(header + cloud_sections(rows, asdict(settings))) + "\n")
    return report


def _concurrencies(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"concurrencies must be at least 1, got {text!r}")
    return values


def _positive(kind: type) -> object:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cloud_rounds",
        description="MMS (batch 1, batch 8 at the default and a waiting delay), Flask+gunicorn, /ping and "
        "in-process onnxruntime on the demo model and the mlp, in interleaved rounds: medians and spreads.",
    )
    parser.add_argument("--smoke", action="store_true", help="mlp only, 2 rounds of 1 s points at c=1 (for make test)")
    parser.add_argument("--rounds", type=_positive(int), help="rounds per point (default 3; smoke 2)")
    parser.add_argument("--seconds", type=_positive(float), help="seconds per point (default 5; smoke 1)")
    parser.add_argument("--concurrency", type=_concurrencies, help="comma-separated, default 1,8,32 (smoke 1)")
    parser.add_argument("--out", type=Path, help=f"report folder (default {DEFAULT_OUT.relative_to(REPO)}; smoke: WORK/results)")
    parser.add_argument("--work", type=Path, help="models and caches (default .edgecloud/bench[-smoke])")
    parser.add_argument("--reuse", action="store_true", help="measure the models a previous run left in --work")
    args = parser.parse_args(argv)
    work = args.work or REPO / ".edgecloud" / ("bench-smoke" if args.smoke else "bench")
    out = args.out or (work / "results" if args.smoke else DEFAULT_OUT)
    command = shlex.join(["python", "-m", "benchmarks.cloud_rounds", *(argv if argv is not None else sys.argv[1:])])
    settings = lambda: settings_for(args.smoke, args.rounds, args.seconds, args.concurrency)  # noqa: E731
    return run_and_report(lambda: run(settings(), out, work, command, args.reuse))


if __name__ == "__main__":
    sys.exit(main())
