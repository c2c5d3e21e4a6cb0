"""Headless Chromium (system binary, through Playwright) driving the harness page, for
`edgecloud verify` and the tests: one browser, one static site, many model runs.

Launch recipe from ../shared/STACK_FACTS.md: never a downloaded browser, WebGL on SwiftShader.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CommandFailed
from .webserver import StaticSite

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = os.environ.get("EDGECLOUD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# (runtime, backend) pairs `verify` runs: ONNX.js on its three backends, onnxruntime-web on wasm.
TARGETS = [("onnxjs", "cpu"), ("onnxjs", "wasm"), ("onnxjs", "webgl"), ("onnxruntime-web", "wasm")]


class BrowserError(CommandFailed):
    """Chromium could not be started or the harness page did not come up."""


def plain_tensor(array: np.ndarray) -> dict[str, Any]:
    """The harness's tensor format: {dtype, shape, data (flat list)}."""
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.reshape(-1).tolist()}


def from_plain(tensor: dict[str, Any]) -> np.ndarray:
    dtype = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "bool": np.bool_}.get(tensor["dtype"], np.float64)
    return np.asarray(tensor["data"], dtype=dtype).reshape(tensor["shape"])


def launch_chromium(playwright: Playwright, prefix: str = "edgecloud-chromium-") -> tuple[BrowserContext, str]:
    """A persistent context on a fresh profile, so nothing is cached from an earlier run;
    returns (context, profile dir the caller deletes after closing the context)."""
    if not Path(CHROMIUM).exists():
        raise BrowserError(f"Chromium not found at {CHROMIUM} (set EDGECLOUD_CHROMIUM)")
    profile = tempfile.mkdtemp(prefix=prefix)
    try:
        context = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    return context, profile


@contextmanager
def fresh_chromium(playwright: Playwright, prefix: str = "edgecloud-chromium-") -> Iterator[BrowserContext]:
    """`launch_chromium` for a `with` block: the context is closed and its profile deleted on exit."""
    context, profile = launch_chromium(playwright, prefix)
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


class HarnessBrowser:
    """A static site over a registry plus one Chromium page on the harness.

    Use as a context manager, or hand an existing Playwright context (tests reuse one browser).
    """

    def __init__(self, registry: Path, *, context: BrowserContext | None = None, site: StaticSite | None = None) -> None:
        self.registry = Path(registry)
        self._given_context = context
        self._given_site = site
        self._playwright = None
        self._profile: str | None = None
        self.context = context
        self.site = site
        self.page = None

    def __enter__(self) -> "HarnessBrowser":
        try:
            return self._start()
        except Exception as error:  # noqa: BLE001 - Playwright/OS errors become one clear line
            self.__exit__()
            if isinstance(error, BrowserError):
                raise
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise BrowserError(f"cannot start headless Chromium on the harness page: {reason}") from None

    def _start(self) -> "HarnessBrowser":
        if self.site is None:
            self.site = StaticSite(self.registry, {"cloud": None, "models": []}, port=0).start()
        if self.context is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self.context, self._profile = launch_chromium(self._playwright)
        self.page = self.context.new_page()
        self.page.goto(f"{self.site.url}/harness/index.html")
        self.page.wait_for_function("window.harnessReady === true", timeout=30_000)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.page is not None:
            self.page.close()
            self.page = None
        if self._given_context is None and self.context is not None:
            self.context.close()
            self.context = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None
        if self._given_site is None and self.site is not None:
            self.site.stop()
            self.site = None

    def run(
        self, runtime: str, backend: str, model_url: str, inputs: list[dict[str, np.ndarray]], input_names: list[str], repeats: int = 10
    ) -> dict[str, Any]:
        """Run `inputs` through one runtime/backend; outputs back as numpy arrays."""
        result = self.page.evaluate(
            "(args) => window.harness.runMany(args)",
            {
                "runtime": "onnxjs" if runtime == "onnxjs" else "ortweb",
                "backend": backend,
                "modelUrl": model_url,
                "feedsList": [{name: plain_tensor(array) for name, array in feeds.items()} for feeds in inputs],
                "inputNames": input_names,
                "repeats": repeats,
            },
        )
        if "outputs" in result:
            result["outputs"] = [{name: from_plain(t) for name, t in outs.items()} for outs in result["outputs"]]
        return result
