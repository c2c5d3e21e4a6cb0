"""Prometheus metrics of one replica, in the text format `/metrics` serves (prometheus_client).

Counted at the front door: requests by model, version, API (`v2` or `mms`) and status, and their
end-to-end latency (MMS queue + handler). Read from MMS's own metrics log (the handler writes
`InferenceTime` per request and `BatchSize` per batch there; MMS offers no other view of them):
the engine's inference time and the batch sizes, so queueing shows as the gap between the two
latencies. From the supervisor: backend restarts; from the front door, requests retried after a
worker died. Ignored: MMS's host metrics (CPU, disk) and
worker (child process) restarts, which MMS does not report.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# `2026-11-22T16:25:13,141 - InferenceTime.Milliseconds:0.412|#ModelName:mlp,Level:Model|#…`
_LOG_LINE = re.compile(r" - (?P<metric>\w+)\.(?P<unit>\w+):(?P<value>[0-9.eE+-]+)\|#ModelName:(?P<model>[^,|]+)")


class MetricsLogTail:
    """Reads the lines MMS appended to model_metrics.log since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self._partial = b""

    def new_samples(self) -> Iterator[tuple[str, str, float]]:
        """(metric, model, value) for each complete new line."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if match := _LOG_LINE.search(line.decode("utf-8", "replace")):
                yield match["metric"], match["model"], float(match["value"])


class _Restarts(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "edgecloud_backend_restarts", "Model backend processes started again after they died", labels=["model"]
        )
        for model, count in sorted(self.counts().items()):
            family.add_metric([model], count)
        yield family


class ReplicaMetrics:
    """The replica's registry; `observe_request` per answered request, `exposition()` per scrape."""

    def __init__(self, metrics_log: Path | None = None, restarts: Callable[[], dict[str, int]] = dict) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgecloud_requests",
            "Requests answered, by model, version, API and HTTP status",
            ["model", "version", "api", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "edgecloud_request_duration_seconds",
            "Front door to answer: MMS queue plus handler",
            ["model", "api"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "edgecloud_inference_duration_seconds",
            "Engine run per request, as the handler measured it",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "edgecloud_batch_size", "Requests MMS handed the handler at once", ["model"], buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.worker_died_retries = Counter(
            "edgecloud_worker_died_retries",
            "Requests sent to MMS again because the handler process holding them died",
            ["model"],
            registry=self.registry,
        )
        self.in_flight = Gauge("edgecloud_requests_in_flight", "Requests received and not yet answered", registry=self.registry)
        self.ready = Gauge("edgecloud_ready", "1 while the replica is ready for traffic", registry=self.registry)
        self.draining = Gauge("edgecloud_draining", "1 while the replica drains before stopping", registry=self.registry)
        self.registry.register(_Restarts(restarts))
        self._log = MetricsLogTail(metrics_log) if metrics_log is not None else None
        self._lock = threading.Lock()

    def observe_request(self, model: str, version: str, api: str, status: int, seconds: float) -> None:
        self.requests.labels(model, version, api, str(status)).inc()
        self.latency.labels(model, api).observe(seconds)

    def exposition(self) -> bytes:
        with self._lock:  # one reader of the log at a time
            for metric, model, value in self._log.new_samples() if self._log else ():
                if metric == "InferenceTime":
                    self.inference.labels(model).observe(value / 1000.0)
                elif metric == "BatchSize":
                    self.batch_size.labels(model).observe(value)
        return generate_latest(self.registry)
