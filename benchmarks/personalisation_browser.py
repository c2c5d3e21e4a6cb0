"""The browser half of `benchmarks.personalisation`: the demo forecaster's training step timed in
Chromium on every runtime the page can train on, and one whole `handler.personalize` on a
person's first 30 s with the page's timer lateness measured meanwhile.

Step times: the harness page runs `train.edge.onnx` (ONNX.js cpu and wasm) or `train.onnx`'s
browser file (onnxruntime-web) on one batch of feeds (`edgecloud.train_verify.step_feeds`), as
`edgecloud verify` does; the median of `repeats` timed runs after the compared one. Wall time:
`personalize()` on the harness page from the call to its answer (the training worker's start,
its session, every step and every IndexedDB checkpoint included), while a 10 ms `setInterval`
on the main thread records how late it fired at worst (started 1 s before the call, so the
handler's own start has settled; reset at the call). An idle page runs the same timer as a
control: on a loaded 2-core machine the timer is late without any work of ours.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from edgecloud.webserver import StaticSite

TIMER_MS = 10
SETTLE_MS = 1000
# (label, handler policy, data form) for the wall-time runs: the page's default and onnxruntime-web
# only, on flat {data, shape} tensors as the demo page passes them; and once on nested rows
# (`x.tolist()`), whose flattening runs on the main thread before the worker starts.
ORTWEB_ONLY = {"onnxjsBackends": []}
PERSONALISE_RUNS = [
    ("page default (fastest verified: trains on the first of training.edge.verified by median_ms)", {}, "flat"),
    ("onnxruntime-web only", ORTWEB_ONLY, "flat"),
    ("page default, nested rows", {}, "nested"),
]

PERSONALISE = """async ({ model, data, options, policy, timerMs, settleMs, predict, output }) => {
  await new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase('edgecloud-training');
    req.onsuccess = resolve; req.onerror = () => reject(req.error); req.onblocked = resolve;
  });
  const { PredictionHandler } = await import('/src/prediction-handler.js');
  if (window.handler) window.handler.dispose();
  const environment = { connection: {}, getBattery: async () => ({ charging: true, level: 1 }) };
  window.handler = await PredictionHandler.create({ registry: '/models', model, cloud: null, policy,
    update: { enabled: false }, training: { environment } });
  await window.handler.edgeReady();
  let start = performance.now();
  let last = start;
  let lateness = 0;
  let worstAt = 0;
  let trainingFrom = null;
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last - timerMs > lateness) [lateness, worstAt] = [now - last - timerMs, last - start];
    last = now;
  }, timerMs);
  // Let the handler's own start (its inference worker warming up) settle first: what is measured
  // is the personalisation, not the page load.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  [start, lateness, worstAt] = [performance.now(), 0, 0];
  const onProgress = (event) => { if (event.state === 'training' && trainingFrom === null) trainingFrom = performance.now() - start; };
  try {
    const result = await window.handler.personalize(data, { ...options, onProgress });
    const wallMs = performance.now() - start;
    clearInterval(timer);
    let forecast;
    if (predict) {  // the page's own forecasts with the personalised model, after the timed part
      const answer = await window.handler.predict(predict, { privacy: 'local-only' });
      if (!answer.personalized) throw new Error(`the forecasts ran ${answer.ranOn} without the personalisation`);
      const out = answer.outputs[output];
      forecast = out.data ? Array.from(out.data) : out.flat(Infinity);
    }
    return { wallMs, maxLatenessMs: lateness, worstAtMs: worstAt, trainingFromMs: trainingFrom, steps: result.steps,
             samples: result.samples, backend: result.backend, parameters: window.handler.personalization().parameters, forecast };
  } catch (error) {
    return { error: String(error.message ?? error) };
  } finally {
    clearInterval(timer);
  }
}"""


IDLE = """async ({ ms, timerMs }) => {
  let last = performance.now();
  let lateness = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    lateness = Math.max(lateness, now - last - timerMs);
    last = now;
  }, timerMs);
  await new Promise((resolve) => setTimeout(resolve, ms));
  clearInterval(timer);
  return lateness;
}"""


def step_times(
    version_dir: Path,
    repeats: int = 5,
    targets: list[tuple[str, str]] | None = None,
    context: "BrowserContext | None" = None,
    site: "StaticSite | None" = None,
) -> list[dict[str, Any]]:
    """Median ms of one training step per (runtime, backend) of `targets` (default: every runtime
    the page trains on), with its max |diff| against onnxruntime; in `context`/`site` when given."""
    import onnx

    from edgecloud.browser import HarnessBrowser
    from edgecloud.edge_verify import judged
    from edgecloud.train_verify import TRAIN_TARGETS, step_feeds
    from export.manifest import read_manifest
    from export.parity import DEFAULT
    from export.verify import onnxruntime_runner

    manifest = read_manifest(version_dir)
    training = manifest["training"]
    edge_file = (training.get("edge") or {}).get("file", training["file"])
    feeds = step_feeds(version_dir, manifest, 1)
    expected = [onnxruntime_runner(str(version_dir / training["file"]))(f) for f in feeds]
    step = onnx.load(str(version_dir / edge_file), load_external_data=False)
    constants = {i.name for i in step.graph.initializer}
    names = [i.name for i in step.graph.input if i.name not in constants]
    url = f"/models/{manifest['name']}/{manifest['version']}/{edge_file}"
    rows = []
    with HarnessBrowser(version_dir.parent.parent, context=context, site=site) as browser:
        for runtime, backend in targets or TRAIN_TARGETS:
            result = browser.run(runtime, backend, url, feeds, names, repeats)
            row = {"runtime": runtime, "backend": backend, "file": edge_file, "batch": training["batch_size"]}
            if "outputs" in result:
                figure = judged(expected, result["outputs"], DEFAULT)
                row.update(median_ms=result["medianMs"], max_abs_diff=figure.max_abs_diff, passed=figure.passed)
            else:
                row.update(median_ms=None, max_abs_diff=None, error=result.get("error", "")[:200])
            rows.append(row)
    return rows


def _flat(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": "float32", "shape": list(array.shape), "data": array.astype(np.float32).ravel().tolist()}


class BrowserPages:
    """The registry served on a free port and one Chromium; `personalise` runs one
    `handler.personalize` on a fresh harness page (see PERSONALISE), `idle_lateness` the control."""

    def __init__(self, registry: Path) -> None:
        self.registry = registry

    def __enter__(self) -> "BrowserPages":
        from playwright.sync_api import sync_playwright

        from edgecloud.browser import fresh_chromium
        from edgecloud.webserver import StaticSite

        self._stack = ExitStack()
        try:
            self.site = StaticSite(self.registry, {"cloud": None, "models": []}, port=0).start()
            self._stack.callback(self.site.stop)
            self.context = self._stack.enter_context(fresh_chromium(self._stack.enter_context(sync_playwright())))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def step_times(self, version_dir: Path, targets: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        """`step_times` in this browser (Playwright allows one sync session per thread)."""
        return step_times(version_dir, targets=targets, context=self.context, site=self.site)

    def _page(self):
        page = self.context.new_page()
        page.goto(f"{self.site.url}/harness/index.html")
        page.wait_for_function("window.harnessReady === true", timeout=30_000)
        return page

    def personalise(
        self,
        model: str,
        data: dict[str, Any],
        options: dict[str, Any],
        policy: dict[str, Any],
        predict: Any = None,
        output: str | None = None,
    ) -> dict[str, Any]:
        """One personalisation of `model` on a fresh page; with `predict` (model inputs), also the
        page's own forecasts of `output` with the personalised model, after the timed part."""
        page = self._page()
        try:
            arguments = {"model": model, "data": data, "options": options, "policy": policy, "timerMs": TIMER_MS, "settleMs": SETTLE_MS}
            return page.evaluate(PERSONALISE, {**arguments, "predict": predict, "output": output})
        finally:
            page.close()

    def idle_lateness(self, ms: int) -> float:
        page = self._page()
        try:
            return page.evaluate(IDLE, {"ms": ms, "timerMs": TIMER_MS})
        finally:
            page.close()


