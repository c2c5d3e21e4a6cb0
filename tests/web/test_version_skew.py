"""Version skew, in real Chromium against a real MMS: a cloud answer names the version that
computed it, and the handler says when that is not the version its edge runs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mms_handlers.archive import build_archive

from .conftest import FORECASTER
from .registry_models import fitted_forecaster, write_version

pytestmark = [pytest.mark.integration]
SKEWED = "web_skew"  # the registry (edge) at version 1, MMS serving a .mar of version 2


def test_cloud_answer_names_its_version_and_a_mismatch_is_said(driver, web_models, mms, tmp_path) -> None:
    model = fitted_forecaster()[0]
    write_version(web_models.registry, SKEWED, "1", model)
    newer = write_version(tmp_path, SKEWED, "2", model)  # outside the session registry
    build_archive(newer, mms.config.model_store)
    mms.register(f"{SKEWED}.mar")
    x = np.zeros(64, np.float32).tolist()
    try:
        driver.create(SKEWED)
        cloud = driver.predict(x, "prefer-cloud")
        edge = driver.predict(x, "prefer-edge")
        assert (cloud["ranOn"], cloud["modelVersion"]) == ("cloud", "2"), cloud
        assert cloud["versionMismatch"] == "the cloud answered with version 2; the edge runs version 1"
        assert (edge["ranOn"], edge["modelVersion"], edge["versionMismatch"]) == ("edge", "1", None)
        driver.create(FORECASTER)
        same = driver.predict(x, "prefer-cloud")
        assert (same["modelVersion"], same["versionMismatch"]) == ("1", None)
    finally:
        shutil.rmtree(web_models.registry / SKEWED, ignore_errors=True)
