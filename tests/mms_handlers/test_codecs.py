"""Codecs alone: each request form decodes to named values and encodes answers in the same form."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from mms_handlers import codecs
from mms_handlers.errors import RequestError
from mms_handlers.signature import Signature, TensorSpec

from .models import npy, npz

ONE = Signature(inputs=(TensorSpec("x", "float32", (None, 4)),), outputs=(TensorSpec("y", "float32", (None, 3)),))
TWO = Signature(
    inputs=(TensorSpec("a", "float32", (None, 2)), TensorSpec("n", "int64", (None, 1))),
    outputs=(TensorSpec("sum", "float32", (None, 2)), TensorSpec("twice", "int64", (None, 1))),
)
VERSION = ("mlp", "1")


def decode(body: bytes, content_type: str | None, signature: Signature = ONE) -> codecs.Decoded:
    return codecs.decode(body, content_type, signature, VERSION)


def test_plain_json_object_and_bare_list():
    decoded = decode(b'{"inputs": {"x": [[1, 2, 3, 4]]}}', "application/json")
    assert decoded.codec.name == "json" and decoded.values == {"x": [[1, 2, 3, 4]]}
    assert decode(b"[[1, 2, 3, 4]]", "application/json; charset=utf-8").values == {"x": [[1, 2, 3, 4]]}
    assert json.loads(decoded.codec.encode({"y": np.array([[0.5, 1.0, 2.0]], np.float32)})) == {
        "outputs": {"y": [[0.5, 1.0, 2.0]]},
        "model_version": "1",  # the version named by model.json
    }


def test_bare_list_needs_a_single_input_model():
    with pytest.raises(RequestError, match=r"only accepted by single-input models.*\['a', 'n'\]"):
        decode(b"[[1, 2]]", "application/json", TWO)


def test_v2_request_becomes_typed_arrays_and_answers_v2():
    body = {
        "id": "r-7",
        "inputs": [
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "n", "shape": [2, 1], "datatype": "INT64", "data": [[5], [6]]},
        ],
    }
    decoded = decode(json.dumps(body).encode(), "application/json", TWO)
    assert decoded.codec.name == "v2"
    assert decoded.values["a"].dtype == np.float32 and decoded.values["a"].shape == (2, 2)
    assert decoded.values["n"].dtype == np.int64 and decoded.values["n"].tolist() == [[5], [6]]
    answer = json.loads(decoded.codec.encode({"sum": np.ones((2, 2), np.float32), "twice": np.array([[10], [12]])}))
    assert answer == {
        "model_name": "mlp",
        "model_version": "1",
        "id": "r-7",
        "outputs": [
            {"name": "sum", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 1.0, 1.0, 1.0]},
            {"name": "twice", "shape": [2, 1], "datatype": "INT64", "data": [10, 12]},
        ],
    }


def test_v2_requested_outputs_filter_the_answer():
    body = {
        "inputs": [
            {"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]},
            {"name": "n", "shape": [1, 1], "datatype": "INT64", "data": [1]},
        ],
        "outputs": [{"name": "twice"}],
    }
    decoded = decode(json.dumps(body).encode(), "application/json", TWO)
    answer = json.loads(decoded.codec.encode({"sum": np.ones((1, 2), np.float32), "twice": np.array([[2]])}))
    assert [o["name"] for o in answer["outputs"]] == ["twice"]


@pytest.mark.parametrize(
    "tensor, fragment",
    [
        ({"name": "x", "shape": [1, 4], "datatype": "FP32"}, "missing data"),
        ({"name": "x", "shape": [1, 4], "datatype": "STRING", "data": [1, 2, 3, 4]}, "unsupported datatype 'STRING'"),
        ({"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4]}, "shape [1, 5] needs 5 values, data holds 4"),
        ({"name": "x", "shape": [1, -4], "datatype": "FP32", "data": [1, 2, 3, 4]}, "non-negative integers"),
        ({"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1.5, 2, 3, 4]}, "needs integers"),
        ({"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ["a", "b", "c", "d"]}, "needs numbers"),
        ({"name": "x", "shape": [True, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}, "non-negative integers, got [true, 4]"),
        ({"name": "x", "shape": [1, 4], "datatype": ["FP32"], "data": [1, 2, 3, 4]}, "unsupported datatype ['FP32']"),
    ],
)
def test_v2_tensor_errors_name_the_input(tensor, fragment):
    with pytest.raises(RequestError) as caught:
        decode(json.dumps({"inputs": [tensor]}).encode(), "application/json")
    assert fragment in caught.value.message and "'x'" in caught.value.message


def test_v2_tensor_name_must_be_text():
    body = {"inputs": [{"name": ["x"], "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    with pytest.raises(RequestError, match=r"inputs\[0\]: name must be a string, got a JSON list"):
        decode(json.dumps(body).encode(), "application/json")


def test_v2_unknown_requested_output():
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "outputs": [{"name": "z"}]}
    with pytest.raises(RequestError, match=r"unknown output 'z'.*\['y'\]"):
        decode(json.dumps(body).encode(), "application/json")


def test_npy_body_in_npy_answer_out():
    array = np.arange(8, dtype=np.float32).reshape(2, 4)
    for content_type in ("application/x-npy", "application/octet-stream", None):
        decoded = decode(npy(array), content_type)
        assert decoded.codec.name == "numpy"
        np.testing.assert_array_equal(decoded.values["x"], array)
    answer = np.load(io.BytesIO(decoded.codec.encode({"y": np.ones((2, 3), np.float32)})))
    assert isinstance(answer, np.ndarray) and answer.shape == (2, 3) and answer.dtype == np.float32


def test_npz_for_several_inputs_and_outputs():
    decoded = decode(npz(a=np.ones((1, 2), np.float32), n=np.array([[3]])), "application/x-npz", TWO)
    assert sorted(decoded.values) == ["a", "n"]
    answer = np.load(io.BytesIO(decoded.codec.encode({"sum": np.ones((1, 2), np.float32), "twice": np.array([[6]])})))
    assert sorted(answer.files) == ["sum", "twice"] and answer["twice"].tolist() == [[6]]


def test_npy_body_for_a_two_input_model_is_refused():
    with pytest.raises(RequestError, match=r"carries one array but the model has inputs \['a', 'n'\]"):
        decode(npy(np.ones((1, 2), np.float32)), "application/x-npy", TWO)


def test_npy_content_type_with_a_broken_body():
    with pytest.raises(RequestError, match="not a readable .npy/.npz"):
        decode(b"\x93NUMPY broken", "application/x-npy")


def test_pickled_object_arrays_are_refused():
    with pytest.raises(RequestError, match="not a readable"):
        decode(npy(np.array([{"a": 1}], dtype=object)), "application/x-npy")


def test_object_arrays_inside_an_npz_are_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", npy(np.array([{"a": 1}], dtype=object)))
    with pytest.raises(RequestError, match="not a readable .npz file.*allow_pickle=False"):
        decode(buffer.getvalue(), "application/x-npz")


def test_an_npz_that_unpacks_past_the_cap_is_413_before_it_is_unpacked():
    buffer = io.BytesIO()
    rows = codecs.MAX_NPZ_UNPACKED // 16 + 1
    np.savez_compressed(buffer, x=np.zeros((rows, 4), np.float32))
    assert len(buffer.getvalue()) < codecs.MAX_NPZ_UNPACKED // 100
    with pytest.raises(RequestError) as caught:
        decode(buffer.getvalue(), "application/x-npz")
    assert caught.value.status == 413 and "unpacks to" in caught.value.message


@pytest.mark.parametrize("content_type", ["image/png", "application/xml", "application/x-www-form-urlencoded"])
def test_other_content_types_are_415(content_type):
    with pytest.raises(RequestError) as caught:
        decode(b"[[1, 2, 3, 4]]", content_type)
    assert caught.value.status == 415 and content_type in caught.value.message


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "invalid JSON: Expecting property name"),
        (b"", "empty request body"),
        (b"[\xff]", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    ],
)
def test_json_syntax_errors(body, fragment):
    with pytest.raises(RequestError, match=fragment):
        decode(body, "application/json")


def test_non_finite_outputs_become_null_in_json():
    encoded = codecs.PlainJsonCodec().encode({"y": np.array([1.0, np.nan, np.inf], np.float32)})
    assert json.loads(encoded) == {"outputs": {"y": [1.0, None, None]}}


def test_json_answers_give_back_the_same_float32_values():
    values = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    encoded = codecs.PlainJsonCodec().encode({"y": values})
    assert np.array_equal(np.asarray(json.loads(encoded)["outputs"]["y"], dtype=np.float32), values)
    v2 = codecs.V2JsonCodec("m", "1")
    v2.decode({"inputs": []}, ONE)
    tensor = json.loads(v2.encode({"y": values}))["outputs"][0]
    assert tensor["shape"] == [4, 5] and np.array_equal(np.asarray(tensor["data"], np.float32), values.reshape(-1))


def test_json_answers_of_any_output_shape_or_kind():
    strided = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]  # not contiguous: written through tolist()
    encoded = codecs.PlainJsonCodec().encode({"a": strided, "b": np.float32(2.5), "c": np.array(["x", "y"]), "d": [{1: 0.25, 2: 0.75}]})
    assert json.loads(encoded)["outputs"] == {"a": [[0, 2], [4, 6], [8, 10]], "b": 2.5, "c": ["x", "y"], "d": [{"1": 0.25, "2": 0.75}]}


def test_bodies_orjson_refuses_are_read_as_the_stdlib_reads_them():
    assert codecs.parse_json(bytearray(b'{"inputs": {"x": [[1, NaN]]}}'))["inputs"]["x"][0][1] != 0  # NaN kept
    with pytest.raises(RequestError, match="invalid JSON: Expecting value at line 1 column 2"):
        codecs.parse_json(b"[,]")
    assert codecs.parse_json(b"[" + b"1" * 30 + b"]") == [pytest.approx(1.111111111111111e29)]  # a number, as a float
