"""Failover behind the gateway: one replica SIGKILLed or SIGTERMed under closed-loop load.

`fault_under_load` runs the load through HAProxy, hits one replica, waits until it is started
again and takes traffic, and returns every request's outcome (benchmarks/load_client.py), so a
test can say how many failed and why. `python -m benchmarks.gateway` prints the figures of
docs/deploying.md (throughput per replica count, the gateway's added latency at c=1, failover).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass

from edgecloud.gateway.stack import GatewayStack
from mms_handlers.process_group import signal_group

from .load_client import ClosedLoop, Outcome

V2_BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode()


@dataclass
class FaultReport:
    mode: str
    outcomes: list[Outcome]
    back_after_s: float  # from the fault until the replica was ready again
    hit_at: float  # time.monotonic() of the kill or SIGTERM
    answered_by_returned: int  # requests the replica answered after it came back

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


def replica_requests(url: str) -> int:
    """Inference requests one replica's front door has answered since it started."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "edgecloud_requests_total"
        )
    )


def fault_under_load(
    stack: GatewayStack,
    index: int,
    mode: str,
    concurrency: int = 32,
    model: str = "mlp",
    before_s: float = 2.0,
    after_s: float = 2.0,
    limit_s: float = 90.0,
) -> FaultReport:
    """`mode` "kill": SIGKILL the replica process and its MMS at once; "term": SIGTERM (it drains)."""
    replica = stack.replica_set.replicas[index]
    starts = replica.starts
    loop = ClosedLoop(f"{stack.url}/v2/models/{model}/infer", V2_BODY, concurrency, timeout_s=30).start()
    time.sleep(before_s)
    assert replica.process is not None
    hit = time.monotonic()
    if mode == "kill":
        group = replica.mms_group()
        os.kill(replica.process.pid, signal.SIGKILL)
        if group is not None:
            signal_group(group, signal.SIGKILL)
    else:
        os.kill(replica.process.pid, signal.SIGTERM)
    while not (replica.starts > starts and replica.ready()):
        if time.monotonic() - hit > limit_s:
            loop.stop()
            raise RuntimeError(f"replica {index} not back {limit_s:.0f} s after the {mode}")
        time.sleep(0.1)
    back = time.monotonic() - hit
    time.sleep(after_s)  # the balancer's checks see it ready (rise 2 × 500 ms), then it takes traffic
    answered = replica_requests(replica.url)
    return FaultReport(mode, loop.stop(), round(back, 2), hit, answered)


def throughput(url: str, seconds: float, concurrency: int) -> tuple[float, float, int]:
    """(requests per second, p50 ms, failures) of closed-loop V2 inference on `url` for `seconds`."""
    from .load_client import percentile, run_for

    outcomes = run_for(seconds, ClosedLoop(url, V2_BODY, concurrency, timeout_s=30))
    ok = [o for o in outcomes if o.ok]
    return len(ok) / seconds, percentile([o.seconds * 1000 for o in ok], 50), len(outcomes) - len(ok)


def main(argv: list[str] | None = None) -> int:
    """Throughput at c=32 with 1-3 replicas, added latency at c=1, one kill and one drain at c=32."""
    import argparse
    import tempfile
    from pathlib import Path

    from edgecloud.gateway.stack import GatewayOptions
    from mms_handlers.archive import build_archive
    from mms_handlers.ports import free_port
    from mms_handlers.server import ServerConfig
    from mms_handlers.settings import ServingSettings
    from tests.mms_handlers import models

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway", description=main.__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the stacks (finally) when stopped
    root = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    build_archive(models.mlp(root / "registry"), root / "store")
    for count in (1, 2, 3):
        base = free_port() // 8 * 8
        server = ServerConfig(model_store=root / "store", inference_port=base, management_port=base + 1, java_heap_mb=256)
        options = GatewayOptions(
            server=server,
            registry=root / "registry",
            replicas=count,
            gateway_port=free_port(),
            web_port=free_port(),
            settings=ServingSettings(drain_seconds=3.0),
        )
        stack = GatewayStack(options, runtime_dir=root / f"run-{count}").start()
        try:
            rps, p50, failed = throughput(f"{stack.url}/v2/models/mlp/infer", args.seconds, 32)
            print(f"| {count} | gateway c=32 | {rps:.0f} req/s | p50 {p50:.1f} ms | {failed} failed |", flush=True)
            if count == 1:
                front = stack.replica_set.replicas[0]
                direct = f"http://127.0.0.1:{front.ports.inference}/predictions/mlp-v1"  # MMS's name of version 1
                for name, url in (
                    ("MMS direct", direct),
                    ("front door", f"{front.url}/v2/models/mlp/infer"),
                    ("gateway", f"{stack.url}/v2/models/mlp/infer"),
                ):
                    rps, p50, failed = throughput(url, args.seconds / 2, 1)
                    print(f"| 1 | {name} c=1 | {rps:.0f} req/s | p50 {p50:.2f} ms | {failed} failed |", flush=True)
            if count == 2:
                for mode, index in (("kill", 0), ("term", 1)):
                    report = fault_under_load(stack, index, mode)
                    print(
                        f"| 2 | {mode} replica {index} at c=32 | {len(report.outcomes)} requests | "
                        f"{len(report.failures)} failed ({', '.join(sorted({str(o.status) for o in report.failures}))}) | back and ready after {report.back_after_s} s | "
                        f"{report.answered_by_returned} answered by it since |",
                        flush=True,
                    )
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
