"""The npm package as a page author gets it: `npm pack` the package, `npm install` the tarball into
an empty project (offline), bundle a small page against it with esbuild, and drive that page in
Chromium against the real stack (static site for the registry, MMS): predict on the edge (ONNX.js
wasm and webgl, onnxruntime-web), fall back to the cloud, personalise. The page serves the worker bundles
and the runtime files itself (copied by the package's own `onnx-edgecloud-web-assets`), so any
request to the static site's `/src/` or `/vendor/` means a hard-coded path is left.

Offline install: npm needs a package's registry metadata to resolve a dependency, and setup's
`npm ci` caches only tarballs, so `npm install --offline` of the tarball alone fails (ENOTCACHED).
The consumer's node_modules is therefore seeded first with hard-linked copies of the package's
runtime dependencies (the non-dev entries of its package-lock.json, as setup installed them); npm
then finds every dependency of the tarball satisfied and installs the tarball only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from edgecloud.paths import node_modules, web_root

from .conftest import FORECASTER, LSTM_MARKED_ORT, TAMPERED, TRAINABLE
from .registry_models import pulse_signal, windows

pytestmark = [pytest.mark.integration]

CONSUMER = Path(__file__).parent / "npm_consumer"
PACKAGE = "onnx-edgecloud-web"


def run(command: list[str], cwd: Path) -> str:
    """Run a build step; its own output in the failure message, never a traceback of ours."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def runtime_dependencies() -> list[str]:
    """Top-level folders of node_modules that the package needs at run time (its lockfile's non-dev entries)."""
    lock = json.loads((web_root() / "package-lock.json").read_text())
    folders = set()
    for path, entry in lock["packages"].items():
        if not path or entry.get("dev"):
            continue
        name = path.split("node_modules/")[1]
        folders.add("/".join(name.split("/")[:2]) if name.startswith("@") else name.split("/")[0])
    return sorted(folders)


def seed(consumer: Path) -> None:
    for name in runtime_dependencies():
        target = consumer / "node_modules" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(node_modules() / name, target, copy_function=os.link)
        except OSError:  # another file system: copy instead
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(node_modules() / name, target)


class Recorded(SimpleHTTPRequestHandler):
    paths: list[str]

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_GET(self):  # noqa: N802 - stdlib name
        self.paths.append(urlsplit(self.path).path)
        super().do_GET()


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> dict:
    """The packed tarball's npm pack --json record."""
    out = tmp_path_factory.mktemp("pack")
    [record] = json.loads(run(["npm", "pack", "--json", "--pack-destination", str(out)], web_root()))
    record["tarball"] = out / record["filename"]
    return record


