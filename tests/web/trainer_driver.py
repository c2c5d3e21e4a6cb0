"""A page driver for personalisation tests: a PredictionHandler whose training conditions read a
fake battery the test sets (`battery(...)`), plus personalize/personalization/reset calls that
return errors as {error, code} instead of throwing through Playwright."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CREATE = """async ({ model, cloud, policy, chunkSteps, conditions }) => {
  const { PredictionHandler } = await import('/src/prediction-handler.js');
  if (window.handler) window.handler.dispose();
  window.fakeBattery ??= { charging: true, level: 1 };
  const environment = { connection: {}, getBattery: async () => window.fakeBattery };
  window.handler = await PredictionHandler.create({ registry: '/models', model, cloud, policy,
    update: { enabled: false }, training: { environment, conditions, chunkSteps } });
  return await window.handler.edgeReady();
}"""

PERSONALIZE = """async ({ data, options, pauseAtStep, stopAtStep }) => {
  window.progress = [];
  const onProgress = (event) => {
    window.progress.push(event);
    if (pauseAtStep && event.step >= pauseAtStep) window.fakeBattery = { charging: false, level: 0.1 };
    if (stopAtStep && event.step >= stopAtStep && window.handler.personalizer.runner) window.handler.personalizer.runner.terminate();
  };
  try {
    return await window.handler.personalize(data, { ...options, onProgress });
  } catch (error) {
    return { error: error.message, code: error.code ?? null };
  }
}"""

START = """({ data, options, pauseAtStep }) => {
  window.progress = [];
  const onProgress = (event) => {
    window.progress.push(event);
    if (pauseAtStep && event.step >= pauseAtStep) window.fakeBattery = { charging: false, level: 0.1 };
  };
  window.running = window.handler.personalize(data, { ...options, onProgress })
    .catch((error) => ({ error: error.message, code: error.code ?? null }));
}"""


class TrainerDriver:
    def __init__(self, page, site, mms) -> None:
        self.page, self.site, self.mms = page, site, mms

    def open(self, clear: bool = True) -> "TrainerDriver":
        self.page.goto(f"{self.site.url}/harness/index.html")
        self.page.wait_for_function("window.harnessReady === true")
        if clear:
            self.page.evaluate(
                """async () => {
                  for (const key of await caches.keys()) await caches.delete(key);
                  await new Promise((resolve, reject) => {
                    const req = indexedDB.deleteDatabase('edgecloud-training');
                    req.onsuccess = resolve; req.onerror = () => reject(req.error); req.onblocked = resolve;
                  });
                }"""
            )
        return self

    def reload(self) -> "TrainerDriver":
        return self.open(clear=False)

    def create(
        self, model: str, *, cloud: bool = True, policy: dict | None = None, chunk_steps: int = 2, conditions: dict | None = None
    ) -> dict[str, Any]:
        return self.page.evaluate(
            CREATE,
            {
                "model": model,
                "cloud": self.mms.config.inference_url if cloud else None,
                "policy": policy or {},
                "chunkSteps": chunk_steps,
                "conditions": {"pollMs": 50, **(conditions or {})},
            },
        )

    def battery(self, charging: bool, level: float) -> None:
        self.page.evaluate("(b) => { window.fakeBattery = b; }", {"charging": charging, "level": level})

    def personalize(
        self, x: Any, y: Any, pause_at_step: int | None = None, stop_at_step: int | None = None, **options: Any
    ) -> dict[str, Any]:
        data = {"inputs": _plain(x), "targets": _plain(y)}
        return self.page.evaluate(PERSONALIZE, {"data": data, "options": options, "pauseAtStep": pause_at_step, "stopAtStep": stop_at_step})

    def start(self, x: Any, y: Any, pause_at_step: int | None = None, **options: Any) -> None:
        self.page.evaluate(START, {"data": {"inputs": _plain(x), "targets": _plain(y)}, "options": options, "pauseAtStep": pause_at_step})

    def finish(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.running")

    def personalization(self) -> dict[str, Any] | None:
        return self.page.evaluate("() => window.handler.personalization()")

    def parameters(self) -> dict[str, np.ndarray]:
        found = self.personalization()
        assert found is not None, "no personalisation"
        return {k: np.asarray(v["data"], np.float32).reshape(v["shape"]) for k, v in found["parameters"].items()}

    def reset(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.handler.resetPersonalization()")

    def status(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.handler.status()")

    def predict(self, x: Any, privacy: str) -> dict[str, Any]:
        return self.page.evaluate(
            """async ({ input, privacy }) => {
              try { return await window.handler.predict(input, { privacy }); }
              catch (error) { return { error: error.message, code: error.code ?? null }; }
            }""",
            {"input": _plain(x), "privacy": privacy},
        )


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


def personalises_like_onnxruntime(
    trainer: TrainerDriver, name: str, version_dir: Path, x, y, *, steps: int, tensors: int, rate: float = 0.01
) -> None:
    """Two epochs in the page on onnxruntime-web: every tensor moves, parameters and losses equal onnxruntime's."""
    from export.train.runner import base_parameters, train

    assert trainer.create(name, cloud=False)["state"] == "ready"
    result = trainer.personalize(x, y, epochs=2, learningRate=rate, shuffle=False)
    assert "error" not in result, result
    assert result["backend"].startswith("onnxruntime-web/wasm") and result["steps"] == steps
    got = trainer.parameters()
    ours = train(version_dir, x, y, epochs=2, learning_rate=rate)
    base = base_parameters(version_dir)
    assert set(got) == set(ours.parameters) and len(got) == tensors
    for parameter in got:
        assert np.abs(got[parameter] - ours.parameters[parameter]).max() <= 1e-5, parameter
        assert np.abs(got[parameter] - base[parameter]).max() > 1e-4, parameter  # every tensor moved
    np.testing.assert_allclose(result["loss"], ours.losses, atol=1e-5)
    assert trainer.page.errors == []
