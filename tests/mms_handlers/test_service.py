"""The handler with a stub MMS context: per-request statuses, nothing raised out of handle()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mms_handlers.service import ModelService
from tests.builders import write_version_dir
from tests.mms_handlers.stub_context import StubContext


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_version_dir(tmp_path / "1")


def test_one_bad_request_fails_alone(model_dir):
    service = ModelService()
    context = StubContext(model_dir)
    service.initialize(context)
    answers = service.handle_batch(
        [
            {"body": json.dumps({"inputs": {"x": [[-1, 0, 2]]}}).encode()},
            {"body": b"[[1, 2]]"},
            {"body": bytearray(b"[[-3, 4, -5]]")},
        ],
        context,
    )
    assert json.loads(answers[0]) == {"outputs": {"y": [[0.0, 0.0, 2.0]]}, "model_version": "1"}  # the version computing it
    assert list(context.statuses) == [1] and context.statuses[1][0] == 400
    assert json.loads(answers[1])["message"] == "input 'x': expected float32[?, 3], got shape [1, 2]"
    assert json.loads(answers[2]) == {"outputs": {"y": [[0.0, 4.0, 0.0]]}, "model_version": "1"}


def test_engine_failure_is_a_500_for_that_request_only(model_dir, monkeypatch):
    service = ModelService()
    context = StubContext(model_dir)
    service.initialize(context)

    def broken(feeds):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(service.engine, "run", broken)
    answers = service.handle_batch([{"body": b"[[1, 2, 3]]"}], context)
    assert context.statuses[0][0] == 500
    assert "engine exploded" in json.loads(answers[0])["message"]


def test_int_values_are_accepted_for_float_inputs_but_not_bools_as_text(model_dir):
    service = ModelService()
    context = StubContext(model_dir)
    service.initialize(context)
    answers = service.handle_batch([{"body": b'[["a", "b", "c"]]'}], context)
    assert context.statuses[0][0] == 400
    assert json.loads(answers[0])["message"] == "input 'x': expected float32[?, 3], got text"
    assert np.asarray(json.loads(service.handle_batch([{"body": b"[[1, 2, 3]]"}], context)[0])["outputs"]["y"]).shape == (1, 3)
    assert answers


def test_a_body_no_check_foresaw_is_a_400_for_that_request_only(model_dir, monkeypatch):
    """The last line of defence: an unexpected exception while reading one body fails that body alone."""
    from mms_handlers import codecs

    service = ModelService()
    context = StubContext(model_dir)
    service.initialize(context)
    real_decode = codecs.decode

    def decode(body, *args):
        if body == b"boom":
            raise KeyError("unforeseen")
        return real_decode(body, *args)

    monkeypatch.setattr(codecs, "decode", decode)
    answers = service.handle_batch([{"body": b"boom"}, {"body": b"[[1, 2, 3]]"}], context)
    assert list(context.statuses) == [0] and context.statuses[0][0] == 400
    assert json.loads(answers[0])["message"] == "unreadable request: KeyError: 'unforeseen'"
    assert json.loads(answers[1])["outputs"]["y"] == [[1.0, 2.0, 3.0]]
