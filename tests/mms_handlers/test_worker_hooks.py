"""worker_hooks swaps MMS's own worker functions, only those, only in an MMS worker, and only as its settings say."""

from __future__ import annotations

import logging
import sys
import types

import mms.service
from mms.metrics.metrics_store import MetricsStore
from mms.protocol import otf_message_handler as otf

from mms_handlers import wire, worker_hooks
from mms_handlers.worker_hooks import REQUEST_METRICS_ENV


def _worker(monkeypatch) -> types.ModuleType:
    """A stand-in for MMS's model_service_worker running as __main__, with MMS's own functions."""
    worker = types.ModuleType("__main__")
    worker.retrieve_msg, worker.emit_metrics = otf.retrieve_msg, mms.service.emit_metrics
    monkeypatch.setitem(sys.modules, "__main__", worker)
    return worker


def test_both_swaps_by_default_and_each_setting_keeps_mms_own(monkeypatch):
    monkeypatch.delenv(REQUEST_METRICS_ENV, raising=False)
    monkeypatch.setenv(worker_hooks.CODEC_ENV, "mms")
    worker = _worker(monkeypatch)
    assert worker_hooks.install() == ["emit_metrics"] and worker.retrieve_msg is otf.retrieve_msg
    monkeypatch.delenv(worker_hooks.CODEC_ENV)
    monkeypatch.setenv(REQUEST_METRICS_ENV, "1")
    worker = _worker(monkeypatch)
    assert worker_hooks.install() == ["retrieve_msg"] and worker.emit_metrics is mms.service.emit_metrics
    monkeypatch.delenv(REQUEST_METRICS_ENV)
    worker = _worker(monkeypatch)
    assert worker_hooks.install() == ["retrieve_msg", "emit_metrics"] and worker.retrieve_msg is wire.retrieve_msg
    assert worker_hooks.install() == []  # already ours
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # pytest, the CLI: no MMS worker
    assert worker_hooks.install() == []


def test_only_mms_prediction_time_line_is_left_out(caplog):
    store = MetricsStore({0: "a" * 36, 1: "b" * 36}, "mlp")
    store.add_counter("BatchSize", 2)
    store.add_time("PredictionTime", 0.5)
    store.add_counter("EngineRuns", 1)
    with caplog.at_level(logging.INFO, logger="mms.service"):
        worker_hooks.without_prediction_time(mms.service.emit_metrics)(store.store)
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split(".")[0] for line in lines] == ["[METRICS]BatchSize", "[METRICS]EngineRuns"]
