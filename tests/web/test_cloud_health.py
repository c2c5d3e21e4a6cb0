"""The page asks MMS about *its* model, and tells MMS's own errors from our handler's verdict on the input.

Real Chromium against real MMS instances: one that lacks the page's model, and one whose model is
unregistered and registered again while the page runs. Each is reached directly (cross-origin: the
browser's CORS preflight of a missing model fails, so the page sees a network error) and through a
pass-through proxy that answers preflights (MMS's `404 ModelNotFoundException` body reaches the page).
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from mms_handlers.errors import RequestError
from mms_handlers.server import MmsServer, ServerConfig

from ..conftest import free_port
from .conftest import FORECASTER
from .preflight_proxy import PreflightProxy
from .registry_models import fitted_forecaster, write_version
from .test_routing import data, expected_forecast, window

pytestmark = [pytest.mark.integration]

ABSENT = "web_absent"  # in the registry, runnable on the edge, never registered in MMS
CLOUD_FIRST = {"device": {"cores": 1}}  # auto then tries the cloud first ("auto: 1 core(s) < 2")
OVERFLOW = [1e308] * 64  # finite in JavaScript, Inf as float32: the page and our MMS handler both refuse it


def _call(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _cloud_url(way: str, mms: MmsServer, stack: ExitStack) -> tuple[str, PreflightProxy | None]:
    if way == "direct":
        return mms.config.inference_url, None
    proxy = stack.enter_context(PreflightProxy(mms.config.inference_url, free_port()))
    return proxy.url, proxy


def _sent(driver, origin: str) -> list[tuple[str, str]]:
    """(method, path) of every request the page sends to `origin` from now on."""
    seen: list[tuple[str, str]] = []
    driver.page.on("request", lambda r: r.url.startswith(origin) and seen.append((r.method, r.url[len(origin) :])))
    return seen


def _page_errors(driver) -> list[str]:
    """The page's errors, less the lines Chromium itself logs for each refused request and preflight."""
    logged = ("Failed to load resource", "has been blocked by CORS policy")
    return [e for e in driver.page.errors if not any(part in e for part in logged)]


@pytest.fixture(scope="module")
def absent_model(web_models) -> str:
    write_version(web_models.registry, ABSENT, "1", fitted_forecaster()[0])  # the same fit as web_fc
    return ABSENT


def test_what_the_page_relies_on_in_mms_and_in_our_handler(driver, mms, web_models):
    """MMS 1.1.11's inference port answers OPTIONS /predictions/NAME per model, preflight or not,
    and the `type` words the page takes for bad input are exactly our handler's for a 4xx."""
    base, origin = mms.config.inference_url, {"Origin": "http://example.test", "Access-Control-Request-Method": "POST"}
    for headers in ({}, origin):
        status, body = _call("OPTIONS", f"{base}/predictions/{FORECASTER}", headers)
        assert status == 200 and b'"openapi"' in body
        status, body = _call("OPTIONS", f"{base}/predictions/{ABSENT}", headers)
        assert status == 404 and b'"ModelNotFoundException"' in body
    assert _call("GET", f"{base}/ping")[0] == 200  # /ping: always 200, whatever models there are

    page_types = driver.page.evaluate("async () => (await import('/src/cloud.js')).HANDLER_INPUT_TYPES")
    handler_types = {RequestError("x", status).kind for status in range(400, 500)}
    assert sorted(page_types) == sorted(handler_types)


@pytest.mark.parametrize("way", ["direct", "proxy"])
def test_a_cloud_lacking_the_model_is_never_healthy_and_the_edge_answers(driver, mms, web_models, absent_model, way):
    with ExitStack() as stack:
        url, proxy = _cloud_url(way, mms, stack)
        sent = _sent(driver, url)
        x = window(21)
        driver.create(absent_model, cloud=url, policy=CLOUD_FIRST)

        cloud_first = driver.predict(x.tolist(), "prefer-cloud")
        assert cloud_first["ranOn"] == "edge", cloud_first
        assert cloud_first["fallbackReason"].startswith("cloud-model-missing:"), cloud_first["fallbackReason"]
        assert absent_model in cloud_first["fallbackReason"]
        np.testing.assert_allclose(data(cloud_first), expected_forecast(web_models, x), atol=1e-5)
        assert driver.status()["cloud"]["health"] == "cloud-model-missing"
        assert ("OPTIONS", f"/predictions/{absent_model}") in sent
        assert not any(method == "POST" for method, _ in sent)  # the check said no: the input stayed here
        if proxy is not None:
            assert proxy.seen == [("OPTIONS", f"/predictions/{absent_model}")]  # MMS's 404 body was read

        before = len(sent)
        auto = driver.predict(x.tolist(), "auto")  # the verdict is kept: no new request
        assert (auto["ranOn"], auto["route"]) == ("edge", "auto: 1 core(s) < 2")
        assert auto["fallbackReason"] == cloud_first["fallbackReason"]
        edge_first = driver.predict(x.tolist(), "prefer-edge")
        assert (edge_first["ranOn"], edge_first["fallbackReason"]) == ("edge", None)
        local = driver.predict(x.tolist(), "local-only")
        assert (local["ranOn"], local["fallbackReason"]) == ("edge", None)
        assert len(sent) == before
    assert _page_errors(driver) == []


