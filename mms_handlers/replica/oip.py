"""Open Inference Protocol V2 (KServe / Triton REST) paths, answered from the models' model.json.

Paths: `GET /v2`, `/v2/health/live`, `/v2/health/ready`, `/v2/models/NAME[/versions/V]`,
`…/ready`, `POST …/infer`. Metadata comes from the model.json inside each .mar (the only
writer is export's manifest); inference bodies go to MMS's `/predictions/NAME` unchanged, since
the handler reads and answers V2 JSON itself. Ignored: the binary-tensor extension (clients pass
`binary_data=False`), the model repository extension, and gRPC.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import model_json

from ..codecs import V2_NAMES
from ..names import name_problem
from ..signature import Signature, TensorSpec

MANIFEST_FILE = "model.json"
PLATFORM = "onnxruntime_onnx"
SERVER_NAME = "onnx-edgecloud"
_MODEL_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<action>/ready|/infer)?$")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    signature: Signature

    def metadata(self) -> dict[str, Any]:
        """The V2 model metadata object (free dimensions as -1)."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [_tensor_metadata(spec) for spec in self.signature.inputs],
            "outputs": [_tensor_metadata(spec) for spec in self.signature.outputs],
        }


@dataclass(frozen=True)
class Route:
    """A parsed `/v2/models/...` path; `action` is "metadata", "ready" or "infer"."""

    model: str
    version: str | None
    action: str


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "datatype": V2_NAMES.get(spec.dtype, spec.dtype.upper()),
        "shape": [-1 if dim is None else dim for dim in spec.shape],
    }


def parse_model_path(path: str) -> Route | None:
    """The route for a `/v2/models/...` path, or None when the path is not one."""
    match = _MODEL_PATH.match(path)
    if match is None:
        return None
    action = (match["action"] or "/metadata")[1:]
    return Route(match["name"], match["version"], action)


def read_model_info(mar: Path, name: str | None = None) -> ModelInfo:
    """Name, version and signature from the model.json inside `mar` (the model is registered as its stem)."""
    with zipfile.ZipFile(mar) as archive:
        manifest = model_json.parse(archive.read(MANIFEST_FILE), f"{mar.name}:{MANIFEST_FILE}")
    return ModelInfo(name or mar.stem, str(manifest.get("version", "1")), Signature.from_manifest(manifest))


class Catalog:
    """The models one replica serves, by registered name."""

    def __init__(self, models: dict[str, ModelInfo] | None = None) -> None:
        self.models = dict(models or {})

    @classmethod
    def from_store(cls, store: Path, names: list[str]) -> "Catalog":
        return cls({name: read_model_info(Path(store) / f"{name}.mar", name) for name in names})

    def find(self, route: Route) -> tuple[ModelInfo | None, str]:
        """The model a route names, or None and the message of the 404."""
        if name_problem(route.model) or route.model not in self.models:
            return None, f"unknown model {route.model!r}; served: {', '.join(sorted(self.models)) or 'none'}"
        info = self.models[route.model]
        if route.version is not None and route.version != info.version:
            return None, f"model {route.model!r} has no version {route.version!r}; served: {info.version}"
        return info, ""


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": []}
