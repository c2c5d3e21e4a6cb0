"""ServingSettings: one set of defaults for serve, the replica and the image; flags, environment, check()."""

from __future__ import annotations

import argparse

import pytest

from mms_handlers.replica.runner import build_parser, settings_from
from mms_handlers.server import SettingError
from mms_handlers.settings import FIELDS, ServingSettings, flag_of


def parse(argv: list[str], environ: dict[str, str] | None = None) -> ServingSettings:
    parser = argparse.ArgumentParser()
    ServingSettings.add_arguments(parser, environ=environ or {})
    return ServingSettings.from_args(parser.parse_args(argv))


def test_flags_environment_and_defaults_fill_the_same_fields() -> None:
    assert parse([]) == ServingSettings()
    assert parse(["--max-batch-delay", "7", "--drain-seconds", "1.5"]) == ServingSettings(max_batch_delay_ms=7, drain_seconds=1.5)
    from_env = parse([], {"EDGECLOUD_KEEP_VERSIONS": "3", "EDGECLOUD_JAVA_HEAP": "256"})
    assert (from_env.keep_versions, from_env.java_heap_mb) == (3, 256)
    assert parse(["--keep-versions", "4"], {"EDGECLOUD_KEEP_VERSIONS": "3"}).keep_versions == 4  # the flag wins


def test_the_replica_and_serve_share_the_defaults(tmp_path) -> None:
    from edgecloud.cli import build_parser as cli_parser

    replica = settings_from(build_parser().parse_args(["--model-store", str(tmp_path)]))
    defaults = ServingSettings()
    assert (replica.server.max_batch_delay_ms, replica.drain_seconds) == (defaults.max_batch_delay_ms, defaults.drain_seconds)
    serve = cli_parser().parse_args(["serve", "--model-store", str(tmp_path), "--registry", str(tmp_path)])
    assert ServingSettings.from_args(serve) == defaults


def test_arguments_round_trip_through_the_flags() -> None:
    chosen = ServingSettings(workers=2, batch_size=8, max_batch_delay_ms=3, drain_seconds=0.5, keep_versions=1)
    assert parse(chosen.arguments()) == chosen


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("keep_versions", 0, "keep versions must be at least 1, got 0"),
        ("drain_seconds", -1.0, "drain seconds must be at least 0 s, got -1.0"),
        ("java_heap_mb", 64, "Java heap must be at least 128 MB, got 64"),
        ("max_batch_delay_ms", -1, "max batch delay must be at least 0 ms, got -1"),
    ],
)
def test_check_names_the_setting_in_one_line(field: str, value: float, message: str) -> None:
    with pytest.raises(SettingError) as caught:
        ServingSettings(**{field: value}).check()
    assert str(caught.value) == message and caught.value.setting == field
    assert flag_of(field) == f"--{FIELDS[field].flag}"


def test_a_bad_environment_value_is_one_usage_line(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        parse([], {"EDGECLOUD_WORKERS": "two"})
    assert caught.value.code == 2
    assert "argument --workers: invalid int value: 'two'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, line",
    [
        (["--keep-versions", "0"], "edgecloud serve: error: --keep-versions must be at least 1, got 0"),
        (["--drain-seconds", "-1"], "edgecloud serve: error: --drain-seconds must be at least 0 s, got -1.0"),
    ],
)
def test_serve_refuses_a_bad_setting_in_one_line_before_starting(tmp_path, capsys, flags, line) -> None:
    from edgecloud.cli import main as cli

    assert cli(["serve", "--model-store", str(tmp_path), "--registry", str(tmp_path), *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]
