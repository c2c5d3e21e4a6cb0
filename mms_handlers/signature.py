"""A model's input/output signature read from model.json, and checking requests against it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .errors import RequestError

_JSON_DTYPES = {"float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def describe(self) -> str:
        dims = ", ".join("?" if dim is None else str(dim) for dim in self.shape)
        return f"{self.dtype}[{dims}]"


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "Signature":
        def specs(key: str) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(s["name"], s["dtype"], tuple(s["shape"])) for s in manifest[key])

        return cls(inputs=specs("inputs"), outputs=specs("outputs"))

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def check(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Arrays for every input, or a RequestError naming the input, what was expected and what came."""
        names = set(self.input_names)
        missing = [name for name in self.input_names if name not in values]
        if missing:
            raise RequestError(f"missing input {missing[0]!r}: expected inputs {self.input_names}")
        extra = sorted(set(values) - names)
        if extra:
            raise RequestError(f"unexpected input {extra[0]!r}: expected inputs {self.input_names}")
        return {spec.name: _to_array(spec, values[spec.name]) for spec in self.inputs}


def _to_array(spec: TensorSpec, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype.kind != np.dtype(spec.dtype).kind and not _safe_cast(array.dtype, spec.dtype):
            raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got dtype {array.dtype}")
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got a ragged nested list") from None
        if array.dtype == object:
            raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got a ragged nested list")
        if array.dtype.kind not in "biuf" or (array.dtype.kind == "f" and np.dtype(spec.dtype).kind in "iu"):
            got = "text" if array.dtype.kind in "US" else f"{array.dtype} values"
            raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got {got}")
    if array.ndim != len(spec.shape):
        raise RequestError(
            f"input {spec.name!r}: expected rank {len(spec.shape)} {spec.describe()}, got shape {list(array.shape)}"
        )
    for want, got in zip(spec.shape, array.shape):
        if want is not None and want != got:
            raise RequestError(f"input {spec.name!r}: expected {spec.describe()}, got shape {list(array.shape)}")
    if spec.dtype in _JSON_DTYPES:
        return array.astype(spec.dtype, copy=False)
    return array


def _safe_cast(source: np.dtype, target: str) -> bool:
    return np.can_cast(source, np.dtype(target), casting="same_kind")
