"""The browser modules' import graph (read from their `import ... from './x.js'` lines): the
training side never reaches the page's handler or the cloud client, and the two workers share
nothing with the page but the leaf modules."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "web_onnxjs" / "src"
IMPORT = re.compile(r"""^import[^'"]*['"]\./([\w-]+\.js)['"]""", re.MULTILINE)


def reachable(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += IMPORT.findall((SRC / name).read_text())
    return seen - {module}


def test_the_training_modules_never_import_the_handler_or_the_cloud_client():
    for module in ("train-worker.js", "trainer.js", "personalizer.js"):
        assert not reachable(module) & {"prediction-handler.js", "cloud.js", "edge-client.js"}, module


def test_the_workers_import_only_runtimes_and_pure_modules():
    allowed = {
        "onnxjs-runtime.js",
        "ortweb-runtime.js",
        "tensors.js",
        "feeds.js",
        "train-data.js",
        "assets.js",
        "errors.js",
        "worker-channel.js",
    }  # the message protocol, both ends (a leaf)
    assert reachable("train-worker.js") <= allowed
    assert reachable("edge-worker.js") <= allowed


def test_every_relative_import_exists():
    for path in SRC.glob("*.js"):
        for name in IMPORT.findall(path.read_text()):
            assert (SRC / name).is_file(), f"{path.name} imports missing {name}"
