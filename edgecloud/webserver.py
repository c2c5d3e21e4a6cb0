"""A small static web server for the page, the browser runtimes and the model registry.

Routes: `/demo/`, `/src/`, `/harness/`, `/bench/` from web_onnxjs; `/vendor/<pkg>/` from node_modules
(nothing comes from a CDN); `/onnx-wasm.wasm` at the root because ONNX.js fetches it there;
`/models/` is the registry (versioned files cached for good, latest.json never); `/config.json`
tells the page where the cloud is (`StaticSite.config`, plus `live_config` entries computed per
request); `StaticSite.apis` mounts JSON APIs under a prefix (the federated aggregator at `/federated`). Pages are cross-origin isolated (COOP/COEP) so timers are
precise and onnxruntime-web may use threads.
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from aggregation.http import RETRY_AFTER_SECONDS
from mms_handlers.names import is_model_name

from .paths import node_modules, web_root

VENDOR = {
    "onnxjs": ("onnxjs", "dist"),
    "onnxruntime-web": ("onnxruntime-web", "dist"),
    "uplot": ("uplot", "dist"),
}
IMMUTABLE = "public, max-age=31536000, immutable"
# A mounted API: (method, path, Content-Length or None, read(n)) -> (status, JSON body), or a body
# with `content_type` and `body` (bytes) attributes, sent as it is (the aggregator's /metrics).
Api = Callable[[str, str, "int | None", Callable[[int], bytes]], "tuple[int, Any]"]

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


class _Handler(SimpleHTTPRequestHandler):
    site: "StaticSite"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.site.verbose:
            super().log_message(format, *args)

    def end_headers(self) -> None:
        if self.site.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def _api(self) -> Api | None:
        path = urlsplit(self.path).path
        return next((api for prefix, api in self.site.apis.items() if path == prefix or path.startswith(prefix + "/")), None)

    def _call_api(self, api: Api) -> None:
        length = self.headers.get("Content-Length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            declared = None
        status, content = api(self.command, urlsplit(self.path).path, declared, self.rfile.read)
        if self.command == "POST" and declared is not None and status >= 400:
            self.close_connection = True  # a refused body may be unread: never parse it as the next request
        self._retry_after = status == HTTPStatus.SERVICE_UNAVAILABLE  # the aggregator's store is down
        if hasattr(content, "content_type") and isinstance(getattr(content, "body", None), bytes):
            self._send(content.body, content.content_type, status)
        else:
            self._send_json(content, status)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        api = self._api()
        if api is None:
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)
            return
        self._call_api(api)

    def do_OPTIONS(self) -> None:  # noqa: N802 - stdlib name
        """CORS preflight for a mounted API (a page on another origin posting JSON)."""
        if self._api() is None:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED)
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        if (api := self._api()) is not None:
            self._call_api(api)
            return
        if path in ("/", "/index.html"):
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/demo/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/config.json":
            self._send_json({**self.site.config, **{key: entry() for key, entry in self.site.live_config.items()}})
            return
        super().do_GET()

    def _send_json(self, content: Any, status: int = HTTPStatus.OK) -> None:
        self._send(json.dumps(content).encode(), "application/json", status)

    def _send(self, body: bytes, content_type: str, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(body)))
        if getattr(self, "_retry_after", False):
            self.send_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.end_headers()
        self.wfile.write(body)

    def send_head(self):  # type: ignore[override]
        self._cache_control = self.site.cache_control(urlsplit(self.path).path)
        return super().send_head()

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        cache = getattr(self, "_cache_control", None)
        if cache and code == HTTPStatus.OK:
            self.send_header("Cache-Control", cache)

    def translate_path(self, path: str) -> str:
        resolved = self.site.resolve(unquote(urlsplit(path).path))
        return str(resolved) if resolved else str(self.site.missing)


class StaticSite:
    """Maps URL paths to files; runs a threaded HTTP server in the background."""

    def __init__(
        self,
        registry: Path,
        config: dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        isolated: bool = True,
        verbose: bool = False,
    ) -> None:
        self.registry = Path(registry).resolve()
        self.root = web_root().resolve()
        self.config = dict(config or {})
        self.live_config: dict[str, Callable[[], Any]] = {}  # /config.json entries computed at each request
        self.host, self.port = host, port
        self.isolated = isolated
        self.verbose = verbose
        self.missing = self.root / ".missing"
        self.apis: dict[str, Api] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def resolve(self, url_path: str) -> Path | None:
        """The file for a URL path, or None; never anything outside the served folders.

        `..` is refused after decoding and normalising, a registry path must start with a valid model
        name, and a symbolic link that leads out of its folder is not followed.
        """
        parts = [part for part in posixpath.normpath(url_path).split("/") if part not in ("", ".")]
        if ".." in parts or not parts:
            return None
        head, rest = parts[0], parts[1:]
        if head == "onnx-wasm.wasm" and not rest:
            base, rest = node_modules() / "onnxjs" / "dist", ["onnx-wasm.wasm"]
        elif head == "vendor" and rest and rest[0] in VENDOR:
            package, sub = VENDOR[rest[0]]
            base, rest = node_modules() / package / sub, rest[1:]
        elif head == "models" and (not rest or is_model_name(rest[0])):
            base = self.registry
        elif head in ("demo", "src", "harness", "bench"):
            base, rest = self.root / head, rest
        else:
            return None
        candidate = base.joinpath(*rest)
        inside = candidate.resolve().is_relative_to(base.resolve())
        return candidate if inside and candidate.exists() else None

    def cache_control(self, url_path: str) -> str:
        parts = [part for part in url_path.split("/") if part]
        if parts[:1] == ["models"] and len(parts) >= 4 and parts[2].isdigit():
            return IMMUTABLE
        if parts[:1] == ["vendor"]:
            return "public, max-age=3600"
        return "no-cache"

    def start(self) -> "StaticSite":
        handler = type("Handler", (_Handler,), {"site": self})
        self._server = ThreadingHTTPServer((self.host, self.port), partial(handler, directory=str(self.root)))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgecloud-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StaticSite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
