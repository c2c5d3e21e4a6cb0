"""benchmarks.server_variants without servers: what each variant name sets, and the ratios it prints."""

from __future__ import annotations

import pytest

from benchmarks.cloud import FLASK
from benchmarks.server_variants import main, ratios, variant
from mms_handlers import server


def test_each_variant_undoes_one_setting_and_before_undoes_them_all():
    project = variant("project")
    assert (project.codec, project.request_lines, project.async_logging, project.batch_size) == (
        "",
        False,
        server.ASYNC_LOGGING,
        server.DEFAULT_BATCH_SIZE,
    )
    assert variant("mms-codec").codec == "mms" and variant("request-lines").request_lines
    assert variant("sync-logging").async_logging is False and variant("netty-3").netty_threads == (3, 3)
    assert (variant("batch4-2ms").batch_size, variant("batch4-2ms").max_batch_delay_ms) == (4, 2)
    before = variant("before")
    assert (before.codec, before.request_lines, before.async_logging, before.batch_size) == ("mms", True, False, 1)


@pytest.mark.parametrize("name", ["fast", "netty-x", "batch-1ms", "batch8-1"])
def test_an_unknown_variant_is_refused_with_the_known_ones(name, capsys):
    with pytest.raises(SystemExit) as caught:
        main([name])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and f"unknown variant {name!r}" in err and "batchN-Mms" in err


def _row(peer: str, round_number: int, rps: float, p99: float, cpu: float) -> dict:
    return {
        "peer": peer,
        "model": "mlp",
        "concurrency": 32,
        "round": round_number,
        "requests_per_s": rps,
        "p99_ms": p99,
        "cpu_us_per_request": cpu,
        "errors": 0,
        "load_1min": 2.0,
    }


def test_ratios_are_taken_round_by_round_against_flask():
    rows = [_row(FLASK, 1, 100, 10, 600), _row("project", 1, 300, 5, 200), _row(FLASK, 2, 200, 20, 400), _row("project", 2, 200, 10, 400)]
    (line,) = ratios(rows)
    assert "req/s no difference (median 2.00, 1.00–3.00)" in line
    assert "p99 0.50 (0.50–0.50)" in line
    assert "CPU/request Flask÷this no difference (median 2.00, 1.00–3.00) (this 300 µs)" in line
