"""A closed-loop HTTP client that records every request (start, end, status), for the reliability runs.

wrk (loadtest.py) reports totals; a fault test needs each request's own timeline to say which
failed, when, and whether any waited past its timeout. Each thread keeps one keep-alive
connection and opens a new one after an error or a `Connection: close`.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    finished: float
    status: int | str  # the HTTP status, or the exception's name when no answer came
    body: bytes = b""  # kept for failures only

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class ClosedLoop:
    """`concurrency` threads POSTing `body` to `url` back to back until `stop()`; thread-safe record of outcomes."""

    def __init__(self, url: str, body: bytes, concurrency: int, timeout_s: float = 10.0, content_type: str = "application/json") -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.body, self.timeout_s = body, timeout_s
        self.headers = {"Content-Type": content_type}
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(concurrency)]

    def start(self) -> "ClosedLoop":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Outcome]:
        """Stop sending; wait for the requests in flight (each ends by its timeout) and return every outcome."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5.0)
        self.unfinished = sum(thread.is_alive() for thread in self._threads)
        with self._lock:
            return list(self.outcomes)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def _loop(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            body = b""
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
                connection.request("POST", self.path, body=self.body, headers=self.headers)
                response = connection.getresponse()
                body, status = response.read(), response.status
                if (response.getheader("connection") or "").lower() == "close":
                    connection.close()
                    connection = None
            except Exception as error:  # noqa: BLE001 - any failure is an outcome to record, not to raise
                status = type(error).__name__
                if connection is not None:
                    connection.close()
                connection = None
            outcome = Outcome(started, time.monotonic(), status, b"" if status == 200 else body[:300])
            with self._lock:
                self.outcomes.append(outcome)
        if connection is not None:
            connection.close()


def run_for(seconds: float, loop: ClosedLoop, during: Callable[[float], None] | None = None, every: float = 0.5) -> list[Outcome]:
    """Run `loop` for `seconds`, calling `during(elapsed)` every `every` seconds (e.g. to sample memory)."""
    loop.start()
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        if during is not None:
            during(elapsed)
        time.sleep(min(every, max(0.0, seconds - elapsed)))
    return loop.stop()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]
