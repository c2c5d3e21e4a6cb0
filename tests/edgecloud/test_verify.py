"""`edgecloud verify` in real Chromium: a silent ONNX.js mismatch (Softmax-13 over a non-last
axis, written without lowering) fails with exit 1 and is recorded; the lowered file passes.

The command runs in a child process, as a user runs it (and because Playwright's sync API
cannot start twice in one thread while the session's browser fixture is open).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edgecloud.runtime_files import download_bytes
from export.edge.artifact import edge_variant
from export.manifest import file_entry, write_manifest
from export.pipeline import SAMPLE_FILE, sample_json
from export.verify import onnxruntime_runner, parity_inputs
from tests.builders import describe
from tests.export import edge_graphs

pytestmark = [pytest.mark.integration]


def write_version(registry: Path, name: str, lowered: bool, graph=edge_graphs.softmax_middle_axis) -> Path:
    """A registry version for the hand-built Softmax-13 model, as `edgecloud export` lays it out."""
    model, sample = graph()
    folder = registry / name / "1"
    folder.mkdir(parents=True)
    onnx.save(model, folder / "model.onnx")
    (folder / SAMPLE_FILE).write_text(json.dumps(sample_json(sample)))
    files, edge = edge_variant(model, sample, onnxruntime_runner(model), parity_inputs(sample), folder, "model.onnx", enabled=lowered)
    files = {"model.onnx": file_entry(folder / "model.onnx"), SAMPLE_FILE: file_entry(folder / SAMPLE_FILE), **files}
    manifest = describe(folder, name, model, files, edge)
    write_manifest(folder, manifest)
    return folder


def verify(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "edgecloud", "verify", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_verify_fails_on_a_silent_onnxjs_mismatch(tmp_path):
    folder = write_version(tmp_path, "raw_softmax", lowered=False)
    before = json.loads((folder / "model.json").read_text())
    assert before["edge"]["runtime"] == "onnxruntime-web"  # the checker already knows
    result = verify(str(folder), "--random", "1", "--repeats", "2")
    assert result.returncode == 1, result.stderr
    assert "MISMATCH" in result.stdout and "onnxjs/cpu differs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    verified = json.loads((folder / "model.json").read_text())["edge"]["verified"]
    assert verified["passed"] is False
    cpu = next(row for row in verified["results"] if row["backend"] == "cpu")
    assert cpu["runs"] and cpu["max_abs_diff"] > 1e-4
    ort_web = next(row for row in verified["results"] if row["runtime"] == "onnxruntime-web")
    assert ort_web["passed"] and ort_web["max_abs_diff"] <= 1e-6
    assert verified["file"] == "model.onnx"
    ranked = [(row["runtime"], row["backend"]) for row in json.loads((folder / "model.json").read_text())["edge"]["ranking"]]
    assert ("onnxjs", "cpu") not in ranked and ("onnxruntime-web", "wasm") in ranked  # a mismatch is never ranked


def relu_softmax_neg() -> tuple[onnx.ModelProto, dict]:
    """Relu → Softmax-13 over a middle axis (ONNX.js's silent bug) → Neg: the mismatch starts in the middle."""
    model, sample = edge_graphs.softmax_middle_axis()
    softmax = model.graph.node[0]
    softmax.name, softmax.input[0], softmax.output[0] = "the-softmax", "r", "s"
    model.graph.node.insert(0, onnx.helper.make_node("Relu", ["x"], ["r"], name="pre"))
    model.graph.node.append(onnx.helper.make_node("Neg", ["s"], ["y"], name="post"))
    return model, sample


def test_verify_names_the_first_operator_that_differs(tmp_path):
    folder = write_version(tmp_path, "middle_softmax", lowered=False, graph=relu_softmax_neg)
    result = verify(str(folder), "--random", "1", "--repeats", "1")
    assert result.returncode == 1, result.stderr
    assert "MISMATCH: first differs at Softmax 'the-softmax' (output 's'" in result.stdout, result.stdout
    assert "first at Softmax 'the-softmax'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    cpu = next(row for row in json.loads((folder / "model.json").read_text())["edge"]["verified"]["results"] if row["backend"] == "cpu")
    assert cpu["first_difference"].startswith("Softmax 'the-softmax'"), cpu
    assert sorted(path.name for path in folder.iterdir()) == ["model.json", "model.onnx", "sample.json"]  # nothing left behind


def test_verify_passes_on_the_lowered_file_and_keeps_hashes_right(tmp_path):
    folder = write_version(tmp_path, "lowered_softmax", lowered=True)
    result = verify(str(folder), "--random", "1", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["runtime", "backend", "loads"]
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["edge"]["file"] == "model.edge.onnx" and manifest["edge"]["verified"]["passed"]
    assert {row["backend"] for row in manifest["edge"]["verified"]["results"] if row["passed"]} >= {"cpu", "wasm"}
    # The ranking: exactly the pairs that passed, fastest first, each with its runtime's download size.
    ranking = manifest["edge"]["ranking"]
    passed = {(row["runtime"], row["backend"]) for row in manifest["edge"]["verified"]["results"] if row["passed"]}
    assert {(row["runtime"], row["backend"]) for row in ranking} == passed
    assert [row["median_ms"] for row in ranking] == sorted(row["median_ms"] for row in ranking)
    assert all(row["download_bytes"] == download_bytes(row["runtime"]) for row in ranking)
    assert download_bytes("onnxjs") < 1_000_000 < 10_000_000 < download_bytes("onnxruntime-web")
    assert "ranking (edge.ranking, the page's default order): " in result.stdout
    for name, entry in manifest["files"].items():
        assert file_entry(folder / name)["sha256"] == entry["sha256"]


def test_verify_names_a_folder_that_is_not_a_model(tmp_path):
    result = verify(str(tmp_path))
    assert result.returncode == 2 and "no model.json" in result.stderr


def test_verify_refuses_a_file_that_does_not_match_its_hash(tmp_path):
    folder = write_version(tmp_path, "tampered", lowered=True)
    (folder / "model.edge.onnx").write_bytes((folder / "model.edge.onnx").read_bytes() + b"\0")
    result = verify(str(folder))
    assert result.returncode == 2 and "model.edge.onnx does not match the SHA-256" in result.stderr


def test_verify_without_chromium_says_so(tmp_path):
    folder = write_version(tmp_path, "no_browser", lowered=True)
    env_chromium = str(tmp_path / "no-such-chromium")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "EDGECLOUD_CHROMIUM": env_chromium}
    result = subprocess.run(
        [sys.executable, "-m", "edgecloud", "verify", str(folder)], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 1 and "Chromium not found" in result.stderr
    assert "Traceback" not in result.stderr
