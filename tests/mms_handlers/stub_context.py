"""A stand-in for MMS's `Context` in unit tests: headers in, per-request statuses and metrics out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mms.metrics.metrics_store import MetricsStore


class StubContext:
    def __init__(self, model_dir: Path, content_types: list[str | None] | None = None, model_name: str = "mlp") -> None:
        self.model_name = model_name
        self.system_properties = {"model_dir": str(model_dir), "batch_size": 8}
        self.content_types = content_types or []
        self.statuses: dict[int, tuple[int, str]] = {}
        self.metrics = MetricsStore({i: f"req-{i}" for i in range(len(self.content_types))}, model_name)

    def get_all_request_header(self, idx: int) -> dict[str, Any]:
        content_type = self.content_types[idx] if idx < len(self.content_types) else None
        # MMS's shape: the body parameter's own type, plus the HTTP headers as sent.
        headers: dict[str, Any] = {"body": {"content-type": content_type or ""}}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)

    def metric(self, name: str) -> list[tuple[Any, Any]]:
        """(value, request id) of every metric with this name."""
        return [(m.value, m.request_id) for m in self.metrics.store if m.name == name]
