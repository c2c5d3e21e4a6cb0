"""The aggregator's state in Prometheus text format (`GET /federated/metrics`), for the same
scraper that reads the serving side's /metrics: rounds, accepted and refused updates by reason.

Read from the round store at scrape time (a custom collector, as prometheus_client recommends for
state kept elsewhere), so the figures survive a restart exactly as the rounds do. The one
exception is the 401 count (client tokens): it is the API's, per process, because an update
without a valid token is never stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .service import FederatedService

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class PlainText:
    """A non-JSON answer of a mounted API: the site sends `body` as it is, with `content_type`."""

    content_type: str
    body: bytes


class _Rounds(Collector):
    def __init__(self, service: FederatedService, unauthorized: Mapping[tuple[str, str], int]) -> None:
        self.service, self.unauthorized = service, unauthorized

    def collect(self) -> Iterator[Metric]:
        labels = ["model"]
        closed = CounterMetricFamily("edgecloud_federated_rounds_closed", "rounds averaged into a new version", labels=labels)
        accepted = CounterMetricFamily("edgecloud_federated_updates_accepted", "updates accepted, all rounds", labels=labels)
        samples = CounterMetricFamily("edgecloud_federated_samples_accepted", "examples behind the accepted updates", labels=labels)
        refused = CounterMetricFamily("edgecloud_federated_updates_refused", "updates refused, by reason", labels=["model", "reason"])
        open_clients = GaugeMetricFamily("edgecloud_federated_open_round_clients", "updates in the open round", labels=labels)
        round_id = GaugeMetricFamily("edgecloud_federated_round", "the open round's number", labels=labels)
        unauthorized = CounterMetricFamily(
            "edgecloud_federated_updates_unauthorized",
            "updates refused with 401 (client token), by reason, since this process started",
            labels=["model", "reason"],
        )
        for (model, reason), count in sorted(self.unauthorized.items()):
            unauthorized.add_metric([model, reason], count)
        for name in self.service.models():
            rounds = self.service.store.rounds(name)
            closed.add_metric([name], sum(1 for r in rounds if r.closed_at is not None))
            accepted.add_metric([name], sum(r.clients for r in rounds))
            samples.add_metric([name], sum(r.samples for r in rounds))
            # The code only ("stale-base: …" is stored): a label per message would grow without bound.
            codes = Counter(r.reason.split(":", 1)[0] for r in self.service.store.refusals(name))
            for reason, count in sorted(codes.items()):
                refused.add_metric([name, reason], count)
            current = self.service.describe(name)
            round_id.add_metric([name], current["round"])
            open_clients.add_metric([name], next((r.clients for r in rounds if r.id == current["round"]), 0))
        yield from (closed, accepted, samples, refused, unauthorized, open_clients, round_id)


def metrics_text(service: FederatedService, unauthorized: Mapping[tuple[str, str], int] | None = None) -> PlainText:
    """The scrape: the store's figures, plus the 401s the API counted in this process (`unauthorized`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Rounds(service, unauthorized or {}))
    return PlainText(PROMETHEUS_TYPE, generate_latest(registry))
