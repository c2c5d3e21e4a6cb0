"""The front door names its address when it cannot listen: a replica's port is derived from the
serve flags (gateway port + 1 + i), so the one-line error must say which port was taken."""

from __future__ import annotations

import socket

import pytest

from mms_handlers.replica.frontdoor import FrontDoor


def test_a_taken_port_is_named_in_the_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"front door 127\.0\.0\.1:{port}: Address already in use"):
            FrontDoor(None, None, "127.0.0.1", 1, host="127.0.0.1", port=port)  # type: ignore[arg-type]
