"""A free loopback port (stdlib only, so tests and tools can take one without loading the server).

`EDGECLOUD_FREE_PORTS=LOW-HIGH` narrows where ports are drawn: the test suite gives each pytest-xdist
worker its own range (tests/conftest.py), so a port one worker drew and has not bound yet is never
drawn by the other worker's servers (two clean-clone runs met 'Address already in use' that way).
"""

from __future__ import annotations

import os
import random
import socket

FREE_PORTS_ENV = "EDGECLOUD_FREE_PORTS"
DEFAULT_RANGE = (20000, 32000)  # below Linux's ephemeral ports, and MMS accepts up to 32767


def port_range() -> tuple[int, int]:
    """The range `free_port` draws from: EDGECLOUD_FREE_PORTS when it is a sane LOW-HIGH, else the default."""
    low, _, high = os.environ.get(FREE_PORTS_ENV, "").partition("-")
    if low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 32767:
        return int(low), int(high)
    return DEFAULT_RANGE


def free_port() -> int:
    """A free loopback port MMS accepts (below 32768): for each server the gateway, the tests and the benchmarks start."""
    low, high = port_range()
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")
