"""ONNX external data: a tensor whose bytes lie outside the model's folder is refused by the engine
(whatever engine) and by `edgecloud archive`; data inside the folder runs, but archive refuses it
because the .mar would carry only the ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from edgecloud.cli import main as cli
from mms_handlers.archive import ArchiveError, build_archive
from mms_handlers.engines import EngineLoadError, load_engine

from .models import EXTERNAL_WEIGHTS, external_data_version

SECRET = np.array([7.0, 7.0, 7.0, 7.0], np.float32)


def _escaping(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A version folder whose W points outside it, and the location it names; the target file exists."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())
    location = {"parent": "../../../secret.bin", "absolute": str(secret), "symlink": "weights.bin", "nul": "weights\x00.bin"}[how]
    folder = external_data_version(tmp_path / "reg", location)
    if how == "symlink":
        (folder / "weights.bin").symlink_to(secret)
    return folder, location


@pytest.mark.parametrize("engine", ["onnxruntime", "mxnet"])
@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "nul"])
def test_engine_refuses_external_data_outside_the_folder(tmp_path, how, engine):
    folder, location = _escaping(tmp_path, how)
    with pytest.raises(EngineLoadError) as caught:
        load_engine(engine, folder / "model.onnx")
    assert str(caught.value) == f"model.onnx: tensor 'W' keeps its data at {location!r}, not a file inside the model's folder"


def test_engine_runs_external_data_inside_the_folder(tmp_path):
    folder = external_data_version(tmp_path / "reg", "weights.bin")
    (folder / "weights.bin").write_bytes(EXTERNAL_WEIGHTS.tobytes())
    x = np.ones((2, 4), np.float32)
    result = load_engine("onnxruntime", folder / "model.onnx").run({"x": x})
    np.testing.assert_array_equal(result["y"], x + EXTERNAL_WEIGHTS)


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "nul"])
def test_archive_refuses_external_data_outside_the_folder(tmp_path, how, capsys):
    folder, location = _escaping(tmp_path, how)
    code = cli(["archive", str(folder), "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"tensor 'W' keeps its data at {location!r}, not a file inside the model's folder" in err
    assert not (tmp_path / "store").exists(), "nothing may be written for a refused model"


def test_archive_refuses_external_data_inside_the_folder_as_the_mar_would_lack_it(tmp_path):
    folder = external_data_version(tmp_path / "reg", "weights.bin")
    (folder / "weights.bin").write_bytes(EXTERNAL_WEIGHTS.tobytes())
    with pytest.raises(
        ArchiveError, match=r"tensor 'W' keeps its data in 'weights.bin' beside the file, and the \.mar carries only model\.onnx"
    ):
        build_archive(folder, tmp_path / "store")


def test_onnx_and_onnxruntime_refuse_a_parent_path_by_themselves_too(tmp_path):
    """Our check is defence in depth: the pinned onnx and onnxruntime refuse `..` on their own as well."""
    folder, _ = _escaping(tmp_path, "parent")
    with pytest.raises(onnx.checker.ValidationError, match="points outside the directory"):
        onnx.load(str(folder / "model.onnx"))
    with pytest.raises(Exception, match="External data path escapes model directory"):
        onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
