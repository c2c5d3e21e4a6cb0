"""mms_handlers.wire against MMS's own otf_message_handler: the same dicts and the same errors from the same
bytes, fuzzed with Hypothesis over every frame kind (predict and load frames, back to back, cut into
arbitrary socket reads, cut off mid-frame, an unknown command, JSON and text parameters decoded or not)."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from mms.protocol import otf_message_handler as otf

from mms_handlers import wire


class Chunked:
    """A socket that hands `data` over in the given read sizes (never more than asked), then EOF."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.at, self.calls = data, sizes or [1], 0, 0

    def recv(self, size: int) -> bytes:
        step = max(1, min(size, self.sizes[self.calls % len(self.sizes)]))
        self.calls += 1
        chunk = self.data[self.at : self.at + step]
        self.at += len(chunk)
        return chunk


def _field(data: bytes) -> bytes:
    return struct.pack("!i", len(data)) + data


def predict_frame(requests: list[dict[str, Any]]) -> bytes:
    """What MMS's Java side writes for a batch (ModelRequestEncoder)."""
    out = [b"I"]
    for request in requests:
        out.append(_field(request["id"]))
        for name, value in request["headers"]:
            out += [_field(name), _field(value)]
        out.append(struct.pack("!i", -1))
        for name, content_type, value in request["parameters"]:
            out += [_field(name.encode()), _field(content_type.encode()), _field(value)]
        out.append(struct.pack("!i", -1))
    out.append(struct.pack("!i", -1))
    return b"".join(out)


def load_frame(name: bytes, path: bytes, batch: int, handler: bytes, gpu: int, io_fd: bytes) -> bytes:
    return b"L" + _field(name) + _field(path) + struct.pack("!i", batch) + _field(handler) + struct.pack("!i", gpu) + _field(io_fd)


text = st.text(max_size=12)
blob = st.binary(max_size=300)
content_types = st.sampled_from(["application/json", "application/octet-stream", "text/plain", "", "image/png"])
requests = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.binary(min_size=0, max_size=40),
            "headers": st.lists(st.tuples(blob, blob), max_size=3),
            "parameters": st.lists(st.tuples(text, content_types, blob), max_size=3),
        }
    ),
    max_size=5,
)
loads = st.builds(load_frame, blob, blob, st.integers(-(2**31), 2**31 - 1), blob, st.integers(-5, 5), blob)
frames_ = st.lists(st.one_of(requests.map(predict_frame), loads), min_size=1, max_size=3)
DECODE_ENV = "MMS_DECODE_INPUT_REQUEST"
read_sizes = st.lists(st.integers(1, 4096), min_size=1, max_size=8)


def _read_all(reader: Any, connection: Chunked, count: int) -> list[Any]:
    results = []
    for _ in range(count + 1):  # one more than sent: both must end on the same error
        try:
            results.append(reader(connection))
        except Exception as error:  # noqa: BLE001 - the error is what is compared
            results.append((type(error), str(error)))
            break
    return results


@contextmanager
def decoding(setting: str) -> Iterator[None]:
    """MMS's decode_input_request setting, as its worker sees it (false is ours; true MMS's default)."""
    before = os.environ.get(DECODE_ENV)
    os.environ[DECODE_ENV] = setting
    try:
        yield
    finally:
        os.environ.pop(DECODE_ENV) if before is None else os.environ.__setitem__(DECODE_ENV, before)


decode_settings = st.sampled_from(["false", "true"])


@settings(max_examples=300, deadline=None)
@given(frames=frames_, sizes=read_sizes, cut=st.one_of(st.none(), st.integers(0, 2000)), setting=decode_settings)
def test_frames_read_the_same_as_mms_reads_them_in_any_pieces(frames, sizes, cut, setting):
    data = b"".join(frames)
    if cut is not None:
        data = data[:cut]  # the frontend went away mid-frame
    with decoding(setting):
        expected = _read_all(otf.retrieve_msg, Chunked(data, [10**6]), len(frames))
        got = _read_all(wire.retrieve_msg, Chunked(data, sizes), len(frames))
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(requests=requests, sizes=read_sizes, setting=decode_settings)
def test_json_and_text_parameters_are_decoded_as_mms_decodes_them(requests, sizes, setting):
    for request in requests:
        request["parameters"] = [(name, kind, json.dumps(value.hex()).encode()) for name, kind, value in request["parameters"]]
    data = predict_frame(requests)
    with decoding(setting):
        expected = _read_all(otf.retrieve_msg, Chunked(data, [10**6]), 1)
        assert _read_all(wire.retrieve_msg, Chunked(data, sizes), 1) == expected


def test_a_frame_is_read_in_one_socket_read_when_the_socket_has_it():
    frame = predict_frame(
        [
            {
                "id": b"x" * 36,
                "headers": [(b"Content-Type", b"application/json")],
                "parameters": [("body", "application/json", b'{"inputs": [1]}')],
            }
        ]
    )
    ours, theirs = Chunked(frame, [10**6]), Chunked(frame, [10**6])
    assert wire.retrieve_msg(ours) == otf.retrieve_msg(theirs)
    assert ours.calls == 1 and theirs.calls > 10


def test_an_unknown_command_is_refused_with_mms_message():
    with pytest.raises(ValueError, match=r"Invalid command: bytearray\(b'X'\)"):
        wire.retrieve_msg(Chunked(b"X" + b"\0" * 8, [100]))
