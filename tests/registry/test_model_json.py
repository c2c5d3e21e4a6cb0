"""model.json's contract (registry/model_json.py): the committed schemas are valid draft 2020-12,
what the builders make validates, and every way a manifest can be wrong is refused in one line
that names it (an unknown major schema version first)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from registry import model_json
from registry.model_json import ManifestError

SCHEMAS = Path(model_json.__file__).parent / "schema"
SHA = "0" * 64


def good() -> dict:
    """A manifest made by the builders (no file on disk needed: `files` entries are given)."""
    files = {
        "model.onnx": {"sha256": SHA, "size": 10, "role": "cloud"},
        "model.edge.onnx": {"sha256": SHA, "size": 12, "role": "edge", "opset": 9},
    }
    edge = model_json.edge(
        file="model.edge.onnx",
        runtime="onnxjs",
        lowered=True,
        passes=[{"name": "opset-down", "applied": True, "max_abs_diff": 0.0}],
        blockers={"cpu": [], "wasm": [], "webgl": []},
        backends=["cpu", "wasm", "webgl"],
    )
    return model_json.manifest(
        name="m",
        version=3,
        source=model_json.source("torch", "2.13.0", "m.pt"),
        opset=13,
        ir_version=8,
        inputs=[model_json.tensor("x", "float32", [None, 4])],
        outputs=[model_json.tensor("y", "float32", [None, 2])],
        files=files,
        cloud_file="model.onnx",
        edge=edge,
        parity={"source_vs_onnxruntime": {"max_abs_diff": 1e-7, "inputs_compared": 3, "tolerance": 1e-5, "passed": True}},
        serving=model_json.serving(allow_nan=True),
    )


@pytest.mark.parametrize("file", ["model.schema.json", "latest.schema.json"])
def test_committed_schemas_are_draft_2020_12(file: str) -> None:
    schema = json.loads((SCHEMAS / file).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_builders_make_what_the_schema_accepts_in_the_written_key_order() -> None:
    manifest = good()
    assert manifest["schema"] == 1 and manifest["version"] == "3" and manifest["created"]
    assert list(manifest) == [
        "schema",
        "name",
        "version",
        "created",
        "source",
        "opset",
        "ir_version",
        "inputs",
        "outputs",
        "files",
        "cloud",
        "edge",
        "parity",
        "serving",
    ]
    assert model_json.validate(json.loads(json.dumps(manifest))) == manifest


def broken(change) -> dict:
    manifest = copy.deepcopy(good())
    change(manifest)
    return manifest


CASES = {
    "unknown major": (lambda m: m.update(schema=2), "has schema 2, which this release cannot read (it reads schema 1)"),
    "major as text": (lambda m: m.update(schema="1"), "has schema '1', which this release cannot read"),
    "no major": (lambda m: m.pop("schema"), 'names no schema version ("schema": 1)'),
    "version as number": (lambda m: m.update(version=3), "version: 3 is not of type 'string'"),
    "negative dimension": (lambda m: m["inputs"][0]["shape"].__setitem__(1, -1), "inputs[0].shape[1]: -1 is less than the minimum of 0"),
    "no outputs": (lambda m: m.pop("outputs"), "'outputs' is a required property"),
    "bad hash": (lambda m: m["files"]["model.onnx"].update(sha256="xyz"), "files.model.onnx.sha256: 'xyz' does not match"),
    "unknown role": (lambda m: m["files"]["model.onnx"].update(role="gpu"), "files.model.onnx.role: 'gpu' is not one of"),
    "edge file not listed": (lambda m: m["edge"].update(file="other.onnx"), "edge.file names 'other.onnx', which `files` does not list"),
    "unknown runtime": (lambda m: m["edge"].update(runtime="tfjs"), "edge.runtime: 'tfjs' is not one of"),
    "allow_nan as text": (lambda m: m["serving"].update(allow_nan="yes"), "serving.allow_nan: 'yes' is not of type 'boolean'"),
    "parity without verdict": (lambda m: m["parity"]["source_vs_onnxruntime"].pop("passed"), "parity.source_vs_onnxruntime"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_manifest_is_refused_in_one_line_naming_why(case: str) -> None:
    change, expected = CASES[case]
    with pytest.raises(ManifestError) as caught:
        model_json.validate(broken(change), "m/3/model.json")
    message = str(caught.value)
    assert message.startswith("m/3/model.json ") and expected in message and "\n" not in message, message


def test_training_locations_must_name_listed_files() -> None:
    manifest = good()
    manifest["training"] = {
        "parameters": [
            {"name": "w", "shape": [2], "locations": {"model.onnx": {"offset": 0, "length": 8}, "gone.onnx": {"offset": 0, "length": 8}}}
        ]
    }
    with pytest.raises(ManifestError, match=r"training.parameters\[0\].locations names 'gone.onnx'"):
        model_json.validate(manifest)


def test_unknown_keys_are_a_minor_addition_and_pass() -> None:
    manifest = good()
    manifest["notes"] = {"anything": 1}
    manifest["edge"]["future_field"] = True
    assert model_json.validate(manifest) is manifest


def test_read_and_write_refuse_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    with pytest.raises(ManifestError, match="does not exist"):
        model_json.read(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="is not readable JSON"):
        model_json.read(path)
    with pytest.raises(ManifestError, match="schema 2"):
        model_json.write(path, {**good(), "schema": 2})
    assert path.read_text() == "{not json"  # a refused write leaves the file as it was
    model_json.write(path, good())
    assert model_json.read(path) == json.loads(json.dumps(good() | {"created": model_json.read(path)["created"]}))


def test_latest_json() -> None:
    latest = model_json.latest("m", 10, [1, 2, 10])
    assert latest == {"name": "m", "version": "10", "manifest": "10/model.json", "versions": ["1", "2", "10"]}
    with pytest.raises(ManifestError, match="latest.json is not valid: the top level: 'version' is a required property"):
        model_json.validate_latest({"name": "m", "manifest": "1/model.json"})
    with pytest.raises(ManifestError, match=r"manifest: '../x/model.json' does not match"):
        model_json.validate_latest({"name": "m", "version": "1", "manifest": "../x/model.json"})


def test_file_entry_hashes_and_refuses_an_unknown_role(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    entry = model_json.file_entry(path, role="train", opset=18)
    assert entry == {"sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3, "role": "train", "opset": 18}
    with pytest.raises(ValueError, match="file role 'gpu'"):
        model_json.file_entry(path, role="gpu")
