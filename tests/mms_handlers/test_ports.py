"""free_port draws from EDGECLOUD_FREE_PORTS when it names a sane range (each xdist worker gets its own)."""

from __future__ import annotations

import pytest

from mms_handlers.ports import DEFAULT_RANGE, FREE_PORTS_ENV, free_port, port_range


def test_free_port_stays_in_the_range_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FREE_PORTS_ENV, "24000-24010")
    assert port_range() == (24000, 24010)
    assert all(24000 <= free_port() <= 24010 for _ in range(20))


@pytest.mark.parametrize("value", ["", "x-y", "30000-20000", "80-90", "20000-70000"])
def test_a_missing_or_insane_range_is_the_default(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(FREE_PORTS_ENV, value)
    assert port_range() == DEFAULT_RANGE