@pytest.fixture(scope="module")
def consumer_site(package, tmp_path_factory):
    """The consumer project installed, built and served: (its URL, the paths requested from it, the project folder)."""
    project = tmp_path_factory.mktemp("consumer")
    shutil.copytree(CONSUMER, project, dirs_exist_ok=True)
    seed(project)
    run(["npm", "install", str(package["tarball"]), "--offline", "--no-audit", "--no-fund"], project)
    dist = project / "dist"
    esbuild = str(node_modules() / ".bin" / "esbuild")
    run(
        [
            esbuild,
            "src/main.js",
            "src/edge-worker.js",
            "src/train-worker.js",
            "--bundle",
            "--format=esm",
            "--outdir=dist",
            "--log-level=warning",
        ],
        project,
    )
    run([str(project / "node_modules" / ".bin" / "onnx-edgecloud-web-assets"), str(dist / "runtimes")], project)
    shutil.copy(project / "index.html", dist / "index.html")
    paths: list[str] = []
    handler = type("Handler", (Recorded,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(dist)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths, project
    server.shutdown()
    server.server_close()


def declared(*names: str) -> dict[str, list[str]]:
    """Member names of the package's TypeScript declarations (types/check/members.js)."""
    return json.loads(run(["node", "types/check/members.js", *names], web_root()))


def test_the_tarball_holds_the_package_and_installs_with_its_runtimes(package, consumer_site):
    files = {entry["path"] for entry in package["files"]}
    assert {"package.json", "src/index.js", "src/edge-worker.js", "src/train-worker.js", "types/index.d.ts", "bin/copy-assets.js"} <= files
    assert not [f for f in files if f.startswith(("demo/", "harness/", "bench/", "test/", "types/check/", "node_modules/"))]
    _, _, project = consumer_site
    installed = json.loads((project / "node_modules" / PACKAGE / "package.json").read_text())
    assert installed["name"] == PACKAGE and "private" not in installed
    assert set(installed["dependencies"]) == {"onnxjs", "onnxruntime-web"}
    assert json.loads((project / "package.json").read_text())["dependencies"][PACKAGE].startswith("file:")


@pytest.fixture
def app(page, consumer_site, site, mms, web_models, trainable):
    url, paths, _ = consumer_site
    requests: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    page.goto(f"{url}/index.html")
    page.wait_for_function("window.app !== undefined")
    page.requests, page.failed = requests, failed  # type: ignore[attr-defined]

    def start(model: str, **options):
        return page.evaluate(
            "(o) => window.app.start(o)", {"registry": f"{site.url}/models", "model": model, "cloud": mms.config.inference_url, **options}
        )

    page.start = start  # type: ignore[attr-defined]
    page.predict = lambda x, privacy="auto": page.evaluate("([x, p]) => window.app.predict(x, p)", [x, privacy])  # type: ignore[attr-defined]
    return page


def test_the_bundled_page_predicts_on_the_edge_falls_back_to_the_cloud_and_personalises(app, consumer_site, site, mms, web_models):
    url, served, _ = consumer_site
    types = declared("PredictResult", "EdgeStatus", "HandlerStatus", "PersonalizeResult", "Personalization")
    x, y = windows(pulse_signal(120, period=37.0, noise=0.05, seed=3))
    weights, bias = web_models.forecaster

    ready = app.start(FORECASTER)
    assert (ready["state"], ready["backend"], ready["reason"]) == ("ready", "onnxjs/wasm", None), ready  # onnx-wasm.wasm was found
    assert sorted(ready) == types["EdgeStatus"]
    edge = app.predict(x[:2].tolist(), "local-only")
    assert edge["ranOn"] == "edge" and edge["backend"] == "onnxjs/wasm", edge
    assert sorted(edge) == types["PredictResult"]
    np.testing.assert_allclose(np.reshape(edge["outputs"]["forecast"]["data"], (2, 8)), x[:2] @ weights + bias, atol=1e-5)
    bad = app.predict([1, 2, 3], "local-only")
    assert bad["code"] == "bad-input" and bad["isEdgecloudError"] is True, bad
    assert sorted(app.evaluate("() => window.app.status()")) == types["HandlerStatus"]

    # webgl in the worker: the package's stand-in document gives ONNX.js an OffscreenCanvas.
    assert app.start(FORECASTER, policy={"onnxjsBackends": ["webgl"]})["backend"] == "onnxjs/webgl"
    on_gpu = app.predict(x[:2].tolist(), "local-only")
    np.testing.assert_allclose(np.reshape(on_gpu["outputs"]["forecast"]["data"], (2, 8)), x[:2] @ weights + bias, atol=1e-5)

    assert app.start(TAMPERED)["state"] == "unavailable"
    fallback = app.predict(x[:1].tolist(), "prefer-edge")
    assert fallback["ranOn"] == "cloud" and fallback["fallbackReason"].startswith("edge-integrity: "), fallback

    assert app.start(LSTM_MARKED_ORT)["backend"] == "onnxruntime-web/wasm"

    assert app.start(TRAINABLE)["state"] == "ready"
    trained = app.evaluate(
        "(d) => window.app.personalize(d, {epochs: 2, batchSize: 6, learningRate: 0.05, seed: 1})",
        {"inputs": x[:12].tolist(), "targets": y[:12].tolist()},
    )
    assert trained.get("personalized") is True, trained
    assert sorted(trained) == types["PersonalizeResult"]
    mine = app.evaluate("() => window.app.personalization()")
    assert sorted(mine) == types["Personalization"]
    w = np.reshape(mine["parameters"]["W"]["data"], mine["parameters"]["W"]["shape"])
    b = np.reshape(mine["parameters"]["b"]["data"], mine["parameters"]["b"]["shape"])
    personal = app.predict(x[20:22].tolist(), "local-only")
    assert personal["personalized"] is True
    np.testing.assert_allclose(np.reshape(personal["outputs"]["forecast"]["data"], (2, 8)), x[20:22] @ w + b, atol=1e-5)

    # Everything the page and its workers loaded came from the page's own server, the registry or MMS.
    from_site = [u for u in app.requests if u.startswith(site.url)]
    assert from_site and all(urlsplit(u).path.startswith("/models/") for u in from_site), from_site
    elsewhere = [u for u in app.requests if not u.startswith((f"{url}/", f"{site.url}/", f"{mms.config.inference_url}/"))]
    assert elsewhere == []
    assert {
        "/edge-worker.js",
        "/train-worker.js",
        "/runtimes/onnxjs/onnx.min.js",
        "/runtimes/onnxjs/onnx-wasm.wasm",
        "/runtimes/onnxruntime-web/ort.wasm.min.mjs",
        "/runtimes/onnxruntime-web/ort-wasm-simd-threaded.wasm",
    } <= set(served)
    assert "/onnx-wasm.wasm" not in served
    assert app.failed == [] and app.errors == [], (app.failed, app.errors, served)
