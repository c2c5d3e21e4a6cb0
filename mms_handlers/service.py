"""The MMS custom service: `handle(data, context)` is what the .mar's manifest names.

MMS calls `handle(None, context)` once when a worker loads the model, then with a list of
requests (one dict each) per batch. Every request gets its own answer and status: a bad one
is a 4xx for that request alone, and no input can raise out of here and kill the worker.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import codecs
from .engines import DEFAULT_ENGINE, Engine, load_engine
from .errors import RequestError
from .signature import Signature

logger = logging.getLogger(__name__)

MANIFEST_FILE = "model.json"
ENGINE_FILE = "engine.json"


@dataclass
class _Prepared:
    feeds: dict[str, np.ndarray]
    codec: codecs.Codec


class ModelService:
    """One model in one worker: its signature, its engine, and the per-request flow."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.signature: Signature | None = None
        self.manifest: dict[str, Any] = {}

    @property
    def initialized(self) -> bool:
        return self.engine is not None

    def initialize(self, context: Any) -> None:
        model_dir = Path(context.system_properties["model_dir"])
        self.manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
        engine_name = DEFAULT_ENGINE
        if (model_dir / ENGINE_FILE).exists():
            engine_name = json.loads((model_dir / ENGINE_FILE).read_text()).get("engine", DEFAULT_ENGINE)
        self.signature = Signature.from_manifest(self.manifest)
        self.engine = load_engine(engine_name, model_dir / self.manifest["cloud"]["file"])
        logger.info("loaded %s v%s on %s", self.manifest.get("name"), self.manifest.get("version"), engine_name)

    def handle_batch(self, data: list[dict[str, Any]], context: Any) -> list[str | bytes]:
        answers: list[str | bytes] = []
        for index, request in enumerate(data):
            try:
                prepared = self._prepare(request, _content_type(context, index))
                outputs = self._infer(prepared.feeds)
                answers.append(prepared.codec.encode(outputs))
            except RequestError as error:
                context.set_response_status(error.status, error.message, index)
                answers.append(error.body())
            except Exception as error:  # noqa: BLE001 - an engine failure must not kill the worker
                logger.exception("inference failed")
                failure = RequestError(f"inference failed: {type(error).__name__}: {error}", status=500)
                context.set_response_status(500, failure.message[:200], index)
                answers.append(json.dumps({"code": 500, "type": "InternalServerError", "message": failure.message}))
        return answers

    def _prepare(self, request: dict[str, Any], content_type: str | None) -> _Prepared:
        assert self.signature is not None
        body = _body(request)
        decoded = codecs.decode(body, content_type, self.signature)
        return _Prepared(feeds=self.signature.check(decoded.values), codec=decoded.codec)

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.engine is not None
        return self.engine.run(feeds)


def _body(request: dict[str, Any]) -> bytes:
    """The raw body: MMS puts it under "body" (or "data"); multipart fields under their names."""
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
        return bytes(value)
    return json.dumps(value).encode("utf-8")


def _content_type(context: Any, index: int) -> str | None:
    try:
        headers = context.get_all_request_header(index) or {}
    except Exception:  # noqa: BLE001 - older contexts or unit-test stubs
        return None
    for key, value in headers.items():
        if str(key).lower() == "content-type" and isinstance(value, str):
            return value
    return None


_service = ModelService()


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[str | bytes] | None:
    """MMS entry point (`mms_handlers.service:handle`)."""
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle_batch(data, context)
