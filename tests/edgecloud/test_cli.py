"""The command line: one clear line and exit 2 on bad input; `serve` stops cleanly on a signal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgecloud.cli import main as cli
from tests.builders import write_version_dir
from tests.conftest import free_port


def one_error_line(capsys) -> str:
    """The single error line (progress lines may precede it); never a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["export", "{tmp}/absent.keras", "--name", "m", "--out", "{tmp}/reg"], "model file not found"),
        (["export", "{tmp}/model.bin", "--name", "m", "--out", "{tmp}/reg"], "cannot tell the framework of model.bin"),
        (["export", "{tmp}/model.bin", "--framework", "caffe", "--name", "m", "--out", "{tmp}/reg"], "unknown framework 'caffe'"),
        (["export", "{tmp}/model.bin", "--name", "9lives", "--out", "{tmp}/reg"], "model name '9lives' must start with a letter"),
        (["export", "{tmp}/model.bin", "--name", "m", "--version", "v1", "--out", "{tmp}/reg"], "version 'v1' must be a whole number"),
        (["archive", "{tmp}", "--out", "{tmp}/store"], "has no model.json"),
        (["serve", "--model-store", "{tmp}/absent", "--registry", "{tmp}"], "model store not found"),
        (["serve", "--model-store", "{tmp}", "--registry", "{tmp}", "--inference-port", "40000"], "--inference-port 40000"),
        (["serve", "--model-store", "{tmp}", "--registry", "{tmp}", "--java-heap", "64"], "--java-heap must be at least 128 MB, got 64"),
        (["serve", "--model-store", "{tmp}", "--registry", "{tmp}", "--web-port", "70000"], "--web-port 70000: not a TCP port"),
        (
            ["serve", "--model-store", "{tmp}", "--registry", "{tmp}", "--host", "0.0.0.0"],
            "--host 0.0.0.0 listens on every address, so the page's origin is not known here: give --cors-origin",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragment):
    (tmp_path / "model.bin").write_bytes(b"junk")
    code = cli([part.replace("{tmp}", str(tmp_path)) for part in argv])
    assert code == 2
    assert fragment in one_error_line(capsys)


@pytest.mark.keras
def test_truncated_keras_file_and_bad_sample(tmp_path, capsys, dense_keras_model):
    model_path, _ = dense_keras_model
    truncated = tmp_path / "cut.keras"
    truncated.write_bytes(model_path.read_bytes()[:200])
    assert cli(["export", str(truncated), "--name", "m", "--out", str(tmp_path / "reg")]) == 2
    assert "cannot load Keras model cut.keras" in one_error_line(capsys)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 5), np.float32))
    assert cli(["export", str(model_path), "--sample", str(wrong), "--name", "m", "--out", str(tmp_path / "reg")]) == 2
    assert "sample for input 'x' has shape [1, 5], the model expects [?, 8]" in one_error_line(capsys)
    assert not (tmp_path / "reg" / "m").exists()


@pytest.mark.keras
def test_versions_are_immutable(tmp_path, capsys, dense_keras_model):
    model_path, sample = dense_keras_model
    args = ["export", str(model_path), "--sample", str(sample), "--name", "m", "--out", str(tmp_path / "reg")]
    assert cli(args) == 0
    capsys.readouterr()
    assert cli(args) == 2
    assert "already exists: versions are immutable" in one_error_line(capsys)
    assert cli([*args, "--force"]) == 0


def _java_processes_under(folder: Path) -> list[str]:
    """Command lines of live processes (MMS's java, its python launcher) that mention `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if str(folder) in args and state != "Z" and ("java" in args or "mms" in args):
            found.append(args)
    return found


def _spawn_serve(tmp_path: Path) -> tuple[subprocess.Popen, list[int], Path]:
    """`edgecloud serve` of a one-model store in a child process: (process, ports, its TMPDIR).

    A short TMPDIR keeps MMS's worker sockets inside it, so workers can be looked for too.
    """
    store, registry = tmp_path / "store", tmp_path / "registry"
    assert cli(["archive", str(write_version_dir(registry / "relu" / "1")), "--out", str(store)]) == 0
    ports = [free_port() for _ in range(3)]
    runtime_tmp = Path(tempfile.mkdtemp(prefix="ect-", dir="/tmp"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgecloud",
            "serve",
            "--model-store",
            str(store),
            "--registry",
            str(registry),
            "--inference-port",
            str(ports[0]),
            "--management-port",
            str(ports[1]),
            "--web-port",
            str(ports[2]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(runtime_tmp)},
    )
    return process, ports, runtime_tmp


def _stop(process: subprocess.Popen) -> None:
    """After a failed assertion: SIGTERM first, so serve still stops its MMS (SIGKILL would orphan it)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.integration
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_urls_answers_and_stops_without_leftovers(tmp_path, stop_signal):
    process, ports, runtime_tmp = _spawn_serve(tmp_path)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        if not lines:
            pytest.fail(f"serve printed nothing; stderr: {process.stderr.read()[-2000:]}")
        assert any(f"http://127.0.0.1:{ports[2]}/demo/" in line for line in lines), lines
        assert any(f"http://127.0.0.1:{ports[0]}/predictions/" in line for line in lines), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/ping") as response:
            assert json.loads(response.read())["status"] == "Healthy"
        # serve printed its URLs only once every registered model answers what the page's health check asks.
        check = urllib.request.Request(f"http://127.0.0.1:{ports[0]}/predictions/relu", method="OPTIONS")
        with urllib.request.urlopen(check) as response:
            assert response.status == 200 and "openapi" in json.loads(response.read())
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports[0]}/predictions/relu", data=b"[[-1, 2, -3]]", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            assert json.loads(response.read()) == {"outputs": {"y": [[0.0, 2.0, 0.0]]}, "model_version": "1"}
        for path in ("/demo/", "/onnx-wasm.wasm", "/vendor/onnxjs/onnx.min.js", "/models/relu/1/model.json"):
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}{path}") as response:
                assert response.status == 200, path
        running = _java_processes_under(runtime_tmp)
        assert any("java" in args for args in running) and any("model_service_worker" in args for args in running)
        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0
    finally:
        _stop(process)
    deadline = time.monotonic() + 10
    while _java_processes_under(runtime_tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _java_processes_under(runtime_tmp) == []
    shutil.rmtree(runtime_tmp, ignore_errors=True)


def _java_pids_under(folder: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in args and args.split(" ")[0].endswith("java"):
            pids.append(int(proc.name))
    return pids


@pytest.mark.integration
def test_serve_fails_with_one_line_and_keeps_the_logs_when_mms_dies(tmp_path):
    process, _ports, runtime_tmp = _spawn_serve(tmp_path)
    try:
        for line in process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        java = _java_pids_under(runtime_tmp)
        assert java, "MMS's java process should be running"
        for pid in java:
            os.kill(pid, signal.SIGKILL)
        assert process.wait(timeout=60) == 1
        errors = [line for line in process.stderr.read().splitlines() if ": error: " in line]
        assert len(errors) == 1 and "Multi Model Server exited unexpectedly" in errors[0], errors
        log_dir = Path(errors[0].rsplit("see ", 1)[1])
        assert (log_dir / "mms_log.log").is_file()
    finally:
        _stop(process)
        shutil.rmtree(runtime_tmp, ignore_errors=True)


@pytest.mark.parametrize("command", ["export", "archive", "serve", "verify", "build", "demo"])
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli([command, "--help"])
    assert stopped.value.code == 0
    assert "usage: edgecloud" in capsys.readouterr().out
