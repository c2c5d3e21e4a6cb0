"""Put `wire`'s frame reader and reply writer in place of MMS's own in the worker process running us.

MMS's worker (`mms/model_service_worker.py`, run as `__main__`) looks up `retrieve_msg` in its own
globals for every frame, and `mms.service.Service.predict` looks up `create_predict_response` in
`mms.service`'s; the handler is imported inside that process when the worker loads the model, so
swapping those two names when the handler loads is enough: every later frame goes through `wire`.
Outside an MMS worker (unit tests, the CLI) nothing matches and nothing changes.
`EDGECLOUD_MMS_CODEC=mms` keeps MMS's own code (for comparing the two, or if ours were ever in doubt).
"""

from __future__ import annotations

import os
import sys

CODEC_ENV = "EDGECLOUD_MMS_CODEC"


def install() -> list[str]:
    """Swap MMS's frame functions for `wire`'s where MMS's are in use; the names swapped."""
    if os.environ.get(CODEC_ENV) == "mms":
        return []
    import mms.service
    from mms.protocol import otf_message_handler as otf

    from . import wire

    swapped = []
    worker = sys.modules.get("__main__")
    if getattr(worker, "retrieve_msg", None) is otf.retrieve_msg:
        worker.retrieve_msg = wire.retrieve_msg  # type: ignore[union-attr]
        swapped.append("retrieve_msg")
    if getattr(mms.service, "create_predict_response", None) is otf.create_predict_response:
        mms.service.create_predict_response = wire.create_predict_response
        swapped.append("create_predict_response")
    return swapped
