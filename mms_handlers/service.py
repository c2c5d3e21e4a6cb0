"""The MMS custom service: `handle(data, context)` is what the .mar's manifest names.

MMS calls `handle(None, context)` once when a worker loads the model, then with a list of
requests (one dict each) per batch. Every request gets its own answer and status: a bad one
is a 4xx for that request alone, compatible good ones share one engine run (`batching`), and
no input can raise out of here and kill the worker. Batch sizes (and, when asked, per-request
timings) go to MMS's metrics (`model_metrics.log`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry import model_json

from . import batching, codecs, frames, worker_hooks
from .engines import DEFAULT_ENGINE, Engine, load_engine
from .errors import RequestError
from .names import public_name
from .signature import Signature
from .worker_hooks import REQUEST_METRICS_ENV

logger = logging.getLogger(__name__)

MANIFEST_FILE = "model.json"
ENGINE_FILE = "engine.json"
# What a .mar names so MMS calls `handle` below (written by archive.py, required by mar_check.py).
HANDLER = "mms_handlers.service:handle"

# Metric names written to model_metrics.log (see docs/serving.md, "Metrics").
BATCH_SIZE_METRIC = "BatchSize"
ENGINE_RUNS_METRIC = "EngineRuns"
STACKED_METRIC = "StackedRequests"
PREPROCESS_METRIC = "PreprocessTime"
INFERENCE_METRIC = "InferenceTime"
POSTPROCESS_METRIC = "PostprocessTime"
# "1": also write the per-request timings (PreprocessTime, InferenceTime, PostprocessTime, StackedRequests).


@dataclass
class _Prepared:
    feeds: dict[str, np.ndarray]
    codec: codecs.Codec


class ModelService:
    """One model in one worker: its signature, its engine, and the per-batch flow."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.signature: Signature | None = None
        self.manifest: dict[str, Any] = {}
        self.model_name = ""

    @property
    def initialized(self) -> bool:
        return self.engine is not None

    def initialize(self, context: Any) -> None:
        """Read model.json and engine.json and load the engine; an EngineLoadError fails registration."""
        model_dir = Path(context.system_properties["model_dir"])
        self.manifest = model_json.read(model_dir / MANIFEST_FILE)
        engine_name = DEFAULT_ENGINE
        if (model_dir / ENGINE_FILE).exists():
            engine_name = json.loads((model_dir / ENGINE_FILE).read_text()).get("engine", DEFAULT_ENGINE)
        self.signature = Signature.from_manifest(self.manifest)
        self.model_name = public_name(getattr(context, "model_name", None) or "", self.manifest)
        self.engine = load_engine(engine_name, model_dir / self.manifest["cloud"]["file"])
        logger.info("loaded %s v%s on %s", self.manifest.get("name"), self.manifest.get("version"), engine_name)

    def handle_batch(self, data: list[dict[str, Any]], context: Any) -> list[str | bytes]:
        assert self.engine is not None and self.signature is not None
        metrics = _Metrics(context, len(data))
        answers: list[str | bytes] = [b""] * len(data)
        prepared: dict[int, _Prepared] = {}
        for index, request in enumerate(data):
            started = time.perf_counter()
            try:
                prepared[index] = self._prepare(request, _content_type(context, index))
            except RequestError as error:
                answers[index] = _fail(context, index, error)
            except Exception as error:  # noqa: BLE001 - a body no check foresaw fails alone, as a 400
                logger.exception("request %d of %d could not be read", index + 1, len(data))
                answers[index] = _fail(context, index, RequestError(f"unreadable request: {type(error).__name__}: {error}"))
            metrics.time(PREPROCESS_METRIC, started, index)

        report = batching.run_batch({i: p.feeds for i, p in prepared.items()}, self.signature, self.engine.run)
        for index, result in report.results.items():
            started = time.perf_counter()
            try:
                if result.error is not None:
                    raise result.error
                answer = prepared[index].codec.encode(result.outputs or {})
                answers[index] = answer if prepared[index].codec.name == codecs.NumpyCodec.name else frames.padded(answer)
            except Exception as error:  # noqa: BLE001 - an engine or encoding failure must not kill the worker
                logger.exception("request %d of %d failed", index + 1, len(data))
                answers[index] = _fail(context, index, RequestError(f"inference failed: {type(error).__name__}: {error}", 500))
            metrics.add(INFERENCE_METRIC, result.inference_ms, index)
            metrics.count(STACKED_METRIC, result.stacked_with, index)
            metrics.time(POSTPROCESS_METRIC, started, index)
        metrics.count(BATCH_SIZE_METRIC, len(data))
        metrics.count(ENGINE_RUNS_METRIC, report.engine_runs)
        return answers

    def _prepare(self, request: dict[str, Any], content_type: str | None) -> _Prepared:
        assert self.signature is not None
        version = (self.model_name, str(self.manifest.get("version", "")))
        codecs.check_content_type(content_type)  # before the body: MMS splits form bodies into fields
        decoded = codecs.decode(_body(request), content_type, self.signature, version)
        return _Prepared(feeds=self.signature.check(decoded.values), codec=decoded.codec)


