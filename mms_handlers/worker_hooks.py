"""Two swaps in the MMS worker process running us: `wire`'s frame reader for MMS's, and MMS's own
`PredictionTime` metric line left out unless per-request metrics are asked for.

MMS's worker (`mms/model_service_worker.py`, run as `__main__`) looks up `retrieve_msg` and
`emit_metrics` in its own globals for every frame; the handler is imported inside that process when
the worker loads the model, so swapping those names when the handler loads is enough. `PredictionTime`
is a log line per handler call that the worker writes into a pipe and MMS's Java side parses and
writes again (30-90 µs of the worker's CPU per request in docs/benchmarks-hot-path.md, more than
onnxruntime for a small model); it comes back with EDGECLOUD_REQUEST_METRICS=1
(ServerConfig.request_metrics), as the handler's own per-request timings do.
Outside an MMS worker (unit tests, the CLI) nothing matches and nothing changes.
`EDGECLOUD_MMS_CODEC=mms` keeps MMS's own reader (for comparing the two, or if ours were ever in doubt).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

CODEC_ENV = "EDGECLOUD_MMS_CODEC"
# Set by the replica (and serve) when MMS should keep its per-request metric lines.
REQUEST_METRICS_ENV = "EDGECLOUD_REQUEST_METRICS"
# In MMS's LOG_LOCATION: the handler appends why it could not load a model, one line each, and
# `MmsServer.register` names it. MMS's copy of a dying worker's output can end before that line.
LOAD_ERRORS_FILE = "load_errors.log"
PREDICTION_TIME = "PredictionTime"  # mms.service.PREDICTION_METRIC


def install() -> list[str]:
    """Swap MMS's frame reader and metric writer in the worker where MMS's own are in use; the names swapped."""
    import mms.service
    from mms.protocol import otf_message_handler as otf

    from . import wire

    swapped = []
    worker = sys.modules.get("__main__")
    if os.environ.get(CODEC_ENV) != "mms" and getattr(worker, "retrieve_msg", None) is otf.retrieve_msg:
        worker.retrieve_msg = wire.retrieve_msg  # type: ignore[union-attr]
        swapped.append("retrieve_msg")
    if os.environ.get(REQUEST_METRICS_ENV) != "1" and getattr(worker, "emit_metrics", None) is mms.service.emit_metrics:
        worker.emit_metrics = without_prediction_time(mms.service.emit_metrics)  # type: ignore[union-attr]
        swapped.append("emit_metrics")
    return swapped


def without_prediction_time(emit: Callable[[list[Any]], None]) -> Callable[[list[Any]], None]:
    """`emit` for every metric of a handler call but MMS's own PredictionTime."""

    def emit_metrics(metrics: list[Any]) -> None:
        emit([metric for metric in metrics if getattr(metric, "name", None) != PREDICTION_TIME])

    return emit_metrics
