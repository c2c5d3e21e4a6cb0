"""Request bodies → named input values, and outputs → the same form the request used.

Codecs know nothing of MMS or engines: `service.py` moves bytes in and out, this module
only translates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import numpy as np

from .errors import RequestError
from .signature import Signature


class Codec(Protocol):
    name: str

    def encode(self, outputs: Mapping[str, np.ndarray]) -> str | bytes: ...


@dataclass
class Decoded:
    values: dict[str, Any]
    codec: Codec


class PlainJsonCodec:
    """`{"inputs": {"x": [...]}}` or, for a single-input model, a bare nested list."""

    name = "json"

    def decode(self, document: Any, signature: Signature) -> dict[str, Any]:
        if isinstance(document, list):
            if len(signature.inputs) != 1:
                raise RequestError(
                    f"a bare list is only accepted by single-input models; send {{\"inputs\": {{...}}}} "
                    f"with inputs {signature.input_names}"
                )
            return {signature.inputs[0].name: document}
        if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
            return document["inputs"]
        raise RequestError(
            'expected a JSON object {"inputs": {"NAME": [...]}} or a bare nested list, '
            f"got {_describe_json(document)}"
        )

    def encode(self, outputs: Mapping[str, np.ndarray]) -> str:
        return json.dumps({"outputs": {name: np.asarray(value).tolist() for name, value in outputs.items()}})


def _describe_json(document: Any) -> str:
    if isinstance(document, dict):
        return f"an object with keys {sorted(document)[:5]}"
    return f"a JSON {type(document).__name__}"


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; a syntax error becomes a 400 that says where."""
    if not body:
        raise RequestError("empty request body: send a JSON document")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8 JSON") from None
    except json.JSONDecodeError as error:
        raise RequestError(f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None


def decode(body: bytes, content_type: str | None, signature: Signature) -> Decoded:
    """Pick the codec from the content type and the body's shape, and decode."""
    codec = PlainJsonCodec()
    document = parse_json(body)
    return Decoded(values=codec.decode(document, signature), codec=codec)
