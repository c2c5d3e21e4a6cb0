"""`edgecloud serve --replicas/--gateway-port` and `python -m mms_handlers.replica`: bad settings get one
line and exit 2; replica ports are derived as documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgecloud.cli import main
from edgecloud.gateway.replicas import ReplicaPorts, replica_ports
from mms_handlers.server import SettingError
from tests.edgecloud.test_cli import one_error_line


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--replicas", "2"], "--replicas needs --gateway-port"),
        (["--gateway-port", "9000"], "--gateway-port needs --replicas N"),
        (["--replicas", "0", "--gateway-port", "9000"], "--replicas must be at least 1, got 0"),
        (["--replicas", "2", "--gateway-port", "70000"], "--gateway-port 70000: not a TCP port"),
        (["--replicas", "2", "--gateway-port", "8083"], "--gateway-port 8083: the replicas' derived ports overlap"),
        (
            ["--replicas", "3", "--gateway-port", "9000", "--inference-port", "32764", "--management-port", "100"],
            "--inference-port needs ports up to 32768 for 3 replicas",
        ),
        (["--replicas", "2", "--gateway-port", "9000", "--drain-seconds", "-1"], "--drain-seconds must be at least 0"),
        (["--replicas", "2", "--gateway-port", "9000", "--cors-origin", "*"], "--cors-origin: behind the gateway"),
        (["--replicas", "2", "--gateway-port", "9000", "--client-secret", "secret"], "--client-secret: behind the gateway"),
    ],
)
def test_bad_scale_out_flags_are_one_line_and_exit_2(tmp_path, capsys, extra, fragment):
    argv = ["serve", "--model-store", str(tmp_path), "--registry", str(tmp_path), *extra]
    assert main(argv) == 2
    assert fragment in one_error_line(capsys)


def test_replica_ports_follow_the_flags():
    assert replica_ports(2, 9000, 8080, 8081) == [ReplicaPorts(9001, 8080, 8081), ReplicaPorts(9002, 8082, 8083)]
    with pytest.raises(SettingError):
        replica_ports(2, 8079, 8080, 8081)  # front door 8080 is MMS's inference port


def test_replica_refuses_a_missing_store_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mms_handlers.replica", "--model-store", str(tmp_path / "none")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"replica: error: model store {tmp_path / 'none'}: no such folder"]
