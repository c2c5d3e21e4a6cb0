"""A model's input/output signature read from model.json, and checking requests against it.

Two kinds of values arrive: JSON numbers (untyped: ints may feed a float input, floats may not
feed an int input) and typed arrays from `.npy` bodies or V2 `datatype`s (the dtype must be the
model's or convert to it without loss, e.g. int32 → int64; float64 → float32 is refused).
NaN and ±Inf are refused unless model.json says `"serving": {"allow_nan": true}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .errors import RequestError

_NUMERIC_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def describe(self) -> str:
        dims = ", ".join("?" if dim is None else str(dim) for dim in self.shape)
        return f"{self.dtype}[{dims}]"

    @property
    def batched(self) -> bool:
        """A free first dimension: requests can be stacked along it."""
        return len(self.shape) > 0 and self.shape[0] is None


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    allow_nan: bool = False

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "Signature":
        def specs(key: str) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(s["name"], s["dtype"], tuple(s["shape"])) for s in manifest[key])

        serving = manifest.get("serving") or {}
        return cls(inputs=specs("inputs"), outputs=specs("outputs"), allow_nan=bool(serving.get("allow_nan", False)))

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    @property
    def batchable(self) -> bool:
        """Every input and output has a free first dimension, so axis 0 is the batch axis."""
        return all(spec.batched for spec in (*self.inputs, *self.outputs))

    def check(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Arrays for every input, or a RequestError naming the input, what was expected and what came."""
        missing = [name for name in self.input_names if name not in values]
        if missing:
            raise RequestError(f"missing input {missing[0]!r}: expected inputs {self.input_names}")
        extra = sorted(set(values) - set(self.input_names))
        if extra:
            raise RequestError(f"unexpected input {extra[0]!r}: expected inputs {self.input_names}")
        return {spec.name: self._check_one(spec, values[spec.name]) for spec in self.inputs}

    def _check_one(self, spec: TensorSpec, value: Any) -> np.ndarray:
        array = _typed_array(spec, value) if isinstance(value, np.ndarray) else _json_array(spec, value)
        if array.ndim != len(spec.shape):
            raise RequestError(f"input {spec.name!r}: expected rank {len(spec.shape)} {spec.describe()}, got shape {list(array.shape)}")
        for want, got in zip(spec.shape, array.shape):
            if want is not None and want != got:
                raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got shape {list(array.shape)}")
        if spec.dtype in _NUMERIC_DTYPES:
            array = array.astype(spec.dtype, copy=False)
        if not self.allow_nan and array.dtype.kind == "f" and not np.isfinite(array).all():
            where = [int(i) for i in np.argwhere(~np.isfinite(array))[0]]
            raise RequestError(
                f"input {spec.name!r}: expected finite values, got NaN or Inf at index {where} "
                '(this model\'s model.json does not set "serving": {"allow_nan": true})'
            )
        return array


def _typed_array(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got dtype {array.dtype}")
    if spec.dtype in _NUMERIC_DTYPES and not np.can_cast(array.dtype, np.dtype(spec.dtype), casting="safe"):
        raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got dtype {array.dtype} (it does not convert without loss)")
    return array


def _json_array(spec: TensorSpec, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:
        raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got a ragged nested list") from None
    if array.dtype == object:
        got = {type(None): "null", dict: "an object"}.get(type(value), "a ragged nested list or numbers out of range")
        raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got {got}")
    want_kind = np.dtype(spec.dtype).kind if spec.dtype in _NUMERIC_DTYPES else "f"
    if array.dtype.kind not in "biuf" or (array.dtype.kind == "f" and want_kind in "iub"):
        got = "text" if array.dtype.kind in "US" else f"{array.dtype} values"
        raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got {got}")
    return array
