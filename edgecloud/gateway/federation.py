"""One /metrics for the gateway: every replica's metrics with a `replica` label, as Prometheus'
own federation would give them (prometheus_client parses and writes the text format).

Under Kubernetes Prometheus scrapes each pod itself and this is not used. A replica that does not
answer within a second is left out of that scrape and shows as `edgecloud_replica_up 0`.
"""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Federated(Collector):
    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        up = GaugeMetricFamily("edgecloud_replica_up", "1 when the replica's /metrics answered", labels=["replica"])
        for index, url in enumerate(self.urls):
            try:
                with urllib.request.urlopen(f"{url}/metrics", timeout=1.0) as response:
                    text = response.read().decode("utf-8")
            except OSError:
                up.add_metric([str(index)], 0)
                continue
            up.add_metric([str(index)], 1)
            for family in text_string_to_metric_families(text):
                target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type, family.unit))
                for sample in family.samples:
                    target.add_sample(
                        sample.name, {**sample.labels, "replica": str(index)}, sample.value, sample.timestamp, sample.exemplar
                    )
        yield up
        yield from merged.values()


class Federation:
    """A small HTTP server answering GET /metrics with the merged metrics (HAProxy routes it)."""

    def __init__(self, replica_urls: Sequence[str], port: int, host: str = "127.0.0.1") -> None:
        registry = CollectorRegistry()
        registry.register(_Federated(replica_urls))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                status, payload = (200, generate_latest(registry)) if self.path == "/metrics" else (404, b"not found\n")
                self.send_response(status)
                self.send_header("Content-Type", PROMETHEUS_TYPE)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics-federation", daemon=True)

    def start(self) -> "Federation":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
