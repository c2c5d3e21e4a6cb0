"""Pad JSON answers so that MMS 1.1.11's Java side never cuts a worker's reply where it cannot resume.

MMS's `ModelResponseDecoder` reads a reply from the worker socket as netty hands it over and starts
again when a length field says more is to come, except at each answer's HTTP status code, which it
reads with an unchecked `readInt`. netty reads that socket in sizes from its
`AdaptiveRecvByteBufAllocator` table, all multiples of 16 bytes, and shrinks its guess after small
replies; so a reply larger than the guess (a batch after single requests) is decoded from buffers
that end at multiples of 16 bytes from the reply's start. One that ends inside a status code makes
the decoder throw, MMS drops the worker's connection and every request of that handler call gets
500 "Worker died." (seen: 12 of 1,200 requests at batch size 8 with a 1 ms delay). The layout is
fixed (`mms.protocol.otf_message_handler.create_predict_response`): a 26-byte header ("Prediction
success"), then per answer 60 bytes of fields (its 36-character request id among them) plus its
reason phrase and body, the first status code starting at byte 70 (6 modulo 16). Padding each
JSON body with trailing spaces (still the same JSON) to make its part a multiple of 16 bytes puts
every status code at 6 modulo 16, where no cut falls. NumPy answers are left as they are.
"""

from __future__ import annotations

READ_GRANULE = 16  # every size in netty's receive-buffer table is a multiple of this
ANSWER_FIELDS = 60  # id length + 36-char id + content-type length + status + phrase length + header count + body length


def padded(body: str | bytes, phrase: str = "") -> bytes:
    """`body` (JSON) with the trailing spaces that make its answer's part of the reply a multiple of 16 bytes."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    excess = (ANSWER_FIELDS + len(phrase.encode("utf-8")) + len(data)) % READ_GRANULE
    return data if excess == 0 else data + b" " * (READ_GRANULE - excess)
