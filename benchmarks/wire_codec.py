"""`python -m benchmarks.wire_codec`: MMS's frame reader against mms_handlers.wire's, µs per frame.

What the worker does first in every handler call, on a real Unix socket pair: read one request
frame as MMS's Java side writes it (a 36-character request id, three HTTP headers, the JSON body).
The two readers take turns, and the fastest turn of each is reported: the least disturbed by other
programs on the machine (a shared machine's noise only ever adds time).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from mms.protocol import otf_message_handler as otf

from mms_handlers import wire

HEADERS = ((b"Host", b"127.0.0.1:8080"), (b"Content-Type", b"application/json"), (b"Content-Length", b"64"))


def request_frame(batch: int, body: bytes) -> bytes:
    """One predict frame of `batch` requests, in the layout of MMS's Java ModelRequestEncoder."""

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big", signed=True) + data

    end = (-1).to_bytes(4, "big", signed=True)
    parts = [b"I"]
    for index in range(batch):
        parts.append(field(f"{index:08d}-0000-0000-0000-000000000000".encode()))
        parts += [field(name) + field(value) for name, value in HEADERS] + [end]
        parts += [field(b"body"), field(b"application/json"), field(body), end]
    parts.append(end)
    return b"".join(parts)


def per_frame_us(read: Callable[[Any], Any], frame: bytes, count: int) -> float:
    """µs to read one frame from the socket, the mean over `count` frames."""
    sender, receiver = socket.socketpair()
    try:
        spent = 0.0
        for _ in range(count):
            sender.sendall(frame)
            begin = time.perf_counter()
            read(receiver)
            spent += time.perf_counter() - begin
    finally:
        sender.close()
        receiver.close()
    return spent / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wire_codec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames per turn (default 2000)")
    parser.add_argument("--repeats", type=int, default=9, help="turns per reader; the fastest counts (default 9)")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.repeats < 1:
        parser.error("--frames and --repeats must be at least 1")
    body = b'{"inputs": {"x": [[0.5, -1.0, 2.0, 0.25]]}}'
    print("| requests in the frame | MMS µs | wire µs | MMS ÷ wire |\n|---|---|---|---|")
    for batch in (1, 8):
        frame = request_frame(batch, body)
        best = {otf.retrieve_msg: float("inf"), wire.retrieve_msg: float("inf")}
        for _ in range(args.repeats):
            for reader in best:
                best[reader] = min(best[reader], per_frame_us(reader, frame, args.frames))
        theirs, ours = best[otf.retrieve_msg], best[wire.retrieve_msg]
        print(f"| {batch} | {theirs:.1f} | {ours:.1f} | {theirs / ours:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
