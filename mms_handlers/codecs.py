"""Request bodies → named input values, and outputs → the same form the request used.

Three forms: plain JSON (`{"inputs": {"x": [...]}}` or a bare nested list), Open Inference
Protocol V2 JSON (`{"inputs": [{"name", "shape", "datatype", "data"}]}`) and NumPy bodies
(`.npy` for one input; `.npz` keyed by input name for several). Which one is decided from the
Content-Type and the body itself (see `decode`). Codecs know nothing of MMS or engines.

JSON goes through orjson both ways (the answer straight from the numpy arrays, no `tolist()`),
several times faster than the stdlib on the request's hot path. A body orjson refuses is parsed
again by the stdlib `json`, which decides: it accepts what the stdlib always accepted (`NaN`
literals, refused later by the signature check with the input's name) and its messages say where
the syntax error is. (One difference from the stdlib: orjson reads an integer past 64 bits as a
float, which a float input takes and an integer input refuses, where the stdlib's Python int was
refused by both.) Floats go out in their shortest round-trip form for their own dtype (a float32
output as `0.1`, not `0.10000000149011612`): the same float32 once read back; NaN and ±Inf as null.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import numpy as np
import orjson

from .errors import RequestError
from .signature import Signature

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
JSON_TYPES = {"application/json", "text/json", "text/plain"}
NUMPY_TYPES = {"application/x-npy", "application/x-npz", "application/octet-stream"}
# A compressed .npz can unpack to far more than max_request_size: cap what a body may unpack to.
MAX_NPZ_UNPACKED = 256 * 1024 * 1024
# MMS has already split a form body into fields before the handler sees it: refuse it clearly.
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}

# Open Inference Protocol V2 tensor datatypes ↔ numpy dtypes (BYTES is not a numeric tensor).
V2_DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
V2_NAMES = {dtype: name for name, dtype in V2_DATATYPES.items()}


class Codec(Protocol):
    name: str

    def encode(self, outputs: Mapping[str, np.ndarray]) -> str | bytes: ...


@dataclass
class Decoded:
    values: dict[str, Any]
    codec: Codec


class PlainJsonCodec:
    """`{"inputs": {"x": [...]}}` or, for a single-input model, a bare nested list.

    The answer is `{"outputs": {...}, "model_version": V}`: the version that computed it (model.json's,
    from the .mar), so a page can tell when the cloud runs another version than its edge.
    """

    name = "json"

    def __init__(self, model_version: str | None = None) -> None:
        self.model_version = model_version

    def decode(self, document: Any, signature: Signature) -> dict[str, Any]:
        if isinstance(document, list):
            if len(signature.inputs) != 1:
                raise RequestError(
                    f'a bare list is only accepted by single-input models; send {{"inputs": {{...}}}} with inputs {signature.input_names}'
                )
            return {signature.inputs[0].name: document}
        if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
            return document["inputs"]
        raise RequestError(
            'expected a JSON object {"inputs": {"NAME": [...]}}, {"inputs": [{"name", "shape", "datatype", '
            f'"data"}}]}} (Open Inference Protocol V2) or a bare nested list, got {_describe_json(document)}'
        )

    def encode(self, outputs: Mapping[str, np.ndarray]) -> bytes:
        answer: dict[str, Any] = {"outputs": dict(outputs)}
        if self.model_version is not None:
            answer["model_version"] = self.model_version
        return dump_json(answer)


@dataclass
class V2JsonCodec:
    """Open Inference Protocol V2 (KServe, Triton): typed tensors with flat `data` in row-major order."""

    model_name: str
    model_version: str
    request_id: str | None = None
    requested_outputs: list[str] | None = None
    name: str = field(default="v2", init=False)

    def decode(self, document: Mapping[str, Any], signature: Signature) -> dict[str, Any]:
        self.request_id = document.get("id") if isinstance(document.get("id"), str) else None
        self.requested_outputs = self._requested_outputs(document.get("outputs"), signature)
        values: dict[str, Any] = {}
        for position, tensor in enumerate(document["inputs"]):
            name, array = self._tensor(position, tensor)
            if name in values:
                raise RequestError(f'input {name!r} appears twice in "inputs"')
            values[name] = array
        return values

    @staticmethod
    def _tensor(position: int, tensor: Any) -> tuple[str, np.ndarray]:
        where = f"inputs[{position}]"
        if not isinstance(tensor, dict):
            raise RequestError(f"{where}: expected an object with name, shape, datatype, data")
        missing = [key for key in ("name", "shape", "datatype", "data") if key not in tensor]
        if isinstance(tensor.get("name"), str):
            where = f"input {tensor['name']!r} (inputs[{position}])"
        if missing:
            raise RequestError(f"{where}: missing {', '.join(missing)} (V2 tensors need name, shape, datatype, data)")
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        if not isinstance(name, str):
            raise RequestError(f"{where}: name must be a string, got {_describe_json(name)}")
        where = f"input {name!r}"
        if not isinstance(shape, list) or not all(_is_dimension(dim) for dim in shape):
            raise RequestError(f"{where}: shape must be a list of non-negative integers, got {json.dumps(shape)}")
        if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
            raise RequestError(f"{where}: unsupported datatype {datatype!r}; use one of {', '.join(V2_DATATYPES)}")
        dtype = np.dtype(V2_DATATYPES[datatype])
        try:
            flat = np.asarray(tensor["data"]).reshape(-1)
        except ValueError:
            raise RequestError(f"{where}: data is a ragged nested list") from None
        if flat.dtype.kind not in "biuf":
            raise RequestError(f"{where}: datatype {datatype} needs numbers in data, got {flat.dtype} values")
        if flat.dtype.kind == "f" and dtype.kind in "biu":
            raise RequestError(f"{where}: datatype {datatype} needs integers in data, got fractional numbers")
        count = math.prod(shape)
        if flat.size != count:
            raise RequestError(f"{where}: shape {shape} needs {count} values, data holds {flat.size}")
        return name, flat.astype(dtype).reshape(shape)

    @staticmethod
    def _requested_outputs(requested: Any, signature: Signature) -> list[str] | None:
        if requested is None:
            return None
        if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
            raise RequestError('"outputs" must be a list of {"name": ...} objects')
        names = [entry["name"] for entry in requested]
        unknown = [name for name in names if name not in signature.output_names]
        if unknown:
            raise RequestError(f"unknown output {unknown[0]!r}: the model's outputs are {signature.output_names}")
        return names

    def encode(self, outputs: Mapping[str, np.ndarray]) -> bytes:
        names = self.requested_outputs or list(outputs)
        answer: dict[str, Any] = {"model_name": self.model_name, "model_version": self.model_version}
        if self.request_id is not None:
            answer["id"] = self.request_id
        answer["outputs"] = [_v2_tensor(name, np.asarray(outputs[name])) for name in names]
        return dump_json(answer)


class NumpyCodec:
    """A `.npy` body for a single-input model, `.npz` (one array per input name) for several.

    The answer is `.npy` when the model has one output and `.npz` keyed by output name when it
    has several; `numpy.load` reads either.
    """

    name = "numpy"

    def decode(self, body: bytes | bytearray, signature: Signature) -> dict[str, Any]:
        try:
            loaded = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise RequestError(f"body is not a readable .npy/.npz file ({error})") from None
        if isinstance(loaded, np.ndarray):
            if len(signature.inputs) != 1:
                raise RequestError(
                    f"a .npy body carries one array but the model has inputs {signature.input_names}; "
                    "send an .npz with one array per input name, or JSON"
                )
            return {signature.inputs[0].name: loaded}
        with loaded:
            unpacked = sum(member.file_size for member in loaded.zip.infolist())
            if unpacked > MAX_NPZ_UNPACKED:
                raise RequestError(f".npz body unpacks to {unpacked} bytes, more than the {MAX_NPZ_UNPACKED} accepted", status=413)
            try:
                return {name: loaded[name] for name in loaded.files}
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise RequestError(f"body is not a readable .npz file ({error})") from None

    def encode(self, outputs: Mapping[str, np.ndarray]) -> bytes:
        buffer = io.BytesIO()
        if len(outputs) == 1:
            np.save(buffer, np.asarray(next(iter(outputs.values()))), allow_pickle=False)
        else:
            np.savez(buffer, **{name: np.asarray(value) for name, value in outputs.items()})
        return buffer.getvalue()


def _v2_tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    datatype = V2_NAMES.get(array.dtype.name)
    if datatype is None:
        raise TypeError(f"output {name!r} has dtype {array.dtype}, which Open Inference Protocol V2 cannot carry")
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.reshape(-1)}


def _as_lists(value: Any) -> Any:
    """orjson's fallback for what it does not serialise itself (0-d, non-contiguous, object or string arrays)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def dump_json(document: Any) -> bytes:
    """Strict JSON (NaN and ±Inf as null) with numpy arrays written straight from their buffers.

    Non-string keys (a classifier's label → probability maps) become strings, as `json.dumps` makes them.
    """
    return orjson.dumps(document, default=_as_lists, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _is_dimension(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _describe_json(document: Any) -> str:
    if isinstance(document, dict):
        return f"an object with keys {sorted(document)[:5]}"
    if document is None:
        return "null"
    return f"a JSON {type(document).__name__}"


def parse_json(body: bytes | bytearray) -> Any:
    """Parse a JSON body; a syntax error becomes a 400 that says where."""
    if not body:
        raise RequestError("empty request body: send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # the stdlib decides (see the module docstring)
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8 JSON") from None
    except json.JSONDecodeError as error:
        raise RequestError(f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise RequestError("JSON nested too deeply: a model input needs a handful of levels, not thousands") from None


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str | None) -> None:
    """A 415 for anything but JSON, NumPy or no type at all (then the body is sniffed)."""
    kind = media_type(content_type)
    if kind and kind not in JSON_TYPES | NUMPY_TYPES and not kind.endswith("+json"):
        hint = " (curl -d sends that: add -H 'Content-Type: application/json')" if kind in FORM_TYPES else ""
        raise RequestError(
            f"unsupported Content-Type {kind!r}{hint}: send application/json (plain or Open Inference Protocol V2) or application/x-npy",
            status=415,
        )


def decode(body: bytes | bytearray, content_type: str | None, signature: Signature, model_version: tuple[str, str]) -> Decoded:
    """Pick the codec from the Content-Type and the body's first bytes, and decode.

    JSON types (or no type) with a JSON body → plain or V2 by the shape of `inputs`;
    `application/x-npy`/`x-npz`/`octet-stream`, or a body starting with the .npy/.zip magic
    when no type was named → NumPy. Anything else is a 415.
    """
    kind = media_type(content_type)
    is_numpy_body = body.startswith((NPY_MAGIC, ZIP_MAGIC))
    if kind in NUMPY_TYPES or (not kind and is_numpy_body):
        numpy_codec = NumpyCodec()
        return Decoded(values=numpy_codec.decode(body, signature), codec=numpy_codec)
    check_content_type(content_type)
    document = parse_json(body)
    if isinstance(document, dict) and isinstance(document.get("inputs"), list):
        v2 = V2JsonCodec(*model_version)
        return Decoded(values=v2.decode(document, signature), codec=v2)
    plain = PlainJsonCodec(model_version[1])
    return Decoded(values=plain.decode(document, signature), codec=plain)