@pytest.fixture(scope="module")
def swapping_mms(web_models, model_store):
    """A separate MMS serving web_fc, which each test unregisters and registers again."""
    store = Path(tempfile.mkdtemp(prefix="edgecloud-swap-store-"))
    shutil.copy(model_store / f"{FORECASTER}.mar", store)
    server = MmsServer(ServerConfig(model_store=store, inference_port=free_port(), management_port=free_port(), cors_origins=["*"]))
    server.start()
    server.register(f"{FORECASTER}.mar")
    yield server
    server.stop()
    shutil.rmtree(store, ignore_errors=True)


@pytest.mark.parametrize("way", ["direct", "proxy"])
def test_a_model_unregistered_and_registered_again_while_the_page_runs(driver, swapping_mms, web_models, way):
    mms = swapping_mms
    with ExitStack() as stack:
        url, proxy = _cloud_url(way, mms, stack)
        sent = _sent(driver, url)
        ttl = 300
        driver.create(FORECASTER, cloud=url, policy={"healthTtlMs": ttl, **CLOUD_FIRST})
        x = window(22)
        served = driver.predict(x.tolist(), "prefer-cloud")
        assert (served["ranOn"], served["fallbackReason"]) == ("cloud", None)

        # Unregistered while the page trusts its last verdict: the POST itself meets the missing model.
        assert _call("DELETE", f"{mms.config.management_url}/models/{FORECASTER}")[0] == 200
        gone = driver.predict(x.tolist(), "prefer-cloud")
        assert gone["ranOn"] == "edge", gone
        assert gone["fallbackReason"].startswith("cloud-model-missing:"), gone["fallbackReason"]
        if proxy is not None:  # MMS's own 404, read from its body, not taken for bad input
            assert gone["fallbackReason"].startswith(
                f"cloud-model-missing: cloud answered 404 ModelNotFoundException: Model not found: {FORECASTER}"
            )
        np.testing.assert_allclose(data(gone), expected_forecast(web_models, x), atol=1e-5)

        before = len(sent)
        auto = driver.predict(x.tolist(), "auto")
        assert (auto["ranOn"], auto["fallbackReason"]) == ("edge", gone["fallbackReason"])  # counted: no request
        assert driver.predict(x.tolist(), "local-only")["ranOn"] == "edge"
        assert driver.predict(x.tolist(), "prefer-edge")["fallbackReason"] is None
        assert len(sent) == before

        driver.page.wait_for_timeout(ttl + 50)  # the verdict expires: the check asks MMS again
        checked = driver.predict(x.tolist(), "prefer-cloud")
        assert (checked["ranOn"], checked["fallbackReason"][:20]) == ("edge", "cloud-model-missing:")
        assert sent[before:] and all(method != "POST" for method, _ in sent[before:])

        mms.register(f"{FORECASTER}.mar")
        driver.page.wait_for_timeout(ttl + 50)
        back = driver.predict(x.tolist(), "prefer-cloud")
        assert (back["ranOn"], back["fallbackReason"]) == ("cloud", None)
        np.testing.assert_allclose(data(back), expected_forecast(web_models, x), atol=1e-5)

        # A truly bad input: the page refuses it as the cloud would, before any request.
        posts = sum(method == "POST" for method, _ in sent)
        for privacy in ("prefer-cloud", "auto"):
            refused = driver.predict(OVERFLOW, privacy)
            assert refused.get("code") == "bad-input", refused
            assert "expected finite values" in refused["error"] and "400" not in refused["error"]
        assert sum(method == "POST" for method, _ in sent) == posts
        # Sent anyway (past the page's check), our MMS handler names it and cloud.js maps that real
        # answer to bad-input: the code CloudEndpoint rethrows without recording it against the cloud.
        sent_anyway = driver.page.evaluate(
            """async ([url, name, values]) => {
                 const { cloudAnswer } = await import('/src/cloud.js');
                 try { await cloudAnswer(url, name, {window: {dtype: 'float32', shape: [1, values.length], data: values}}); }
                 catch (error) { return {code: error.code, message: error.message}; }
                 return null;
               }""",
            [url, FORECASTER, OVERFLOW],
        )
        assert sent_anyway["code"] == "bad-input", sent_anyway
        assert "expected finite values" in sent_anyway["message"] and "400 BadRequest" in sent_anyway["message"]
        assert driver.predict(x.tolist(), "prefer-cloud")["ranOn"] == "cloud"  # and it did not count against the cloud
    assert _page_errors(driver) == []
