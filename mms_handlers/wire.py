"""MMS 1.1.11's worker wire format, read and written with fewer system calls and copies.

MMS's Java frontend and our worker process talk over a socket in the format of
`mms.protocol.otf_message_handler`, whose Python code runs in our worker: it reads a request frame
with one `recv` per field (a dozen system calls for a one-header request) and builds each reply with
a `struct.pack` and a bytearray append per field (docs/benchmarks-hot-path.md). This module reads
what the socket has in one `recv` of up to 64 KiB into a buffer kept per connection and parses
fields from it, and builds a reply as a list joined once. The result is the same: the same dicts
from a request frame, the same bytes for a reply (tests/mms_handlers/test_wire.py fuzzes both
against MMS's own functions with Hypothesis).

Not a library's job: no package implements this private format; MMS's own functions are kept as
the fallback. A load frame (once per worker) is parsed by MMS's own `_retrieve_load_msg` on the
buffered reader; a reply whose values are not all bytes or str (MMS json-dumps those), a reply
without answers (`ret` None: MMS's error replies), and any exception in the fast path go to MMS's
`create_predict_response`, which then decides. `worker_hooks.install` puts these two functions in
place of MMS's in the worker.
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
_TWO_INTS = struct.Struct("!ii")


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


_readers: "weakref.WeakKeyDictionary[Any, FrameReader]" = weakref.WeakKeyDictionary()


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
    raise ValueError("Invalid command: {}".format(command))


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


def create_predict_response(ret: list[Any] | None, req_id_map: dict[int, str], message: str, code: int,
                            context: Any = None) -> bytes | bytearray:  # fmt: skip
    """`otf_message_handler.create_predict_response`, the same bytes; MMS's own for anything unusual."""
    if ret is not None and all(isinstance(ret[idx], (bytes, bytearray, str)) for idx in req_id_map):
        try:
            return _reply(ret, req_id_map, message, code, context)
        except Exception:  # noqa: BLE001 - MMS's code decides (and logs) what the fast path did not foresee
            pass
    return otf.create_predict_response(ret, req_id_map, message, code, context)


def _text(value: str) -> list[bytes]:
    data = value.encode("utf-8")
    return [_INT.pack(len(data)), data]


def _reply(ret: list[Any], req_id_map: dict[int, str], message: str, code: int, context: Any) -> bytes:
    encoded = message.encode("utf-8")
    parts = [_TWO_INTS.pack(code, len(encoded)), encoded]
    for idx in req_id_map:
        parts += _text(req_id_map[idx])
        if context is None:
            parts.append(_INT.pack(0) + _TWO_INTS.pack(code, 0) + _INT.pack(0))
        else:
            content_type = context.get_response_content_type(idx)
            # MMS gives the content type's and the phrase's length in characters, not bytes: kept, so the bytes
            # stay MMS's (a non-ASCII one breaks the frame either way; the handler sets neither so)
            parts += [_INT.pack(len(content_type)), content_type.encode("utf-8")] if content_type else [_INT.pack(0)]
            status, phrase = context.get_response_status(idx)
            phrase = phrase if phrase is not None else ""
            parts += [_TWO_INTS.pack(status if status is not None else 200, len(phrase)), phrase.encode("utf-8")]
            headers = context.get_response_headers(idx)
            parts.append(_INT.pack(len(headers)))
            for key, value in headers.items():
                parts += _text(key) + _text(value)
        value = ret[idx]
        data = value.encode("utf-8") if isinstance(value, str) else value
        parts += [_INT.pack(len(data)), data]
    parts.append(_INT.pack(-1))
    return b"".join(parts)
