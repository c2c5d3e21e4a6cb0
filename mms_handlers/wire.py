"""MMS 1.1.11's worker wire format, read with one system call per frame instead of one per field.

MMS's Java frontend and our worker process talk over a socket in the format of
`mms.protocol.otf_message_handler`, whose Python code runs in our worker: it reads a request frame
with one `recv` per field (a dozen system calls for a one-header request; docs/benchmarks-hot-path.md).
This module reads what the socket has in one `recv` of up to 64 KiB into a buffer kept per
connection and parses the fields from it: the same dicts from the same frames, the same errors
(tests/mms_handlers/test_wire.py fuzzes it against MMS's own reader with Hypothesis). Replies stay
MMS's own `create_predict_response`: building them with one join instead was measured no faster
(1.4 against 1.6 µs at batch size 1, 14.3 against 14.2 at 8), so it is not shipped.

Not a library's job: no package implements this private format. A load frame (once per worker) is
parsed by MMS's own `_retrieve_load_msg` on the buffered reader. `worker_hooks.install` puts
`retrieve_msg` in place of MMS's in the worker.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import weakref
from typing import Any, Protocol

from mms.protocol import otf_message_handler as otf

RECV_SIZE = 65536
_INT = struct.Struct("!i")


class Connection(Protocol):
    def recv(self, size: int, /) -> bytes: ...


class FrameReader:
    """A connection's bytes, buffered: `recv(n)` answers exactly n bytes as MMS's reader expects,
    from as few socket reads as the frame's size allows."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.buffer = bytearray()
        self.position = 0

    def _fill(self, size: int) -> None:
        while len(self.buffer) - self.position < size:
            chunk = self.connection.recv(max(RECV_SIZE, size - (len(self.buffer) - self.position)))
            if not chunk:
                logging.info("Frontend disconnected.")
                raise ValueError("Frontend disconnected")
            self.buffer += chunk

    def recv(self, size: int) -> bytearray:
        """Exactly `size` bytes (none for size <= 0, as MMS's `_retrieve_buffer` answers)."""
        if size <= 0:
            return bytearray()
        self._fill(size)
        start = self.position
        self.position = start + size
        return self.buffer[start : self.position]

    def int(self) -> int:
        self._fill(4)
        value = _INT.unpack_from(self.buffer, self.position)[0]
        self.position += 4
        return value

    def compact(self) -> None:
        """Drop what was read (called between frames, so the buffer holds at most one frame)."""
        del self.buffer[: self.position]
        self.position = 0


_readers: weakref.WeakKeyDictionary[Any, FrameReader] = weakref.WeakKeyDictionary()


def reader_for(connection: Connection) -> FrameReader:
    """The buffered reader of `connection` (bytes read past one frame belong to the next)."""
    reader = _readers.get(connection)
    if reader is None:
        reader = _readers[connection] = FrameReader(connection)
    return reader


def retrieve_msg(conn: Connection) -> tuple[bytearray, Any]:
    """`otf_message_handler.retrieve_msg`: (command, load dict | list of request dicts)."""
    reader = reader_for(conn)
    reader.compact()
    command = reader.recv(1)
    if command == otf.PREDICT_MSG:
        return command, _requests(reader)
    if command == otf.LOAD_MSG:
        return command, otf._retrieve_load_msg(reader)
    raise ValueError(f"Invalid command: {command}")


def _requests(reader: FrameReader) -> list[dict[str, Any]]:
    decode = os.environ.get("MMS_DECODE_INPUT_REQUEST") in (None, "true")
    requests = []
    while (length := reader.int()) != -1:
        request: dict[str, Any] = {"requestId": reader.recv(length)}
        headers = []
        while (length := reader.int()) != -1:
            name = reader.recv(length)
            headers.append({"name": name, "value": reader.recv(reader.int())})
        request["headers"] = headers
        parameters = []
        while (length := reader.int()) != -1:
            name = reader.recv(length).decode("utf-8")
            content_type = reader.recv(reader.int()).decode("utf-8")
            value: Any = reader.recv(reader.int())
            if decode and content_type == "application/json":
                value = json.loads(value.decode("utf-8"))
            elif decode and content_type.startswith("text"):
                value = value.decode("utf-8")
            parameters.append({"name": name, "contentType": content_type, "value": value})
        request["parameters"] = parameters
        requests.append(request)
    return requests
