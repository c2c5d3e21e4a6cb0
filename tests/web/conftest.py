"""Fixtures for the browser Prediction Handler tests: registry models, their MMS archives, and a
page driver that creates a handler and calls predict() through Playwright."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mms_handlers.archive import build_archive

from .registry_models import (
    batch_of_one,
    fitted_forecaster,
    heavy_model,
    lstm_model,
    pinned_to_one_row,
    tamper,
    three_d,
    verified_table,
    write_version,
)
from .train_fixture import make_trainable

FORECASTER = "web_fc"
LSTM_MARKED_ORT = "web_lstm_ort"
LSTM_MARKED_ONNXJS = "web_lstm_js"
HEAVY = "web_heavy"
TAMPERED = "web_tamper"
BUMPED = "web_bump"
EDGE_VARIANT = "web_variant"  # its edge file (model.edge.onnx) throws for batches > 1
PINNED = "web_pinned"  # its edge file was pinned to one row (model.json edge.inputs)
SLOW_CLOUD = "web_slow"  # registered with a long batch delay: a lone request waits it out
SLOW_CLOUD_DELAY_MS = 8000
FORECASTER_3D = "web_fc3d"  # the forecaster with a [?, 64, 1] window
TRAINABLE = "web_train"  # the forecaster with train_fixture.py's step graph
BUMPED_TRAINABLE = "web_train_bump"  # gets a version 2 during a test


@dataclass
class WebModels:
    registry: Path
    forecaster: tuple[Any, Any]  # (weights, bias) of web_fc v1


@pytest.fixture(scope="session")
def web_models(registry: Path, model_store: Path, mms) -> WebModels:
    """Every model the browser tests use, in the session registry; the cloud ones also in MMS."""
    model, weights, bias = fitted_forecaster()
    write_version(registry, FORECASTER, "1", model)
    write_version(
        registry,
        LSTM_MARKED_ORT,
        "1",
        lstm_model(),
        runtime="onnxruntime-web",
        verified=verified_table("model.onnx", runtime="onnxruntime-web", wasm=True),
    )
    # Wrongly marked for ONNX.js: the browser must find out at load time and let the cloud answer.
    write_version(registry, LSTM_MARKED_ONNXJS, "1", lstm_model())
    write_version(registry, HEAVY, "1", heavy_model(), verified=verified_table("model.onnx", cpu=True))
    tampered = write_version(registry, TAMPERED, "1", fitted_forecaster()[0])
    write_version(registry, BUMPED, "1", fitted_forecaster()[0])
    write_version(registry, EDGE_VARIANT, "1", model, edge_model=batch_of_one(model))
    write_version(registry, PINNED, "1", model, edge_model=pinned_to_one_row(model))
    write_version(registry, SLOW_CLOUD, "1", model)
    write_version(registry, FORECASTER_3D, "1", three_d(model))
    for name in (FORECASTER, LSTM_MARKED_ONNXJS, HEAVY, TAMPERED, EDGE_VARIANT, PINNED, SLOW_CLOUD, FORECASTER_3D):
        build_archive(registry / name / "1", model_store)
    for name in (FORECASTER, LSTM_MARKED_ONNXJS, HEAVY, TAMPERED, EDGE_VARIANT, PINNED, FORECASTER_3D):
        mms.register(f"{name}.mar")
    mms.register(f"{SLOW_CLOUD}.mar", batch_size=8, max_batch_delay_ms=SLOW_CLOUD_DELAY_MS)
    tamper(tampered)  # after archiving: the cloud copy is intact, the registry copy is not
    mms.wait_until_healthy()
    return WebModels(registry=registry, forecaster=(weights, bias))


CREATE = """async (options) => {
  const { PredictionHandler } = await import('/src/prediction-handler.js');
  if (window.handler) window.handler.dispose();
  window.handler = await PredictionHandler.create(options);
  return await window.handler.edgeReady();
}"""

PREDICT = """async ({ input, privacy }) => {
  try {
    return await window.handler.predict(input, privacy ? { privacy } : {});
  } catch (error) {
    return { error: error.message, code: error.code ?? null };
  }
}"""


class HandlerDriver:
    """Drives one PredictionHandler inside a real page (the harness page, cross-origin isolated)."""

    def __init__(self, page, site, mms) -> None:
        self.page, self.site, self.mms = page, site, mms

    def open(self) -> "HandlerDriver":
        self.page.goto(f"{self.site.url}/harness/index.html")
        self.page.wait_for_function("window.harnessReady === true")
        # Cache Storage outlives pages in the shared browser profile: every test starts empty.
        self.page.evaluate("async () => { for (const key of await caches.keys()) await caches.delete(key); }")
        return self

    def create(self, model: str, *, cloud: str | None | bool = True, **options: Any) -> dict[str, Any]:
        url = self.mms.config.inference_url if cloud is True else (cloud or None)
        options.setdefault("update", {"enabled": False})
        return self.page.evaluate(CREATE, {"registry": "/models", "model": model, "cloud": url, **options})

    def predict(self, input: Any, privacy: str | None = None) -> dict[str, Any]:
        return self.page.evaluate(PREDICT, {"input": input, "privacy": privacy})

    def status(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.handler.status()")


@pytest.fixture
def driver(page, site, mms, web_models) -> HandlerDriver:
    return HandlerDriver(page, site, mms).open()


@pytest.fixture(scope="session")
def trainable(registry: Path, model_store: Path, mms, web_models):
    model, weights, bias = fitted_forecaster()
    version_dir = write_version(registry, TRAINABLE, "1", model)
    make_trainable(version_dir)
    build_archive(version_dir, model_store)
    mms.register(f"{TRAINABLE}.mar")
    make_trainable(write_version(registry, BUMPED_TRAINABLE, "1", model))
    mms.wait_until_healthy()
    return version_dir, weights, bias
