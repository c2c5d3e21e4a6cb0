"""The scaled-out stack: N replicas, the static site and the metrics federation, HAProxy in front.

Start order: site, replicas (each ready), aggregators (with --federated), federation, HAProxy.
Stop order: HAProxy soft-stops (it finishes what it holds), then the aggregators and replicas
drain and stop, then the site. The page reaches the cloud and the aggregator through the gateway,
its own origin, so no CORS is needed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from mms_handlers.ports import free_port
from mms_handlers.server import ServerConfig
from mms_handlers.settings import ServingSettings

from ..signals import until_signal
from ..stack import WILDCARD_HOSTS
from ..webserver import StaticSite
from .federation import Federation
from .haproxy import GatewayLayout, Haproxy, haproxy_config
from .replicas import ProcessSet, ReplicaSet, replica_ports

if TYPE_CHECKING:
    from ..federation import FederatedOptions


@dataclass
class GatewayOptions:
    server: ServerConfig  # the replicas' MMS settings (ports are the first replica's)
    registry: Path
    replicas: int
    gateway_port: int
    web_port: int = 8000
    register: list[str] | None = None
    settings: ServingSettings = field(default_factory=ServingSettings)  # drain and versions; MMS's are in `server`
    federated: FederatedOptions | None = None  # models taking updates: `edgecloud aggregate` processes behind /federated

    def check(self) -> None:
        self.settings.check()
        self.server.check()
        replica_ports(self.replicas, self.gateway_port, self.server.inference_port, self.server.management_port)


class GatewayStack:
    def __init__(self, options: GatewayOptions, runtime_dir: Path | None = None) -> None:
        options.check()
        self.options = options
        self.runtime_dir = Path(runtime_dir or tempfile.mkdtemp(prefix="edgecloud-gateway-"))
        host = options.server.host
        self.site = StaticSite(options.registry, port=options.web_port)  # 127.0.0.1: reached through HAProxy
        store = Path(options.server.model_store)
        self.models = [m.removesuffix(".mar") for m in options.register or []] or sorted(mar.stem for mar in store.glob("*.mar"))
        # Each replica watches the registry for these models' versions (docs/versions.md).
        self.replica_set = ReplicaSet(
            options.server,
            options.replicas,
            options.gateway_port,
            self.runtime_dir,
            registry=options.registry,
            register=self.models,
            settings=options.settings,
        )
        self.aggregators = self._aggregators(options)
        self.federation = Federation([r.url for r in self.replica_set.replicas + self.aggregators.replicas], free_port())
        layout = GatewayLayout(
            host,
            options.gateway_port,
            self.replica_set.front_ports,
            options.web_port,
            self.federation.port,
            options.server.max_request_size,
            self.aggregators.front_ports,
        )
        self.haproxy = Haproxy(haproxy_config(layout), self.runtime_dir, (host, options.gateway_port))

    def _aggregators(self, options: GatewayOptions) -> ProcessSet:
        if options.federated is None:
            return ProcessSet([])
        from ..federation import database_of
        from .aggregators import aggregator_set

        database = database_of(options.federated, options.server.model_store)
        return aggregator_set(
            options.federated, database, options.replicas, options.registry, self.runtime_dir, options.settings.drain_seconds
        )

    @property
    def url(self) -> str:
        return f"http://{self.options.server.host}:{self.options.gateway_port}"

    def start(self, progress: Callable[[str], None] = lambda message: None) -> "GatewayStack":
        try:
            progress(f"starting {self.options.replicas} replicas")
            self.replica_set.start()
            if self.aggregators.replicas:
                progress(f"starting {len(self.aggregators.replicas)} aggregators")
                self.aggregators.start()
            cloud = {"cloudPort": self.options.gateway_port} if self.options.server.host in WILDCARD_HOSTS else {"cloud": self.url}
            federated = {"federated": f"{self.url}/federated"} if self.aggregators.replicas else {}
            self.site.config = {**cloud, "models": self.models, "signals": {}, **federated}
            self.site.start()
            self.federation.start()
            progress(f"starting HAProxy on {self.url}")
            self.haproxy.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.haproxy.stop()
        self.aggregators.stop()
        self.replica_set.stop()
        self.federation.stop()
        self.site.stop()

    def urls(self) -> dict[str, str]:
        return {
            "gateway": self.url,
            "page": f"{self.url}/demo/",
            "registry": f"{self.url}/models/",
            "metrics": f"{self.url}/metrics",
            "replicas": ", ".join(r.url for r in self.replica_set.replicas),
            **({"federated": f"{self.url}/federated"} if self.aggregators.replicas else {}),
        }

    def wait_for_signal(self) -> bool:
        try:
            return until_signal(lambda: self.haproxy.process is not None and self.haproxy.process.poll() is None)
        finally:
            self.stop()
