"""Issue 23, item 2, in real Chromium against a real stack (`Stack` with its replica front door, a real
MMS, the aggregator on SQLite): a page's cloud answers come from the version its edge runs, also once a
federated round has moved the model's name to version 2; when version 3 is published and the cloud
retires version 1 (--keep-versions 2), the page's next cloud answer comes from version 3 and
versionMismatch says so; once the page adopts version 3 it is null again."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from aggregation.settings import FederatedSettings
from edgecloud.federation import FederatedOptions
from edgecloud.stack import Stack, StackOptions
from mms_handlers.archive import build_archive
from mms_handlers.server import ServerConfig
from mms_handlers.settings import ServingSettings
from registry import Registry
from tests.conftest import free_port
from tests.web.test_federated_browser import NAME, RATE, export_trainable, person

pytestmark = [pytest.mark.integration, pytest.mark.torch]

CREATE = """async ({ model, cloud, federated }) => {
  const { PredictionHandler } = await import('/src/prediction-handler.js');
  window.handler = await PredictionHandler.create({ registry: '/models', model, cloud, federated,
    update: { enabled: true, intervalMs: 3600000, conditions: { battery: true } } });
  await window.handler.edgeReady();
  return window.handler.modelVersion;
}"""
SHARE = """async ({ data, rate }) => {
  await window.handler.personalize(data, { epochs: 1, learningRate: rate, shuffle: false });
  return window.handler.shareUpdate();
}"""
PREDICT_IN_CLOUD = """async (x) => {
  const answer = await window.handler.predict(x, { privacy: 'prefer-cloud' });
  return { ranOn: answer.ranOn, modelVersion: answer.modelVersion, versionMismatch: answer.versionMismatch };
}"""


@pytest.fixture
def stack(tmp_path: Path):
    registry, store = tmp_path / "registry", tmp_path / "store"
    build_archive(export_trainable(registry), store)
    options = StackOptions(
        server=ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port()),
        registry=registry,
        web_port=free_port(),
        settings=ServingSettings(keep_versions=2),
        federated=FederatedOptions([NAME], FederatedSettings(min_clients=1)),
    )
    running = Stack(options).start()
    yield running
    running.stop()


def cloud_version(cloud: str, x: list) -> str:
    body = json.dumps({"inputs": {"x": x}}).encode()
    request = urllib.request.Request(f"{cloud}/predictions/{NAME}", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["model_version"]


def test_the_page_names_its_version_falls_back_when_it_is_gone_and_agrees_after_adopting(stack, page) -> None:
    config = stack.site.config
    x = person(7, 1)["inputs"]
    posted: list[str] = []
    page.on("request", lambda r: r.method == "POST" and "/predictions/" in r.url and posted.append(r.url.rsplit("/", 1)[1]))
    page.goto(f"{stack.site.url}/harness/index.html")
    page.wait_for_function("window.harnessReady === true")
    assert page.evaluate(CREATE, {"model": NAME, "cloud": config["cloud"], "federated": config["federated"]}) == "1"
    assert page.evaluate(PREDICT_IN_CLOUD, x) == {"ranOn": "cloud", "modelVersion": "1", "versionMismatch": None}

    shared = page.evaluate(SHARE, {"data": person(1, 12), "rate": RATE})
    assert shared["accepted"] is True
    wait_until(lambda: cloud_version(config["cloud"], x) == "2")  # the round closed; the name follows version 2
    posted.clear()
    # The edge still runs version 1: the cloud answer comes from version 1 too, under its own name.
    assert page.evaluate(PREDICT_IN_CLOUD, x) == {"ranOn": "cloud", "modelVersion": "1", "versionMismatch": None}
    assert posted == [NAME, f"{NAME}-v1"]

    copy_version(stack.options.registry / NAME, 2, 3)  # version 3 published: version 1 is retired (keep 2)
    wait_until(
        lambda: cloud_version(config["cloud"], x) == "3" and {m["modelName"] for m in stack.mms.models()} == {f"{NAME}-v2", f"{NAME}-v3"}
    )
    mismatch = {"ranOn": "cloud", "modelVersion": "3", "versionMismatch": "the cloud answered with version 3; the edge runs version 1"}
    assert page.evaluate(PREDICT_IN_CLOUD, x) == mismatch  # version 1 is gone: the newest answered, and says so
    posted.clear()
    assert page.evaluate(PREDICT_IN_CLOUD, x) == mismatch
    assert posted == [NAME]  # its own version, found gone once, is not asked for again
    checked = page.evaluate("() => window.handler.updater.check()")
    assert checked["reason"] == "switched 1 → 3"
    assert page.evaluate(PREDICT_IN_CLOUD, x) == {"ranOn": "cloud", "modelVersion": "3", "versionMismatch": None}


def wait_until(condition, limit_s: float = 180.0) -> None:
    """Poll `condition` (a generous bound for a loaded machine, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the cloud did not switch in time"
        time.sleep(0.5)


def copy_version(model_dir: Path, source: int, target: int) -> None:
    """Publish version `target` as a copy of `source` (same files and hashes, its own version number)."""
    registry = Registry(model_dir.parent)
    with registry.stage(model_dir.name, target) as staging:
        for file in registry.version_dir(model_dir.name, source).iterdir():
            shutil.copy2(file, staging.path / file.name)
        manifest = json.loads((staging.path / "model.json").read_text())
        (staging.path / "model.json").write_text(json.dumps({**manifest, "version": str(target)}))
        registry.publish(staging)
