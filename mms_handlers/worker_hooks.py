"""Put `wire`'s frame reader in place of MMS's own in the worker process running us.

MMS's worker (`mms/model_service_worker.py`, run as `__main__`) looks up `retrieve_msg` in its own
globals for every frame; the handler is imported inside that process when the worker loads the
model, so swapping that name when the handler loads is enough: every later frame is read by `wire`.
Outside an MMS worker (unit tests, the CLI) nothing matches and nothing changes.
`EDGECLOUD_MMS_CODEC=mms` keeps MMS's own reader (for comparing the two, or if ours were ever in doubt).
"""

from __future__ import annotations

import os
import sys

CODEC_ENV = "EDGECLOUD_MMS_CODEC"


def install() -> list[str]:
    """Swap MMS's frame reader for `wire`'s where MMS's is in use; the names swapped."""
    if os.environ.get(CODEC_ENV) == "mms":
        return []
    from mms.protocol import otf_message_handler as otf

    from . import wire

    swapped = []
    worker = sys.modules.get("__main__")
    if getattr(worker, "retrieve_msg", None) is otf.retrieve_msg:
        worker.retrieve_msg = wire.retrieve_msg  # type: ignore[union-attr]
        swapped.append("retrieve_msg")
    return swapped
