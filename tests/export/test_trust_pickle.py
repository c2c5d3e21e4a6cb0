"""scikit-learn files are unpickled, which runs code they hold: only with an explicit --trust-pickle / trust_pickle=True."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from edgecloud.cli import main as cli
from export.errors import BadInputError
from export.pipeline import export_model


class _Planted:
    """Unpickling this creates the marker file: what a hostile model file could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def hostile_pickle(folder: Path, suffix: str) -> tuple[Path, Path]:
    marker = folder / "unpickled-code-ran"
    path = folder / f"model{suffix}"
    path.write_bytes(pickle.dumps(_Planted(marker)))
    return path, marker


@pytest.mark.parametrize("suffix, framework", [(".joblib", "auto"), (".pkl", "auto"), (".bin", "sklearn")])
def test_cli_refuses_to_unpickle_without_the_flag(tmp_path, capsys, suffix, framework):
    path, marker = hostile_pickle(tmp_path, suffix)
    code = cli(["export", str(path), "--framework", framework, "--name", "m", "--out", str(tmp_path / "reg")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{path.name} would be unpickled, which runs any code the file holds: pass --trust-pickle" in err
    assert not marker.exists(), "the file was unpickled"
    assert not (tmp_path / "reg").exists()


def test_python_api_refuses_to_unpickle_unless_asked(tmp_path):
    path, marker = hostile_pickle(tmp_path, ".joblib")
    with pytest.raises(BadInputError, match=r"trust_pickle=True"):
        export_model(path, name="m", version="1", out=tmp_path / "reg")
    assert not marker.exists()


@pytest.mark.sklearn
def test_the_flag_is_the_only_difference(tmp_path, capsys):
    """Proof the refusal above is the flag's doing: with it, the same file is unpickled (its code runs)."""
    pytest.importorskip("joblib")
    path, marker = hostile_pickle(tmp_path, ".joblib")
    code = cli(["export", str(path), "--name", "m", "--out", str(tmp_path / "reg"), "--trust-pickle"])
    assert marker.exists() and code == 2  # unpickled, then refused: it holds no estimator
    assert "not a scikit-learn estimator" in capsys.readouterr().err


@pytest.mark.sklearn
def test_a_trusted_file_exports(zoo_model, tmp_path, capsys):
    model_path, sample_path = zoo_model("sklearn_scaler_ridge")
    argv = ["export", str(model_path), "--sample", str(sample_path), "--name", "ridge", "--out", str(tmp_path)]
    assert cli([*argv, "--trust-pickle"]) == 0, capsys.readouterr().err
    assert (tmp_path / "ridge" / "1" / "model.onnx").is_file()
