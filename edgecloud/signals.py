"""Wait in the foreground for Ctrl-C or SIGTERM, as `edgecloud serve` does with either stack."""

from __future__ import annotations

import signal
import threading
from typing import Callable


def until_signal(alive: Callable[[], bool], poll_s: float = 1.0) -> bool:
    """Block until SIGINT/SIGTERM (True) or until `alive()` turns False (False); the previous
    handlers are put back either way."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(poll_s):
            if not alive():
                return False
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
