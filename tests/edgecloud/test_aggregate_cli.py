"""`edgecloud aggregate` refuses bad flags and unreachable databases in one line (exit 2 / 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregation.settings import FederatedSettings
from edgecloud.cli import main
from edgecloud.round_flags import add_round_options, round_settings_from, settings_flags
from registry import Registry
from tests.builders import write_trainable_version_dir
from tests.conftest import free_port
from tests.edgecloud.test_cli import one_error_line


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    write_trainable_version_dir(tmp_path / "registry" / "mlp" / "1")
    Registry(tmp_path / "registry").set_latest("mlp", 1)
    return tmp_path / "registry"


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ([], "aggregate needs at least one --federated NAME"),
        (["--federated", "nope"], "--federated nope: no"),
        (["--federated", "metrics"], "/federated/metrics is the aggregator's Prometheus endpoint"),
        (["--federated", "mlp", "--port", "70000"], "--port 70000: not a TCP port"),
        (["--federated", "mlp", "--cors-origin", "page.example"], "--cors-origin 'page.example': an origin is scheme://host[:port]"),
        (["--federated", "mlp", "--min-clients", "0"], "--min-clients must be at least 1, got 0"),
        (["--federated", "mlp", "--max-update-bytes", "10"], "--max-update-bytes must be at least 1024"),
        (["--federated", "mlp", "--database", "mysql://db/rounds"], "--database: database 'mysql://db/rounds': use postgresql://"),
        (["--federated", "mlp", "--drain-seconds", "-1"], "--drain-seconds must be at least 0"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(registry: Path, capsys, extra: list[str], fragment: str) -> None:
    assert main(["aggregate", "--registry", str(registry), *extra]) == 2
    assert fragment in one_error_line(capsys)


def test_missing_registry_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["aggregate", "--registry", str(tmp_path / "none"), "--federated", "mlp"]) == 2
    assert "registry not found" in one_error_line(capsys)


def test_an_unreachable_database_is_a_failure_in_one_line(registry: Path, capsys) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/rounds"  # nothing listens there
    assert main(["aggregate", "--registry", str(registry), "--federated", "mlp", "--database", url]) == 1
    assert "the round store cannot be reached: PostgreSQL at 127.0.0.1" in one_error_line(capsys)


def test_settings_flags_give_the_same_settings_back() -> None:
    import argparse

    settings = FederatedSettings(min_clients=5, round_deadline=30.0, clip=2.0, max_norm=10.0, dp_noise=0.5, aggregation="median")
    parser = argparse.ArgumentParser()
    add_round_options(parser.add_argument_group())
    assert round_settings_from(parser.parse_args(settings_flags(settings))) == settings
