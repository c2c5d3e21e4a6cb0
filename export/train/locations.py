"""Byte ranges of initializers' `raw_data` inside a saved ONNX file.

The browser personalises an inference file by overwriting those ranges (no protobuf parser in
the page). Python's protobuf runtime does not report field offsets, so the file's wire format is
walked here: ModelProto.graph (field 7) → GraphProto.initializer (field 5) → TensorProto.name
(field 8) and raw_data (field 9). Only length-delimited fields are descended into; the rest
are skipped by their wire type. Every range is then checked to hold the initializer's bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ExportError

_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_NAME, _TENSOR_RAW = 7, 5, 8, 9


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes, start: int, end: int):
    """(field number, payload start, payload end) of the length-delimited fields in data[start:end]."""
    at = start
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, at = _varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == 2:
            length, at = _varint(data, at)
            yield number, at, at + length
            at += length
        else:
            raise ExportError(f"unexpected protobuf wire type {wire} while locating initializers")


def raw_data_ranges(data: bytes) -> dict[str, tuple[int, int]]:
    """{initializer name: (offset, length)} of every initializer stored as raw_data."""
    found: dict[str, tuple[int, int]] = {}
    for number, start, end in _fields(data, 0, len(data)):
        if number != _MODEL_GRAPH:
            continue
        for inner, i_start, i_end in _fields(data, start, end):
            if inner != _GRAPH_INITIALIZER:
                continue
            name, raw = None, None
            for field, f_start, f_end in _fields(data, i_start, i_end):
                if field == _TENSOR_NAME:
                    name = data[f_start:f_end].decode()
                elif field == _TENSOR_RAW:
                    raw = (f_start, f_end - f_start)
            if name is not None and raw is not None:
                found[name] = raw
    return found


def as_raw_data(model: onnx.ModelProto, names: list[str]) -> None:
    """Store these float initializers as little-endian raw_data (some converters write float_data)."""
    for index, init in enumerate(model.graph.initializer):
        if init.name in names and not init.HasField("raw_data"):
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init), init.name))


def locate(path: Path, values: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """{name: {offset, length}} in the file at `path`, each proven to hold exactly `values[name]`."""
    data = Path(path).read_bytes()
    ranges = raw_data_ranges(data)
    found = {}
    for name, value in values.items():
        if name not in ranges:
            raise ExportError(f"{Path(path).name} has no raw_data initializer {name!r} (the lowering changed it)")
        offset, length = ranges[name]
        expected = np.ascontiguousarray(value, dtype="<f4").tobytes()
        if data[offset : offset + length] != expected:
            raise ExportError(f"{Path(path).name}: initializer {name!r} does not hold the trained parameter's values")
        found[name] = {"offset": offset, "length": length}
    return found
