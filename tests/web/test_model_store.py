"""The model store and background updates: versions switch only once verified and loaded, and
only when the device allows a check (online, no data saver, not 2g, battery)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import BUMPED, FORECASTER
from .registry_models import fitted_forecaster, tamper, write_version
from .test_routing import data, expected_forecast, window

pytestmark = [pytest.mark.integration]

GOOD_NETWORK = {"onLine": True, "connection": {"effectiveType": "4g", "saveData": False}}


def cached(driver, url: str) -> bool:
    return driver.page.evaluate("async (url) => Boolean(await (await caches.open('edgecloud-models-v1')).match(url))", url)


def test_a_new_version_is_picked_up_in_the_background_once_verified(driver, site, web_models):
    registry = web_models.registry
    base = f"{site.url}/models/{BUMPED}"
    driver.create(BUMPED, update={"enabled": True, "intervalMs": 200, "environment": GOOD_NETWORK})
    x = window(20)
    first = driver.predict(x.tolist(), "local-only")
    assert first["modelVersion"] == "1"

    # v2 arrives broken: it is downloaded, fails its SHA-256 check, and v1 stays in use.
    tamper(write_version(registry, BUMPED, "2", fitted_forecaster(bias_shift=1.0)[0]))
    driver.page.wait_for_function("() => (window.handler.status().update?.reason ?? '').startsWith('kept 1: v2')")
    assert "SHA-256" in driver.status()["update"]["reason"]
    still = driver.predict(x.tolist(), "local-only")
    assert still["modelVersion"] == "1"
    np.testing.assert_allclose(data(still), expected_forecast(web_models, x), atol=1e-5)
    assert cached(driver, f"{base}/1/model.onnx") and not cached(driver, f"{base}/2/model.onnx")

    # v3 is good: picked up at idle time, verified, loaded in a new worker, then switched to.
    write_version(registry, BUMPED, "3", fitted_forecaster(bias_shift=1.0)[0])
    # Wait for the updater's record, not for modelVersion: the version flips inside adopt(), a
    # moment before the check that called it records why (until then it still says "kept 1: v2").
    driver.page.wait_for_function("() => window.handler.status().update?.version === '3'")
    assert driver.status()["update"]["reason"] == "switched 1 → 3"
    assert driver.page.evaluate("() => window.handler.modelVersion") == "3"
    after = driver.predict(x.tolist(), "local-only")
    assert (after["modelVersion"], after["ranOn"]) == ("3", "edge")
    np.testing.assert_allclose(data(after), expected_forecast(web_models, x) + 1.0, atol=1e-5)
    assert cached(driver, f"{base}/3/model.onnx") and not cached(driver, f"{base}/1/model.onnx")

    # A page opened later starts from the verified version it remembers.
    pointer = driver.page.evaluate(f"async () => (await (await caches.open('edgecloud-models-v1')).match('{base}/current.json')).json()")
    assert pointer["version"] == "3"
    assert driver.create(BUMPED)["state"] == "ready"
    assert driver.page.evaluate("() => window.handler.modelVersion") == "3"


@pytest.mark.parametrize(
    "environment, blocker",
    [
        ("({onLine: false})", "offline"),
        ("({onLine: true, connection: {saveData: true}})", "data saver is on"),
        ("({onLine: true, connection: {effectiveType: '2g'}})", "connection is 2g"),
        ("({onLine: true, connection: {effectiveType: 'slow-2g'}})", "connection is slow-2g"),
        ("({onLine: true, getBattery: async () => ({charging: false, level: 0.3})})", "battery is discharging at or below 50 %"),
        ("({onLine: true, getBattery: async () => ({charging: true, level: 0.1})})", None),
        ("({onLine: true, getBattery: async () => ({charging: false, level: 0.8})})", None),
        ("({onLine: true, connection: {effectiveType: '4g', saveData: false}})", None),
    ],
)
def test_update_checks_wait_for_a_device_that_allows_them(driver, environment, blocker):
    driver.create(FORECASTER)
    requests: list[str] = []
    driver.page.on("request", lambda r: r.url.endswith("/latest.json") and requests.append(r.url))
    result = driver.page.evaluate(
        f"""async () => {{
          window.handler.updater.environment = {environment};
          return await window.handler.updater.check();
        }}"""
    )
    if blocker is None:
        assert result == {**result, "checked": True, "reason": "up to date", "version": "1"}
        assert len(requests) == 1
    else:
        assert result["checked"] is False and result["reason"] == f"skipped: {blocker}"
        assert requests == []  # not even latest.json was asked for


def test_conditions_are_options(driver):
    """A forced condition wins over what the device says (how a page or a test overrides them)."""
    driver.create(
        FORECASTER,
        update={"enabled": False, "environment": {"onLine": True, "connection": {"saveData": True}}, "conditions": {"saveData": True}},
    )
    result = driver.page.evaluate("() => window.handler.updater.check()")
    assert result["checked"] is True and result["reason"] == "up to date"
