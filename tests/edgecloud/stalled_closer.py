"""An aggregator replica that stops in the middle of closing a round, for the test that kills it.

It is `edgecloud aggregate`'s own parts (store, service, HTTP server) with one change: its
publisher writes version N+1 into the registry and then hangs before moving latest.json, the
moment a replica killed while closing leaves behind. It prints "written N" and waits for SIGKILL.

    python -m tests.edgecloud.stalled_closer REGISTRY DATABASE NAME PORT MIN_CLIENTS
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from aggregation.server import AggregatorServer
from aggregation.service import FederatedService, run_ticker
from aggregation.settings import FederatedSettings
from aggregation.store import open_store
from edgecloud.federation import load_model
from export.federated_version import write_federated_version


class StallingPublisher:
    def __init__(self, registry: Path) -> None:
        self.registry = registry

    def publish(self, model, parameters, provenance, held):
        written = write_federated_version(self.registry / model.name, model.version, parameters, provenance)
        print(f"written {written.name}", flush=True)
        time.sleep(600)
        raise SystemExit(1)


def main() -> None:
    registry, database, name, port, min_clients = sys.argv[1:]
    store = open_store(database)
    service = FederatedService(
        store, FederatedSettings(min_clients=int(min_clients)), [load_model(Path(registry), name)], StallingPublisher(Path(registry))
    )
    server = AggregatorServer(service, port=int(port)).start()
    print(f"ready {server.url}", flush=True)
    run_ticker(service, threading.Event(), every=0.2)
    time.sleep(600)


if __name__ == "__main__":
    main()
