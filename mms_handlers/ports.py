"""A free loopback port (stdlib only, so tests and tools can take one without loading the server)."""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    """A free loopback port MMS accepts (below 32768): for each server the gateway, the tests and the benchmarks start."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")
