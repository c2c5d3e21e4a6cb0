"""The aggregator's HTTP surface, transport-free: (method, path, body) → (status, JSON or text).

Mounted under `/federated` by whatever web server hosts it (edgecloud's site does):

    GET  /federated                  {"models": [...]}
    GET  /federated/NAME             the open round: base version, parameters, limits
    POST /federated/NAME/updates     an update (docs/federated.md) → {"accepted": true, "round", ...}
    GET  /federated/NAME/status      every round, refusals with reasons
    GET  /federated/metrics          the same in Prometheus text format (so no model is named "metrics")

Parsing and the body's form are checked here; the round rules are the service's. Every refusal
is `{"error": CODE, "message": ONE LINE}` with a 4xx status; a store that cannot be reached or
written (database down, restarting, read-only) is 503 `store-unavailable`, nothing stored, and
the host sends `Retry-After: RETRY_AFTER_SECONDS` with it. A body is refused by its declared
length before it is read, so an oversized one costs no memory. Query strings are ignored.

With a `TokenVerifier` (`--client-secret`), an update whose `token` does not let its client send
is a 401 (tokens.py), counted per model and reason in this process for /metrics but never written
to the store: a sender without a token must not be able to grow the database.
The token travels in the JSON body, not an Authorization header, so any front door and CORS
setup that passes the update passes it (no extra preflight header to allow).
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from dataclasses import asdict
from typing import Any, Callable

import numpy as np

from .metrics import PlainText, metrics_text
from .service import FederatedService, Refused, Update
from .store import StoreUnavailable
from .tokens import CLIENT_PATTERN, TokenError, TokenVerifier

PREFIX = "/federated"
RETRY_AFTER_SECONDS = 5
Response = tuple[int, dict[str, Any] | PlainText]


def _error(refused: Refused) -> Response:
    return refused.status, {"error": refused.code, "message": refused.message}


def _number_list(values: Any, name: str) -> np.ndarray:
    """JSON numbers → float64; a null (JSON.stringify's NaN and Infinity) becomes NaN, refused as not finite."""
    if not isinstance(values, list):
        raise Refused(400, "bad-update", f"delta {name!r}: data must be a JSON array of numbers")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise Refused(400, "bad-update", f"delta {name!r}: data must hold numbers only") from None


def parse_update(body: bytes) -> Update:
    """The JSON body → Update; Refused (400/422) naming the first thing wrong."""
    return parse_request(body)[0]


def parse_request(body: bytes) -> tuple[Update, object]:
    """The JSON body → (Update, its `token` or None); Refused (400/422) naming the first thing wrong."""
    try:
        content = json.loads(body, parse_constant=lambda constant: math.nan)
    except (ValueError, UnicodeDecodeError) as error:
        raise Refused(400, "bad-json", f"the body is not JSON ({error})") from None
    if not isinstance(content, dict):
        raise Refused(400, "bad-update", "the body must be a JSON object {client, base_version, samples, delta}")
    for key in ("client", "base_version", "samples", "delta"):
        if key not in content:
            raise Refused(400, "bad-update", f"the update lacks {key!r}")
    client, base, samples, delta = content["client"], content["base_version"], content["samples"], content["delta"]
    if not isinstance(client, str) or not CLIENT_PATTERN.fullmatch(client):
        raise Refused(400, "bad-client", "client must be 8-128 letters, digits, '-' or '_' (a random id the page keeps)")
    if isinstance(base, bool) or not isinstance(base, (str, int)):
        raise Refused(400, "bad-update", "base_version must be the version string the page trained from")
    if isinstance(samples, bool) or not isinstance(samples, int):
        raise Refused(400, "bad-samples", f"samples must be a whole number of examples, got {samples!r}")
    if not isinstance(delta, dict) or not delta:
        raise Refused(400, "bad-update", "delta must be an object {NAME: {shape, data}}")
    tensors = {}
    for name, entry in delta.items():
        if not isinstance(entry, dict) or "data" not in entry or not isinstance(entry.get("shape"), list):
            raise Refused(400, "bad-update", f"delta {name!r} must be {{shape: [...], data: [...]}}")
        shape = entry["shape"]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise Refused(422, "wrong-shape", f"delta {name!r}: shape {shape!r} is not a list of sizes")
        data = _number_list(entry["data"], name)
        if data.size != math.prod(shape):
            raise Refused(422, "wrong-shape", f"delta {name!r}: {data.size} values do not fill shape {shape}")
        tensors[name] = data.reshape(shape)
    return Update(client=client, base_version=str(base), samples=samples, delta=tensors), content.get("token")


class FederatedApi:
    def __init__(self, service: FederatedService, tokens: TokenVerifier | None = None) -> None:
        self.service, self.tokens = service, tokens
        self.unauthorized: Counter[tuple[str, str]] = Counter()  # (model, reason) → 401s in this process
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, content_length: int | None, read: Callable[[int], bytes]) -> Response:
        """Answer one request; `read(n)` reads the body, called only once its length is within bounds."""
        parts = [part for part in path.split("?")[0][len(PREFIX) :].split("/") if part]
        try:
            if method == "GET" and not parts:
                return 200, {"models": self.service.models()}
            if method == "GET" and parts == ["metrics"]:
                with self._lock:
                    unauthorized = dict(self.unauthorized)
                return 200, metrics_text(self.service, unauthorized)
            if method == "GET" and len(parts) == 1:
                return 200, self.service.describe(parts[0])
            if method == "GET" and len(parts) == 2 and parts[1] == "status":
                return 200, status_of(self.service, parts[0])
            if len(parts) == 2 and parts[1] == "updates":
                if method != "POST":
                    raise Refused(405, "method-not-allowed", f"{method} {path}: send updates with POST")
                self.service.describe(parts[0])  # 404 before reading a body for an unknown model
                update, token = parse_request(self._body(content_length, read))
                self._authorize(parts[0], update.client, token)
                return 200, self.service.submit(parts[0], update)
            raise Refused(404, "not-found", f"{method} {path}: see docs/federated.md for the aggregator's URLs")
        except Refused as refused:
            return _error(refused)
        except StoreUnavailable as error:
            return 503, {"error": "store-unavailable", "message": f"{error}; send again in {RETRY_AFTER_SECONDS} s"}

    def _authorize(self, model: str, client: str, token: object) -> None:
        if self.tokens is None:
            return
        try:
            self.tokens.verify(token, client)
        except TokenError as error:
            with self._lock:
                self.unauthorized[(model, error.code)] += 1
            raise Refused(401, error.code, error.message) from None

    def _body(self, content_length: int | None, read: Callable[[int], bytes]) -> bytes:
        limit = self.service.settings.max_body_bytes
        if content_length is None:
            raise Refused(411, "length-required", "send the update with a Content-Length")
        if content_length > limit:
            raise Refused(413, "too-large", f"the body is {content_length} bytes; the limit is {limit}")
        return read(content_length)


def status_of(service: FederatedService, name: str) -> dict[str, Any]:
    """Rounds (clients, samples, the version each produced) and refusals with their reasons."""
    current = service.describe(name)  # 404 for an unknown model
    rounds = [{k: v for k, v in asdict(r).items() if k != "model"} for r in service.store.rounds(name)]
    refusals = [{k: v for k, v in asdict(r).items() if k != "model"} for r in service.store.refusals(name)]
    return {"model": name, "current": current, "rounds": rounds, "refusals": refusals}
