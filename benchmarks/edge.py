"""Edge benchmark: each browser runtime (and the cloud, called from the same page) in headless Chromium.

Per (model, runtime) a fresh Chromium profile is launched, so the cold start really has nothing
cached: the page `/bench/` loads the runtime and the model, runs one prediction and reports its
time from navigation start. Steady-state timings follow in the same page; then a second page in
the same profile measures the warm start (runtime and model from the HTTP cache). The page is
cross-origin isolated (COOP/COEP from StaticSite), so performance.now() is not coarsened.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgecloud.browser import fresh_chromium

from .models import BenchModel

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

RUNTIMES = ("onnxjs-cpu", "onnxjs-wasm", "onnxjs-webgl", "ortweb-wasm", "cloud")
CLOUD = "cloud"


@dataclass
class EdgeRow:
    model: str
    runtime: str
    cold_ms: float | None = None
    warm_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    runs: int = 0
    max_abs_diff: float | None = None  # first prediction vs onnxruntime in Python
    isolated: bool | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def reference_outputs(model: BenchModel) -> dict[str, np.ndarray]:
    """onnxruntime's answer to the sample, what every browser runtime is compared with."""
    from export.verify import onnxruntime_runner

    return onnxruntime_runner(str(model.version_dir / model.manifest["cloud"]["file"]))(model.sample())


def max_abs_diff(browser: dict[str, Any], reference: dict[str, np.ndarray]) -> float:
    worst = 0.0
    for name, want in reference.items():
        got = browser.get(name)
        if got is None or len(got["data"]) != want.size:
            return float("inf")
        worst = max(worst, float(np.max(np.abs(np.asarray(got["data"], dtype=np.float64) - want.reshape(-1)))))
    return worst


def _open(context: BrowserContext, url: str, timeout_ms: float) -> dict[str, Any]:
    """Load the bench page; its state after the first prediction (or its error)."""
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.benchReady === true", timeout=timeout_ms)
    state = page.evaluate(
        "() => window.benchError ? {error: window.benchError} :"
        " {firstMs: window.bench.firstMs, outputs: window.bench.outputs, isolated: window.bench.isolated}"
    )
    state["page"] = page
    return state


def measure(
    playwright: Playwright, url: str, row: EdgeRow, reference: dict[str, np.ndarray], seconds: float, max_runs: int, timeout_s: float
) -> EdgeRow:
    """Cold start, steady p50/p99 and warm start for one (model, runtime) in a fresh profile."""
    with fresh_chromium(playwright, prefix="edgecloud-bench-chromium-") as context:
        context.set_default_timeout(timeout_s * 1000)
        try:
            cold = _open(context, url, timeout_s * 1000)
            if "error" in cold:
                row.error = cold["error"].splitlines()[0][:160]
                return row
            row.cold_ms, row.isolated = cold["firstMs"], cold["isolated"]
            row.max_abs_diff = max_abs_diff(cold["outputs"], reference)
            times = cold["page"].evaluate("(args) => window.bench.steady(args)", {"seconds": seconds, "maxRuns": max_runs})
            cold["page"].close()
            row.runs = len(times)
            row.p50_ms, row.p99_ms = float(np.percentile(times, 50)), float(np.percentile(times, 99))
            warm = _open(context, url, timeout_s * 1000)
            row.warm_ms = warm.get("firstMs")
            if "error" in warm:
                row.error = f"warm start: {warm['error'][:140]}"
        except Exception as error:  # noqa: BLE001 - a hung or crashed runtime is a result, not the end of the run
            row.error = f"{type(error).__name__}: {str(error).splitlines()[0][:140]}"
    return row


def run_edge(
    site_url: str,
    cloud_url: str,
    models: list[BenchModel],
    seconds: float,
    max_runs: int,
    timeout_s: float = 60.0,
    runtimes: tuple[str, ...] = RUNTIMES,
    progress: Callable[[str], None] = lambda message: None,
) -> list[EdgeRow]:
    """Every runtime on every model; MMS must serve each model under its own name (batch size 1)."""
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as playwright:
        for model in models:
            reference = reference_outputs(model)
            for runtime in runtimes:
                progress(f"edge: {model.name} on {runtime}")
                query = {"model": model.name, "version": model.version_dir.name, "runtime": runtime}
                if runtime == CLOUD:
                    query["cloud"] = cloud_url
                url = f"{site_url}/bench/index.html?{urllib.parse.urlencode(query)}"
                rows.append(measure(playwright, url, EdgeRow(model.name, runtime), reference, seconds, max_runs, timeout_s))
    return rows
