"""Shared fixtures: real parts only. A session-wide MMS (Java) and a session-wide headless Chromium.

`dense_keras_model` builds a small Keras model once per session; `mms` starts one real Multi
Model Server on free ports with its own model store; `browser_context` is the system Chromium
through Playwright (never a downloaded browser), launched the way `edgecloud verify` launches it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

# Only the standard library and light leaves at module level: every test directory loads this
# file, and `pytest tests/aggregation` must collect without onnx (tests/test_fast_lane.py).
from mms_handlers.ports import DEFAULT_RANGE, FREE_PORTS_ENV, free_port  # tests import free_port from here


def _own_port_range() -> None:
    """Each pytest-xdist worker (and every server it starts, through the environment) draws ports from a
    range of its own: a port one worker drew and has not bound yet is never another worker's."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1:
        low, high = DEFAULT_RANGE
        span = (high - low) // int(count)
        start = low + int(worker[2:]) * span
        os.environ[FREE_PORTS_ENV] = f"{start}-{start + span - 1}"


_own_port_range()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="edgecloud-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def dense_keras_model(workdir: Path) -> tuple[Path, Path]:
    """A small Dense Keras model (8 → 16 → 3) and a sample .npy for it."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(7)
    inputs = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(16, activation="tanh")(inputs)
    outputs = keras.layers.Dense(3, name="y")(hidden)
    model = keras.Model(inputs, outputs)
    path = workdir / "dense.keras"
    model.save(path)
    sample = workdir / "dense-sample.npy"
    np.save(sample, np.random.default_rng(1).standard_normal((1, 8)).astype("float32"))
    return path, sample


@pytest.fixture(scope="session")
def registry(workdir: Path) -> Path:
    path = workdir / "registry"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def model_store(workdir: Path) -> Path:
    path = workdir / "model-store"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def mms(model_store: Path):
    """One real MMS for the session; tests register what they need with `mms.register(...)`."""
    from mms_handlers.server import MmsServer, ServerConfig

    config = ServerConfig(
        model_store=model_store,
        inference_port=free_port(),
        management_port=free_port(),
        cors_origins=["*"],
        request_metrics=True,  # MMS's PredictionTime line per prediction: tests/web/test_routing.py counts them
    )
    server = MmsServer(config)
    os.environ["EDGECLOUD_KEEP_MMS_LOGS"] = os.environ.get("EDGECLOUD_KEEP_MMS_LOGS", "0")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def site(registry: Path, mms):
    """The static site (page, vendored runtimes, registry) on a free port."""
    from edgecloud.webserver import StaticSite

    server = StaticSite(registry, {"cloud": mms.config.inference_url, "models": []}, port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright():
    """The session's one Playwright (its sync API runs one event loop per thread: no second one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser_context(playwright):
    """The system Chromium, headless, with a fresh profile (nothing cached between sessions)."""
    from edgecloud.browser import fresh_chromium

    with fresh_chromium(playwright) as context:
        yield context


@pytest.fixture
def page(browser_context):
    """A fresh page that records console errors and page errors for assertions."""
    page = browser_context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    page.close()


# `make test` runs the slow part on two workers (pytest-xdist, `--dist loadfile`: a file's tests stay
# on one worker, so its module fixtures start once). A worker takes the next file when it is done,
# in collection order, so a long file collected last would end the run alone: these, the longest
# files by `--durations`, are collected first. Order within a file is kept.
LONGEST_FIRST = (
    "tests/benchmarks/test_bench_smoke.py",
    "tests/web/test_federated_all_layers.py",
    "tests/export/train/test_layers_step.py",
    "tests/export/train/test_batch_norm_step.py",
    "tests/export/test_edge_zoo.py",
    "tests/export/train/test_layers_torch.py",
    "tests/export/test_real_models.py",
    "tests/edgecloud/test_demo_end_to_end.py",
    "tests/edgecloud/test_aggregate.py",
    "tests/benchmarks/test_cloud_rounds.py",
    "tests/edgecloud/test_federated_serve.py",
    "tests/export/train/test_text_classifier.py",
    "tests/edgecloud/test_build_to_mms.py",
    "tests/export/test_zoo_export.py",
    "tests/edgecloud/test_gateway.py",
    "tests/web/test_personalize_all_layers.py",
    "tests/web/test_personalize_torch_all_layers.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive ports that are all free now (MMS accepts up to 32767): for servers
    whose ports are derived from one flag (a gateway's replicas: front doors gateway + 1 + i, MMS base + 2i)."""
    import socket

    for _ in range(100):
        base = free_port()
        if base + count > 32767:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports found")