def flat_data(name: str, output: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Personalisation data as the demo page passes it: flat `{data, shape}` tensors by name."""
    return {"inputs": {name: _flat(x)}, "targets": {output: _flat(y)}}


def personalise_in_browser(
    registry: Path, model: str, name: str, output: str, x: np.ndarray, y: np.ndarray, *, epochs: int, learning_rate: float, seed: int
) -> list[dict[str, Any]]:
    """One `handler.personalize` per PERSONALISE_RUNS entry, each on a fresh page: wall time,
    worst timer lateness, steps, backend and the personalised parameters. `name`/`output`: the
    model's input and output names (the flat form is keyed by them)."""
    forms = {"flat": flat_data(name, output, x, y), "nested": {"inputs": x.tolist(), "targets": y.tolist()}}
    options = {"epochs": epochs, "learningRate": learning_rate, "shuffle": True, "seed": seed}
    runs = []
    with BrowserPages(registry) as pages:
        for label, policy, form in PERSONALISE_RUNS:
            runs.append({"run": label, "policy": policy, "data_form": form, **pages.personalise(model, forms[form], options, policy)})
        # the control: the same timer on a page doing nothing, as long as the longest run
        idle = pages.idle_lateness(max(1000, int(max((run.get("wallMs", 0) for run in runs), default=0))))
        runs.append({"run": "control: idle page, same timer", "data_form": "-", "maxLatenessMs": idle})
    return runs
