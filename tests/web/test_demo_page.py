"""The demo page in real Chromium: the forecaster answers through the Prediction Handler, edge and
cloud side by side, the privacy switch routes; a screenshot lands in tests/web/artifacts/demo.png."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgecloud.webserver import StaticSite

from ..conftest import free_port
from .conftest import FORECASTER, FORECASTER_3D, TRAINABLE

pytestmark = [pytest.mark.integration]

ARTIFACTS = Path(__file__).parent / "artifacts"


def start_demo_site(web_models, mms, model: str) -> StaticSite:
    return StaticSite(web_models.registry, {"cloud": mms.config.inference_url, "models": [model]}, port=free_port()).start()


@pytest.fixture
def demo_site(web_models, mms):
    site = start_demo_site(web_models, mms, FORECASTER)
    yield site
    site.stop()


def cell(page, side: str, field: str) -> str:
    return page.inner_text(f'td[data-side="{side}"][data-field="{field}"]')


def test_demo_page_shows_where_each_prediction_ran(page, demo_site):
    page.set_viewport_size({"width": 1100, "height": 1250})
    page.goto(f"{demo_site.url}/demo/")
    page.wait_for_selector("body[data-ready]")
    assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
    assert page.inner_text("#model-name") == FORECASTER and page.inner_text("#model-version") == "1"
    assert page.inner_text("#ran-on") == "edge"  # auto, small input, capable device
    assert page.inner_text("#answer-version") == "1"
    assert page.inner_text("#fallback") == "none"
    assert cell(page, "edge", "where") == "edge · onnxjs/wasm"
    assert cell(page, "cloud", "where") == "cloud · mms/onnxruntime"
    assert float(page.inner_text("#diff")) <= 1e-4
    assert page.locator("#chart canvas").count() == 1

    page.check('input[name="privacy"][value="prefer-cloud"]')
    page.wait_for_function("document.getElementById('ran-on').textContent === 'cloud'")

    page.check('input[name="privacy"][value="local-only"]')
    page.wait_for_function("document.querySelector('td[data-side=cloud][data-field=where]').textContent.startsWith('not sent')")
    assert page.inner_text("#ran-on") == "edge"

    page.check('input[name="privacy"][value="auto"]')
    page.wait_for_function("document.querySelector('td[data-side=cloud][data-field=where]').textContent.startsWith('cloud')")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    assert (ARTIFACTS / "demo.png").stat().st_size > 10_000
    assert page.errors == []


def test_demo_page_reads_shapes_from_model_json(page, web_models, mms):
    """A [?, 64, 1] window model works too: the page builds its input from model.json."""
    site = start_demo_site(web_models, mms, FORECASTER_3D)
    try:
        page.goto(f"{site.url}/demo/")
        page.wait_for_selector("body[data-ready]")
        assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
        assert page.inner_text("#ran-on") == "edge"
        assert cell(page, "cloud", "where") == "cloud · mms/onnxruntime"
        assert float(page.inner_text("#diff")) <= 1e-4
        assert page.errors == []
    finally:
        site.stop()


def test_served_on_every_address_the_page_finds_the_cloud_at_its_own_host(page, web_models, model_store, tmp_path):
    """`--host 0.0.0.0`: /config.json gives MMS's port only, and the page asks its own host name on it."""
    from edgecloud.stack import Stack, StackOptions
    from mms_handlers.server import ServerConfig

    web_port = free_port()
    server = ServerConfig(
        model_store=model_store,
        host="0.0.0.0",
        inference_port=free_port(),
        management_port=free_port(),
        cors_origins=[f"http://127.0.0.1:{web_port}"],
        runtime_dir=tmp_path / "mms",
    )
    stack = Stack(StackOptions(server=server, registry=web_models.registry, web_port=web_port, register=[f"{FORECASTER}.mar"])).start()
    try:
        config = page.request.get(f"http://127.0.0.1:{web_port}/config.json").json()
        assert config == {"cloudPort": server.inference_port, "models": [FORECASTER], "signals": {}}
        page.goto(f"http://127.0.0.1:{web_port}/demo/")
        page.wait_for_selector("body[data-ready]")
        assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
        assert cell(page, "cloud", "where") == "cloud · mms/onnxruntime"
        assert float(page.inner_text("#diff")) <= 1e-4 and page.errors == []
    finally:
        stack.stop()


def test_personalise_on_this_persons_data_then_reset(page, web_models, mms, trainable):
    """The Personalise action trains in the page on the person's first part, shows the later part's
    forecast error before and after, predicts personalised, and Reset returns to the shared model."""
    site = start_demo_site(web_models, mms, TRAINABLE)
    try:
        page.goto(f"{site.url}/demo/")
        page.wait_for_selector("body[data-ready]")
        assert page.get_attribute("body", "data-ready") == "true", page.inner_text("#status")
        page.click("#personalise")
        page.wait_for_selector("body[data-personal]", timeout=60_000)
        assert page.get_attribute("body", "data-personal") == "done", page.inner_text("#personal-status")
        before, after = float(page.inner_text("#mae-before")), float(page.inner_text("#mae-after"))
        print(f"demo MAE on the later data: shared {before}, personalised {after}")
        assert math.isfinite(before) and math.isfinite(after)
        assert page.evaluate("document.getElementById('personal-progress').value") == 1
        # The later data on its own chart, with the shared and the personalised forecasts drawn over it.
        assert page.locator("#personal-chart .uplot").count() == 1
        chart = page.evaluate("window.personalChart")
        xs, truth, shared_line, personal_line = chart["data"]
        assert chart["labels"][1] == f"shared model (MAE {before:.4f})" and chart["labels"][2] == f"personalised (MAE {after:.4f})"
        assert len(xs) > 0 and all(v is not None for v in [*truth, *shared_line, *personal_line])
        assert max(abs(a - b) for a, b in zip(shared_line, personal_line)) > 1e-6  # the two forecasts differ
        personalized = page.evaluate(
            "window.demo.handler.predict(window.demo.input(), {privacy: 'local-only'}).then((a) => a.personalized)"
        )
        assert personalized
        # Edge and cloud now differ by design: said beside the figure, which is not marked as a fault.
        page.click("#next")
        page.wait_for_function("document.getElementById('diff-note').textContent.includes('personalised model')", timeout=30_000)
        assert page.get_attribute("#diff", "class") != "bad"
        page.click("#reset-personal")
        page.wait_for_selector("body[data-personal=reset]")
        assert page.evaluate("window.demo.handler.personalization()") is None
        assert all(v is None for v in page.evaluate("window.personalChart.data[3]"))  # only the shared model is left
        shared = page.evaluate("window.demo.handler.predict(window.demo.input(), {privacy: 'local-only'}).then((a) => a.personalized)")
        assert not shared
        page.click("#next")
        page.wait_for_function("document.getElementById('diff-note').textContent === ''", timeout=30_000)
        assert float(page.inner_text("#diff")) <= 1e-4 and page.get_attribute("#diff", "class") == "ok"
        assert page.errors == []
    finally:
        site.stop()


def test_a_model_without_training_has_the_personalise_button_disabled(page, demo_site):
    page.goto(f"{demo_site.url}/demo/")
    page.wait_for_selector("body[data-ready]")
    assert page.is_disabled("#personalise")
    assert "no training step" in page.inner_text("#personal-status")
