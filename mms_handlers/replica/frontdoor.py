"""The replica's public HTTP port: health as status codes, OIP V2, /metrics, and MMS's own paths.

A threaded stdlib server (one thread per connection, HTTP/1.1 keep-alive) that forwards
inference to MMS over one keep-alive connection per thread. It is small on purpose: parsing
and answers are MMS's and the handler's; what is added is only what MMS lacks (see
`replica/__init__.py`). When MMS drops a request (its process died), the answer is a 502, which
the gateway retries on another replica. A request MMS handed to a handler process that died under it
(MMS answers 500 "Worker died.") is sent to MMS once more: inference is idempotent, and MMS queues
it for its other or its replacement worker (`retry_worker_died`). While draining, every answer carries `Connection: close`
so clients and the balancer open their next connection elsewhere.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from .health import Health
from .metrics import ReplicaMetrics
from .oip import Catalog, ModelInfo, parse_model_path, server_metadata

MMS_PATHS = ("/predictions/", "/ping", "/api-description")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "content-length"}
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# At stop, a connection is closed only once it has been idle this long: one that has just been
# accepted, or has just answered, may already carry a request on its way, which must be answered.
IDLE_GRACE_S = 1.0


class ReplicaState(Protocol):
    """What the front door asks the replica (implemented by runner.Replica)."""

    catalog: Catalog
    version: str

    def live(self) -> bool: ...
    def readiness(self) -> Health: ...
    def model_health(self, mms_name: str) -> Health: ...


class _Upstream(threading.local):
    connection: http.client.HTTPConnection | None = None


class FrontDoor:
    """Serves one replica on (host, port) in front of MMS's inference API at `mms_host:mms_port`."""

    def __init__(
        self,
        state: ReplicaState,
        metrics: ReplicaMetrics,
        mms_host: str,
        mms_port: int,
        host: str = "127.0.0.1",
        port: int = 8080,
        request_timeout_s: float = 120.0,
    ) -> None:
        self.state, self.metrics = state, metrics
        self.mms_host, self.mms_port = mms_host, mms_port
        self.request_timeout_s = request_timeout_s
        self.draining = threading.Event()
        self._upstream = _Upstream()
        self._idle: dict[socket.socket, float] = {}  # connection → idle since (monotonic)
        self._in_flight = 0
        self._per_version: Counter[str] = Counter()  # MMS name → requests sent to it and not yet answered
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"door": self})
        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})  # bursts of new connections
        try:
            self.server = server_class((host, port), handler, bind_and_activate=True)
        except OSError as error:  # name the address: a replica's port is derived, so its user may not know it
            raise OSError(error.errno, f"front door {host}:{port}: {error.strerror}") from error
        self.server.daemon_threads = False  # server_close() waits for the requests in flight
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="front-door", daemon=True)

    def start(self) -> "FrontDoor":
        self._thread.start()
        return self

    def drain(self) -> None:
        self.draining.set()
        self.metrics.draining.set(1)

    def stop(self) -> None:
        """Stop accepting, close idle keep-alive connections, wait for the requests in flight."""
        self.server.shutdown()
        deadline = time.monotonic() + 5 * IDLE_GRACE_S
        while time.monotonic() < deadline:
            with self._lock:
                youngest = max(self._idle.values(), default=0.0)
            if time.monotonic() - youngest >= IDLE_GRACE_S:
                break
            time.sleep(0.05)
        with self._lock:
            for connection in list(self._idle):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.server.server_close()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def in_flight_to(self, mms_name: str) -> int:
        """Requests forwarded to the MMS model `mms_name` and not answered yet (a version is retired at 0)."""
        with self._lock:
            return self._per_version[mms_name]

    # -- used by the handler ----------------------------------------------------------
    def begin(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
        self.metrics.in_flight.inc(delta)

    def idle(self, connection: socket.socket, idle: bool) -> None:
        with self._lock:
            if idle:
                self._idle[connection] = time.monotonic()
            else:
                self._idle.pop(connection, None)

    def retry_worker_died(
        self, method: str, path: str, body: bytes, headers: dict[str, str], model: str, mms_name: str = ""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """`forward`, sent once more when MMS says the worker holding it died (never for another failure)."""
        answer = self.forward(method, path, body, headers, mms_name)
        if worker_died(answer[0], answer[2]):
            self.metrics.worker_died_retries.labels(model).inc()
            answer = self.forward(method, path, body, headers, mms_name)
        return answer

    def forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str], mms_name: str = ""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to MMS (for model `mms_name`, counted while it is in flight)."""
        with self._lock:
            self._per_version[mms_name] += 1
        try:
            return self._forward(method, path, body, headers)
        finally:
            with self._lock:
                self._per_version[mms_name] -= 1

    def _forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request on this thread's keep-alive connection; a broken connection is retried once
        on a fresh one only when it was idle (MMS closed it), never after MMS accepted the request."""
        for attempt in (0, 1):
            fresh = self._upstream.connection is None
            if fresh:
                self._upstream.connection = http.client.HTTPConnection(self.mms_host, self.mms_port, timeout=self.request_timeout_s)
            connection = self._upstream.connection
            try:
                if fresh:
                    connection.connect()
                    _no_delay(connection.sock)
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if response.will_close:
                    connection.close()
                    self._upstream.connection = None
                return response.status, response.getheaders(), payload
            except (OSError, http.client.HTTPException):
                connection.close()
                self._upstream.connection = None
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")


def worker_died(status: int, payload: bytes) -> bool:
    """MMS's answer for a request whose handler process died while holding it (`{"code": 500, ..., "message":
    "Worker died."}`); the handler's own 500s say what failed and are never this."""
    if status != 500 or len(payload) > 200 or b"Worker died." not in payload:
        return False
    try:
        return json.loads(payload).get("message") == "Worker died."
    except (ValueError, AttributeError):
        return False


def _no_delay(sock: socket.socket | None) -> None:
    """Headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm and the peer's
    delayed ACK hold the second one back ~40 ms."""
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Handler(BaseHTTPRequestHandler):
    door: FrontDoor
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection's thread ends after this
    # Buffered: an answer leaves in one write, so a replica killed mid-answer rarely leaves a half-sent
    # response, which no balancer may retry (flushed after each request).
    wbufsize = 1 << 16

    def setup(self) -> None:
        super().setup()
        _no_delay(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def handle_one_request(self) -> None:
        self.door.idle(self.connection, True)
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.close_connection = True
            return
        finally:
            self.door.idle(self.connection, False)
        if not self.raw_requestline or not self.parse_request():
            self.close_connection = True
            return
        self.door.begin(1)
        try:
            self.route()
            self.wfile.flush()
        finally:
            self.door.begin(-1)

    def route(self) -> None:
        path = urlsplit(self.path).path
        state = self.door.state
        if self.command == "GET" and path in ("/v2/health/live", "/live"):
            live = state.live()
            self.send_json(200 if live else 503, {"live": live})
        elif self.command == "GET" and path in ("/v2/health/ready", "/ready"):
            health = state.readiness()
            self.send_json(200 if health.ok else 503, {"ready": health.ok, "reasons": list(health.reasons)})
        elif self.command == "GET" and path == "/metrics":
            self.send_bytes(200, self.door.metrics.exposition(), PROMETHEUS_TYPE)
        elif self.command == "GET" and path == "/v2":
            self.send_json(200, server_metadata(state.version))
        elif (route := parse_model_path(path)) is not None:
            self.v2_model(route)
        elif path.startswith("/predictions/"):
            self.predictions(path)
        elif path.startswith(MMS_PATHS) or (self.command == "OPTIONS" and path == "/"):
            self.proxy(self.with_query(path), None, "mms")
        else:
            self.send_json(404, {"error": f"no such path: {self.command} {path}"})

    def with_query(self, path: str) -> str:
        query = urlsplit(self.path).query
        return f"{path}?{query}" if query else path

    def predictions(self, path: str) -> None:
        """`/predictions/NAME` goes to the version NAME routes to; an MMS name of one version
        (`NAME-vN`) and anything else go to MMS as they are."""
        catalog = self.door.state.catalog
        parts = path.split("/")
        info = catalog.models.get(parts[2])
        if info is not None:
            parts[2] = quote(info.mms_name)
        else:
            info = catalog.by_mms_name(parts[2])
        self.proxy(self.with_query("/".join(parts)), info, "mms")

    def v2_model(self, route: Any) -> None:
        catalog = self.door.state.catalog
        info, problem = catalog.find(route)
        if info is None:
            self.read_body()
            self.send_json(404, {"error": problem})
        elif route.action == "metadata" and self.command == "GET":
            self.send_json(200, info.metadata(catalog.kept(info.name)))
        elif route.action == "ready" and self.command == "GET":
            health = self.door.state.model_health(info.mms_name)
            self.send_json(200 if health.ok else 503, {"name": info.name, "ready": health.ok})
        elif route.action == "infer" and self.command == "POST":
            self.proxy(f"/predictions/{quote(info.mms_name)}", info, "v2", content_type="application/json")
        else:
            self.read_body()
            self.send_json(405, {"error": f"{self.command} is not allowed on {self.path}"})

    def proxy(self, target: str, info: ModelInfo | None, api: str, content_type: str | None = None) -> None:
        started = time.perf_counter()
        body = self.read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS and k.lower() != "host"}
        if content_type:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"} | {"Content-Type": content_type}
        try:
            status, answer_headers, payload = self.door.retry_worker_died(
                self.command, target, body, headers, info.name if info else "", info.mms_name if info else ""
            )
        except (OSError, http.client.HTTPException) as error:
            status, answer_headers = 502, [("Content-Type", "application/json")]
            payload = json.dumps(
                {"code": 502, "type": "BadGateway", "message": f"Multi Model Server dropped the request: {error}"}
            ).encode()
        if info is not None:
            self.door.metrics.observe_request(info.name, info.version, api, status, time.perf_counter() - started)
        self.send_response(status)
        for key, value in answer_headers:
            if key.lower() not in HOP_HEADERS:
                self.send_header(key, value)
        self.finish_headers(len(payload))
        self.wfile.write(payload)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status: int, content: Any) -> None:
        self.send_bytes(status, json.dumps(content).encode(), "application/json")

    def send_bytes(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.finish_headers(len(payload))
        self.wfile.write(payload)

    def finish_headers(self, length: int) -> None:
        self.send_header("Content-Length", str(length))
        if self.door.draining.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
