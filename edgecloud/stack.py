"""The running stack: one MMS instance plus the static site, started and stopped together."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mms_handlers.server import MmsServer, ModelOptions, ServerConfig, cors_origin_value

from .webserver import StaticSite

# REGISTRY/NAME/signal.json ({"source", "sampling_rate", "unit", "data"}): a recording the demo page streams
# through model NAME instead of its built-in pulse train (`edgecloud demo` writes one).
SIGNAL_FILE = "signal.json"


@dataclass
class StackOptions:
    model_store: Path
    registry: Path
    host: str = "127.0.0.1"
    inference_port: int = 8080
    management_port: int = 8081
    web_port: int = 8000
    workers: int = 1
    batch_size: int = 1
    max_batch_delay_ms: int = 100
    job_queue_size: int = 100
    max_request_size: int = 6553500
    model_options: dict[str, ModelOptions] = field(default_factory=dict)
    register: list[str] = field(default_factory=list)  # .mar files of the store to register; empty = all
    cors_origins: list[str] = field(default_factory=list)


class Stack:
    """MMS (with every .mar of the store registered) and the page, on the configured ports."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        web_origin = f"http://{options.host}:{options.web_port}"
        self.mms = MmsServer(
            ServerConfig(
                model_store=options.model_store,
                inference_port=options.inference_port,
                management_port=options.management_port,
                host=options.host,
                workers=options.workers,
                batch_size=options.batch_size,
                max_batch_delay_ms=options.max_batch_delay_ms,
                job_queue_size=options.job_queue_size,
                max_request_size=options.max_request_size,
                model_options=dict(options.model_options),
                cors_origins=list(dict.fromkeys([web_origin, *options.cors_origins])),
            )
        )
        self.site = StaticSite(options.registry, host=options.host, port=options.web_port)
        self.models: list[str] = []

    def start(self, progress: Callable[[str], None] = lambda message: None) -> "Stack":
        progress("starting Multi Model Server")
        if cors_origin_value(self.mms.config.cors_origins) == "*":
            progress("CORS: MMS sends one Access-Control-Allow-Origin value, so the page's origin plus --cors-origin is '*'")
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
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.site.stop()
        self.mms.stop()

    def urls(self) -> dict[str, str]:
        return {
            "page": f"{self.site.url}/demo/",
            "inference": self.mms.config.inference_url,
            "management": self.mms.config.management_url,
            "registry": f"{self.site.url}/models/",
        }

    def wait_for_signal(self) -> None:
        """Block until Ctrl-C or SIGTERM (or MMS dies), then stop everything."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(1.0):
                if self.mms.process is None or self.mms.process.poll() is not None:
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
