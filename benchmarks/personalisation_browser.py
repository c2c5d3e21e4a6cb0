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

from pathlib import Path
from typing import Any

import numpy as np

TIMER_MS = 10
SETTLE_MS = 1000
# (label, handler policy, data form) for the wall-time runs: the page's default and onnxruntime-web
# only, on flat {data, shape} tensors as the demo page passes them; and once on nested rows
# (`x.tolist()`), whose flattening runs on the main thread before the worker starts.
PERSONALISE_RUNS = [
    ("page default (fastest verified: trains on the first of training.edge.verified by median_ms)", {}, "flat"),
    ("onnxruntime-web only", {"onnxjsBackends": []}, "flat"),
    ("page default, nested rows", {}, "nested"),
]

PERSONALISE = """async ({ model, data, options, policy, timerMs, settleMs }) => {
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
    return { wallMs, maxLatenessMs: lateness, worstAtMs: worstAt, trainingFromMs: trainingFrom, steps: result.steps,
             samples: result.samples, backend: result.backend, parameters: window.handler.personalization().parameters };
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


def step_times(version_dir: Path, repeats: int = 5) -> list[dict[str, Any]]:
    """Median ms of one training step per (runtime, backend), with its max |diff| against onnxruntime."""
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
    with HarnessBrowser(version_dir.parent.parent) as browser:
        for runtime, backend in TRAIN_TARGETS:
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


def personalise_in_browser(
    registry: Path, model: str, name: str, output: str, x: np.ndarray, y: np.ndarray, *, epochs: int, learning_rate: float, seed: int
) -> list[dict[str, Any]]:
    """One `handler.personalize` per PERSONALISE_RUNS entry, each on a fresh page: wall time,
    worst timer lateness, steps, backend and the personalised parameters. `name`/`output`: the
    model's input and output names (the flat form is keyed by them)."""
    from playwright.sync_api import sync_playwright

    from edgecloud.browser import fresh_chromium
    from edgecloud.webserver import StaticSite

    forms = {
        "flat": {"inputs": {name: _flat(x)}, "targets": {output: _flat(y)}},
        "nested": {"inputs": x.tolist(), "targets": y.tolist()},
    }
    options = {"epochs": epochs, "learningRate": learning_rate, "shuffle": True, "seed": seed}
    runs = []
    site = StaticSite(registry, {"cloud": None, "models": []}, port=0).start()
    try:
        with sync_playwright() as playwright, fresh_chromium(playwright) as context:
            for label, policy, form in PERSONALISE_RUNS:
                page = context.new_page()
                page.goto(f"{site.url}/harness/index.html")
                page.wait_for_function("window.harnessReady === true", timeout=30_000)
                result = page.evaluate(
                    PERSONALISE,
                    {"model": model, "data": forms[form], "options": options, "policy": policy, "timerMs": TIMER_MS, "settleMs": SETTLE_MS},
                )
                page.close()
                runs.append({"run": label, "policy": policy, "data_form": form, **result})
            page = context.new_page()  # the control: the same timer on a page doing nothing, as long
            page.goto(f"{site.url}/harness/index.html")
            longest = max((run.get("wallMs", 0) for run in runs), default=0)
            idle = page.evaluate(IDLE, {"ms": max(1000, int(longest)), "timerMs": TIMER_MS})
            page.close()
            runs.append({"run": "control: idle page, same timer", "data_form": "-", "maxLatenessMs": idle})
    finally:
        site.stop()
    return runs
