"""The running stack: one replica (MMS behind the replica front door) plus the static site.

`edgecloud serve` runs the same front door as the image and `serve --replicas` (OIP V2 paths,
`/metrics`, live/ready, drain on SIGTERM, version routing from the watched registry), on the
inference port users know; MMS's own inference port moves to `mms_port` on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from mms_handlers.replica.runner import Replica, ReplicaSettings
from mms_handlers.server import MmsServer, ServerConfig, ServerError
from mms_handlers.settings import ServingSettings

from .signals import until_signal
from .webserver import StaticSite

if TYPE_CHECKING:
    from .federation import Aggregator, FederatedOptions

# REGISTRY/NAME/signal.json ({"source", "sampling_rate", "unit", "data"}): a recording the demo page streams
# through model NAME instead of its built-in pulse train (`edgecloud demo` writes one).
SIGNAL_FILE = "signal.json"
# Addresses meaning "every interface": no browser opens a page at them, so the page's origin and the
# cloud's address are only known to the browser.
WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]")


@dataclass
class StackOptions:
    """The MMS settings as they are (the server's host is the page's too) plus what the page needs."""

    server: ServerConfig
    registry: Path
    web_port: int = 8000
    register: list[str] = field(default_factory=list)  # .mar files of the store to register; empty = all
    federated: FederatedOptions | None = None  # models taking federated updates (`serve --federated`)
    settings: ServingSettings = field(default_factory=ServingSettings)  # drain and kept versions (MMS's are in `server`)
    mms_port: int | None = None  # MMS's own inference port behind the front door (None: inference port + 5)

    def mms_inference_port(self) -> int:
        return self.mms_port if self.mms_port is not None else self.server.inference_port + 5


def page_origin(options: StackOptions) -> str:
    return f"http://{options.server.host}:{options.web_port}"


def allowed_origins(options: StackOptions) -> list[str]:
    """The one origin MMS lets browsers read it from: the page's own unless the user named another
    (e.g. the page's public name behind --host 0.0.0.0) or '*' (any site).

    MMS sends one Access-Control-Allow-Origin value to every request, so several origins cannot be
    allowed at once; `ServerConfig.check` refuses them rather than widening to '*'.
    """
    origins = list(dict.fromkeys(options.server.cors_origins))
    if origins:
        return origins
    if options.server.host in WILDCARD_HOSTS:
        raise ServerError(
            f"--host {options.server.host} listens on every address, so the page's origin is not known here: "
            f"give --cors-origin with the address browsers open the page at (e.g. http://HOSTNAME:{options.web_port}), "
            "or '*'"
        )
    return [page_origin(options)]


def site_config(config: ServerConfig, models: list[str], signals: dict[str, str], federated: str | None = None) -> dict:
    """/config.json for the page. On a wildcard host the page reaches MMS at its own host name, on MMS's port.
    `federated` is the aggregator's URL (the handler's `federated` option), only when one runs."""
    cloud = {"cloudPort": config.inference_port} if config.host in WILDCARD_HOSTS else {"cloud": config.inference_url}
    return {**cloud, "models": models, "signals": signals, **({"federated": federated} if federated else {})}


class Stack:
    """MMS (with every .mar of the store registered) and the page, on the configured ports."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        server = options.server
        mms = replace(
            server,
            model_options=dict(server.model_options),
            cors_origins=allowed_origins(options),
            host="127.0.0.1",
            inference_port=options.mms_inference_port(),
        )
        store = Path(server.model_store)
        self.models = [mar.removesuffix(".mar") for mar in options.register] or sorted(mar.stem for mar in store.glob("*.mar"))
        settings = ReplicaSettings(
            server=mms,
            port=server.inference_port,
            host=server.host,
            register=self.models,
            drain_seconds=options.settings.drain_seconds,
            registry=Path(options.registry),
            keep_versions=options.settings.keep_versions,
        )
        self.replica = Replica(settings)
        self.site = StaticSite(options.registry, host=server.host, port=options.web_port)
        self.aggregator: Aggregator | None = None

    @property
    def mms(self) -> MmsServer:
        return self.replica.mms

    def start(self, progress: Callable[[str], None] = lambda message: None) -> "Stack":
        progress("starting Multi Model Server")
        origins, page = self.mms.config.cors_origins, page_origin(self.options)
        if "*" in origins:
            progress("CORS: any site may call MMS from a browser ('*' was asked for)")
        elif origins != [page] and self.options.server.host not in WILDCARD_HOSTS:
            progress(f"CORS: browsers may call MMS from {', '.join(origins)} only; the page opened as {page} gets no cloud answers")
        for warning in self.mms.config.exposure_warnings():
            progress(warning)
        progress(f"serving {', '.join(self.models) or 'no models'} (each the version its latest.json names)")
        self.replica.start()
        try:
            signals = {
                name: f"/models/{name}/{SIGNAL_FILE}"
                for name in self.models
                if (Path(self.options.registry) / name / SIGNAL_FILE).is_file()
            }
            federated = self.options.federated
            if federated is not None:
                self._start_aggregator(federated, progress)
            self.site.config = site_config(self.options.server, self.models, signals, self.federated_url() if federated else None)
            if self.aggregator is not None:
                self.site.live_config["cloudModels"] = self.cloud_models
            self.site.start()
        except BaseException as error:
            # A failure's message points at MMS's logs: keep them (Ctrl-C is no failure).
            self.stop(keep_logs=not isinstance(error, KeyboardInterrupt))
            raise
        return self

    def _start_aggregator(self, federated: FederatedOptions, progress: Callable[[str], None]) -> None:
        from .federation import PREFIX, Aggregator, RegistryPublisher, database_of

        missing = [name for name in federated.models if name not in self.models]
        if missing:
            raise ServerError(
                f"--federated {missing[0]}: no {missing[0]}.mar is registered (registered: {', '.join(self.models) or 'none'})"
            )
        # Rounds are kept beside the user's archives (MMS's own store is the replica's, new at each start).
        # The aggregator only publishes into the registry; the replica's watcher serves what it publishes.
        federated = replace(federated, database=database_of(federated, self.options.server.model_store))
        publisher = RegistryPublisher(self.options.registry)
        self.aggregator = Aggregator(federated, self.options.registry, publisher, database_of(federated, self.mms.config.model_store))
        self.site.apis[PREFIX] = self.aggregator.api
        progress(f"federated: {', '.join(federated.models)} take updates at {self.federated_url()} (rounds in {self.aggregator.database})")

    def cloud_models(self) -> dict[str, dict[str, str]]:
        """{model: {version: MMS name}} of the versions the replica serves now (`/config.json` `cloudModels`)."""
        catalog = self.replica.catalog
        names = self.options.federated.models if self.options.federated is not None else []
        return {name: {v: info.mms_name for v in catalog.kept(name) if (info := catalog.version(name, v))} for name in names}

    def federated_url(self) -> str:
        """The aggregator's URL for the page: on the page's own site (relative on a wildcard host)."""
        from .federation import PREFIX

        if self.options.server.host in WILDCARD_HOSTS:
            return PREFIX
        return f"http://{self.options.server.host}:{self.site.port}{PREFIX}"

    def stop(self, keep_logs: bool = False, drain_seconds: float | None = 0.0) -> None:
        """Stop everything; `drain_seconds` None drains the replica as a SIGTERM does (answers go on while
        readiness fails), 0 stops at once."""
        if self.aggregator is not None:
            self.aggregator.stop()
            self.aggregator = None
        self.replica.stop(drain_seconds=drain_seconds, keep_logs=keep_logs)
        self.site.stop()

    def urls(self) -> dict[str, str]:
        return {
            "page": f"{self.site.url}/demo/",
            "inference": self.options.server.inference_url,
            "management": self.mms.config.management_url,
            "registry": f"{self.site.url}/models/",
            **({"federated": self.federated_url()} if self.aggregator is not None else {}),
        }

    def wait_for_signal(self) -> bool:
        """Block until Ctrl-C or SIGTERM, then drain and stop everything; False if MMS died first."""
        signalled = False
        try:
            signalled = until_signal(self.replica.live)
            return signalled
        finally:
            self.stop(keep_logs=not signalled, drain_seconds=None if signalled else 0.0)