class _Metrics:
    """MMS's per-batch MetricsStore (absent in unit-test stubs); idx None = the whole batch.

    Every metric is a log line the worker writes into a pipe and MMS's Java side parses and writes
    to a file again, tens of microseconds of CPU each (docs/benchmarks-hot-path.md): the largest
    cost the handler itself added to a small model's request. So by default a handler call writes
    only BatchSize and EngineRuns, and only when MMS handed it more than one request (for a lone
    request both are 1, and writing them made batch size 8 cost a lone request a third of its
    throughput: docs/benchmarks-hot-path.md); every call's and the per-request timings only when
    EDGECLOUD_REQUEST_METRICS=1 (ServerConfig.request_metrics, which a replica sets for its /metrics).
    """

    def __init__(self, context: Any, requests: int) -> None:
        self.store = getattr(context, "metrics", None)
        self.per_request = self.store is not None and os.environ.get(REQUEST_METRICS_ENV) == "1"
        self.per_call = self.store is not None and (requests > 1 or self.per_request)

    def add(self, name: str, ms: float, index: int | None = None) -> None:
        if self.per_request:
            self.store.add_time(name, round(ms, 3), idx=index)

    def time(self, name: str, started: float, index: int | None = None) -> None:
        if self.per_request:
            self.add(name, (time.perf_counter() - started) * 1000.0, index)

    def count(self, name: str, value: int, index: int | None = None) -> None:
        wanted = self.per_request if index is not None else self.per_call
        if wanted:
            self.store.add_counter(name, value, idx=index)


def _fail(context: Any, index: int, error: RequestError) -> bytes:
    """Set this request's status only (never the whole batch's) and answer MMS's error shape."""
    context.set_response_status(error.status, error.kind, index)
    return frames.padded(error.body(), error.kind)


def _body(request: dict[str, Any]) -> bytes | bytearray:
    """The raw body: MMS puts it under "body" (or "data"), as the bytearray it read; multipart fields under
    their names. Handed on as it is: the codecs read bytearrays too, so no copy."""
    for key in ("body", "data"):
        value = request.get(key)
        if value is not None:
            break
    else:
        values = [v for v in request.values() if isinstance(v, (bytes, bytearray, str))]
        if len(values) != 1:
            raise RequestError("empty request: send the input as the request body")
        value = values[0]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return value
    return json.dumps(value).encode("utf-8")


def _content_type(context: Any, index: int) -> str | None:
    """The request's Content-Type: the HTTP header, else the body parameter's own type."""
    try:
        headers = context.get_all_request_header(index) or {}
    except Exception:  # noqa: BLE001 - unit-test stubs without headers
        return None
    nested = None
    for key, value in headers.items():
        if isinstance(value, str) and str(key).lower() == "content-type":
            return value
        if isinstance(value, dict) and nested is None:
            nested = value.get("content-type")
    return nested


_service = ModelService()


def _record_load_error(line: str) -> None:
    """Append `line` to LOG_LOCATION's load-error file: under load MMS sometimes stops copying the
    dying worker's output before even the first line (seen once in four 2-worker suite runs)."""
    folder = os.environ.get("LOG_LOCATION")
    if folder:
        try:
            with open(Path(folder) / worker_hooks.LOAD_ERRORS_FILE, "a", encoding="utf-8") as out:
                out.write(line.replace("\n", " ") + "\n")
        except OSError:
            logger.warning("could not record the load error in %s", folder)


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[str | bytes] | None:
    """MMS entry point (`mms_handlers.service:handle`)."""
    if not _service.initialized:
        try:
            _service.initialize(context)
            if swapped := worker_hooks.install():
                logger.info("MMS worker functions swapped by mms_handlers.worker_hooks: %s", ", ".join(swapped))
        except Exception as error:
            # MMS stops copying a dying worker's output soon after its socket closes, often before the
            # traceback's last line (the reason) is logged; one line first lets `register` name it.
            reason = (str(error).strip().splitlines() or [""])[0]
            print(f"{type(error).__name__}: {reason}", flush=True)
            _record_load_error(f"{type(error).__name__}: {reason}")
            raise
    if data is None:
        return None
    return _service.handle_batch(data, context)
