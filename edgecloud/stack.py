"""The running stack: one MMS instance plus the static site, started and stopped together."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from mms_handlers.server import MmsServer, ServerConfig, ServerError

from .webserver import StaticSite

# REGISTRY/NAME/signal.json ({"source", "sampling_rate", "unit", "data"}): a recording the demo page streams
# through model NAME instead of its built-in pulse train (`edgecloud demo` writes one).
SIGNAL_FILE = "signal.json"


@dataclass
class StackOptions:
    """The MMS settings as they are (the server's host is the page's too) plus what the page needs."""

    server: ServerConfig
    registry: Path
    web_port: int = 8000
    register: list[str] = field(default_factory=list)  # .mar files of the store to register; empty = all


def allowed_origins(options: StackOptions) -> list[str]:
    """The origins MMS lets browsers call it from: the page's own, plus '*' when the user asks for it.

    MMS sends one Access-Control-Allow-Origin value to every request and the page needs it, so any
    other single origin is refused (ServerError) rather than silently widened to '*'.
    """
    page = f"http://{options.server.host}:{options.web_port}"
    extra = [origin for origin in dict.fromkeys(options.server.cors_origins) if origin != page]
    if extra and "*" not in extra:
        raise ServerError(
            f"CORS origin {', '.join(extra)}: Multi Model Server sends one Access-Control-Allow-Origin value "
            f"and the page at {page} needs it; allow '*' explicitly to let any site call MMS"
        )
    return [page, *extra]


class Stack:
    """MMS (with every .mar of the store registered) and the page, on the configured ports."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        server = options.server
        self.mms = MmsServer(
            replace(server, model_options=dict(server.model_options), cors_origins=allowed_origins(options))
        )
        self.site = StaticSite(options.registry, host=server.host, port=options.web_port)
        self.models: list[str] = []

    def start(self, progress: Callable[[str], None] = lambda message: None) -> "Stack":
        progress("starting Multi Model Server")
        if "*" in self.mms.config.cors_origins:
            progress("CORS: any site may call MMS from a browser (the origin '*' was asked for)")
        for warning in self.mms.config.exposure_warnings():
            progress(warning)
        self.mms.start()
        try:
            self.models = self.mms.register_store(self.options.register or None)
            progress(f"registered {', '.join(self.models) or 'no models'}; waiting for /ping to say Healthy")
            if self.models:
                self.mms.wait_until_healthy()
            signals = {name: f"/models/{name}/{SIGNAL_FILE}" for name in self.models
                       if (Path(self.options.registry) / name / SIGNAL_FILE).is_file()}  # fmt: skip
            self.site.config = {"cloud": self.mms.config.inference_url, "models": self.models, "signals": signals}
            self.site.start()
        except BaseException as error:
            # A failure's message points at MMS's logs: keep them (Ctrl-C is no failure).
            self.stop(keep_logs=not isinstance(error, KeyboardInterrupt))
            raise
        return self

    def stop(self, keep_logs: bool = False) -> None:
        self.site.stop()
        self.mms.stop(keep_logs=keep_logs)

    def urls(self) -> dict[str, str]:
        return {
            "page": f"{self.site.url}/demo/",
            "inference": self.mms.config.inference_url,
            "management": self.mms.config.management_url,
            "registry": f"{self.site.url}/models/",
        }

    def wait_for_signal(self) -> bool:
        """Block until Ctrl-C or SIGTERM, then stop everything; False if MMS died first."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(1.0):
                if self.mms.process is None or self.mms.process.poll() is not None:
                    self.stop(keep_logs=True)
                    return False
            return True
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
