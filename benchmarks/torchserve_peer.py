"""TorchServe 0.12 as another cloud peer: only when it can run here."""

from __future__ import annotations


def torchserve_status(enabled: bool) -> str:
    return "Not measured in this run."
