"""The aggregator's own HTTP process (`edgecloud aggregate`): the `/federated` API plus what an
operator and a load balancer need around it.

    GET  /live          200 {"live": true} while the process answers (Kubernetes liveness)
    GET  /ready         200 {"ready": true}; 503 while draining or when the store does not answer
    GET  /metrics       Prometheus text: the rounds (aggregation/metrics.py)
    ...  /federated/... aggregation/http.py, unchanged (the page's shareUpdate())

CORS: only the origins given (`cors_origins`), echoed back with `Vary: Origin`; "*" only when an
operator lists it. A refused or unreadable store is 503 with `Retry-After` (never a traceback);
bodies are bounded by the API before they are read, and a connection idle for `REQUEST_TIMEOUT`
seconds is dropped. `drain()` (SIGTERM) fails readiness first, keeps answering for
`drain_seconds` so the load balancer moves away, then stops. The standard library's threading
HTTP server is enough for a few hundred updates a second; it is what edgecloud's site uses too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence
from urllib.parse import urlsplit

from .http import PREFIX, RETRY_AFTER_SECONDS, FederatedApi
from .metrics import PlainText
from .service import FederatedService
from .store import StoreUnavailable
from .tokens import TokenVerifier

logger = logging.getLogger(__name__)
REQUEST_TIMEOUT = 30.0


class _Handler(BaseHTTPRequestHandler):
    server_version = "edgecloud-aggregator"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT
    aggregator: "AggregatorServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        allowed = self.aggregator.cors_origins
        if origin and (origin in allowed or "*" in allowed):
            self.send_header("Access-Control-Allow-Origin", "*" if "*" in allowed else origin)
            self.send_header("Vary", "Origin")

    def _send(self, status: int, content: dict[str, Any] | PlainText) -> None:
        if isinstance(content, PlainText):
            body, content_type = content.body, content.content_type
        else:
            body, content_type = json.dumps(content).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            self.send_header("Retry-After", str(RETRY_AFTER_SECONDS))
        if self.close_connection:
            self.send_header("Connection", "close")  # the client opens a new one instead of writing into a closed socket
        self._cors()
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        path = urlsplit(self.path).path
        length = self.headers.get("Content-Length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = None
        if path == PREFIX or path.startswith(PREFIX + "/"):
            status, content = self.aggregator.api.handle(self.command, path, declared, self.rfile.read)
            if self.command == "POST" and status >= 400:
                self.close_connection = True  # a refused body may be unread: never parse it as the next request
        elif self.command == "GET" and path == "/live":
            status, content = 200, {"live": True}
        elif self.command == "GET" and path == "/ready":
            status, content = self.aggregator.readiness()
        elif self.command == "GET" and path == "/metrics":  # the API's own, with the 401s it counted
            status, content = self.aggregator.api.handle("GET", f"{PREFIX}/metrics", None, self.rfile.read)
        else:
            status, content = 404, {"error": "not-found", "message": f"{self.command} {path}: see docs/federated.md"}
            self.close_connection = self.command == "POST"
        self._send(status, content)

    def _answer(self) -> None:
        try:
            self._route()
        except Exception:  # noqa: BLE001 - a bug answers one line (the traceback goes to the log), the process lives on
            logger.exception("%s %s failed", self.command, self.path)
            self.close_connection = True
            self._send(500, {"error": "internal", "message": "the aggregator failed on this request; see its log"})

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - stdlib names

    def do_OPTIONS(self) -> None:  # noqa: N802 - stdlib name
        """CORS preflight: allowed origins learn the methods and headers; others get no CORS header."""
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets connections when many pages reconnect at once


class AggregatorServer:
    """Serves one FederatedService over HTTP in a background thread."""

    def __init__(
        self,
        service: FederatedService,
        *,
        host: str = "127.0.0.1",
        port: int = 8090,
        cors_origins: Sequence[str] = (),
        drain_seconds: float = 3.0,
        tokens: TokenVerifier | None = None,
    ) -> None:
        """`tokens`: with --client-secret, updates need a token it signed (aggregation/tokens.py)."""
        self.service, self.api = service, FederatedApi(service, tokens)
        self.cors_origins = tuple(cors_origins)
        self.drain_seconds = drain_seconds
        self.draining = threading.Event()
        handler = type("Handler", (_Handler,), {"aggregator": self})
        self._server = _Server((host, port), handler)
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="aggregator-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def readiness(self) -> tuple[int, dict[str, Any]]:
        if self.draining.is_set():
            return 503, {"ready": False, "reason": "draining"}
        try:
            for name in self.service.models():
                self.service.store.current_round(name)
        except StoreUnavailable as error:
            return 503, {"ready": False, "reason": str(error)}
        return 200, {"ready": True}

    def start(self) -> "AggregatorServer":
        self._thread.start()
        return self

    def drain(self) -> None:
        """Fail readiness, keep answering `drain_seconds` (the balancer stops sending), then stop."""
        self.draining.set()
        time.sleep(self.drain_seconds)
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
