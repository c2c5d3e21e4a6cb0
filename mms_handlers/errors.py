"""Request errors carry their HTTP status so one bad request fails alone, with a clear message."""

from __future__ import annotations

import json


class RequestError(Exception):
    """One request's failure (a 4xx client mistake, or a 500), answered without touching the others."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def kind(self) -> str:
        kinds = {400: "BadRequest", 413: "PayloadTooLarge", 415: "UnsupportedMediaType", 500: "InternalServerError"}
        return kinds.get(self.status, "ClientError" if self.status < 500 else "ServerError")

    def body(self) -> str:
        """The same `{code, type, message}` shape MMS uses for its own errors."""
        return json.dumps({"code": self.status, "type": self.kind, "message": self.message})
