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
    answered_by_returned: int  # requests the replica answered after it came back

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]


def replica_requests(url: str) -> int:
    """Inference requests one replica's front door has answered since it started."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == "edgecloud_requests_total"))  # fmt: skip


def fault_under_load(stack: GatewayStack, index: int, mode: str, concurrency: int = 32, model: str = "mlp",
                     before_s: float = 2.0, after_s: float = 2.0, limit_s: float = 90.0) -> FaultReport:  # fmt: skip
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
    return FaultReport(mode, loop.stop(), round(back, 2), answered)
