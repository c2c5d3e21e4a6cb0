"""JSON answers padded so every status code of MMS's worker reply starts 6 bytes past a multiple of 16.

Checked on the reply MMS's own Python code builds (`create_predict_response`), read back with the
layout of its Java decoder; the reason is in mms_handlers/frames.py.
"""

from __future__ import annotations

import json
import struct
import uuid

from mms.context import Context, RequestProcessor
from mms.protocol.otf_message_handler import create_predict_response

from mms_handlers import frames


def _status_offsets(reply: bytes) -> list[int]:
    """Where each answer's status code starts, walking the reply as ModelResponseDecoder does."""

    def length(at: int) -> tuple[int, int]:
        return struct.unpack_from("!i", reply, at)[0], at + 4

    at = 4
    size, at = length(at)
    at += size  # message
    offsets = []
    while True:
        size, at = length(at)
        if size == -1:
            return offsets
        at += size  # request id
        size, at = length(at)
        at += size  # content type
        offsets.append(at)
        at += 4  # status
        size, at = length(at)
        at += size  # reason phrase
        count, at = length(at)
        assert count == 0  # no response headers
        size, at = length(at)
        at += size  # body


def test_every_status_code_of_a_reply_starts_clear_of_netty_read_boundaries():
    ids = {index: str(uuid.uuid4()) for index in range(12)}
    context = Context("m", "/tmp", {}, 8, None, "1.1.11")
    context.request_processor = [RequestProcessor({}) for _ in ids]
    answers = []
    for index in ids:
        if index % 3 == 2:
            context.set_response_status(400, "BadRequest", index)
            answers.append(frames.padded(json.dumps({"message": "x" * index}), "BadRequest"))
        else:
            answers.append(frames.padded(json.dumps({"outputs": {"y": [[0.5] * index]}}).encode()))
    reply = bytes(create_predict_response(answers, ids, "Prediction success", 200, context=context))
    offsets = _status_offsets(reply)
    assert len(offsets) == len(ids)
    assert {offset % frames.READ_GRANULE for offset in offsets} == {6}
    assert json.loads(answers[4]) == {"outputs": {"y": [[0.5] * 4]}}  # trailing spaces: the same JSON
