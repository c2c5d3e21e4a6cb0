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
from ..names import name_problem, public_name
from ..signature import Signature, TensorSpec

MANIFEST_FILE = "model.json"
PLATFORM = "onnxruntime_onnx"
SERVER_NAME = "onnx-edgecloud"
_MODEL_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<action>/ready|/infer)?$")


@dataclass(frozen=True)
class ModelInfo:
    """One served version: the model's own name, its version, its signature and the MMS name it runs under."""

    name: str
    version: str
    signature: Signature
    mms_name: str

    def metadata(self, versions: list[str] | None = None) -> dict[str, Any]:
        """The V2 model metadata object (free dimensions as -1); `versions` are those kept, newest last."""
        return {
            "name": self.name,
            "versions": versions or [self.version],
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


def model_info(manifest: dict[str, Any], mms_name: str) -> ModelInfo:
    """The served version a model.json describes, running under `mms_name` in MMS."""
    return ModelInfo(public_name(mms_name, manifest), str(manifest.get("version", "1")), Signature.from_manifest(manifest), mms_name)


def read_model_info(mar: Path, name: str | None = None) -> ModelInfo:
    """The version inside `mar` (registered as its stem unless `name` says otherwise), from its model.json."""
    with zipfile.ZipFile(mar) as archive:
        manifest = model_json.parse(archive.read(MANIFEST_FILE), f"{mar.name}:{MANIFEST_FILE}")
    return model_info(manifest, name or mar.stem)


class Catalog:
    """The versions one replica serves and which one each model's name routes to; never changed in place.

    The version watcher builds a new catalog and swaps it in with one assignment, so a request sees
    either the old routing or the new one, never half of a switch.
    """

    def __init__(self, versions: dict[str, dict[str, ModelInfo]] | None = None, current: dict[str, str] | None = None) -> None:
        self._versions = {name: dict(kept) for name, kept in (versions or {}).items()}
        self._current = dict(current or {})
        # The version each name routes to (what `/predictions/NAME` and `/v2/models/NAME` answer with).
        self.models = {name: self._versions[name][version] for name, version in self._current.items()}
        self._by_mms_name = {info.mms_name: info for kept in self._versions.values() for info in kept.values()}

    @classmethod
    def from_store(cls, store: Path, names: list[str]) -> "Catalog":
        """Archives of a model store, each served as it is (one version per name, no watching)."""
        infos = [read_model_info(Path(store) / f"{name}.mar", name) for name in names]
        return cls({info.mms_name: {info.version: info} for info in infos}, {info.mms_name: info.version for info in infos})

    def kept(self, name: str) -> list[str]:
        """The versions of `name` registered, oldest first."""
        return sorted(self._versions.get(name, {}), key=_version_order)

    def version(self, name: str, version: str) -> ModelInfo | None:
        return self._versions.get(name, {}).get(version)

    def by_mms_name(self, mms_name: str) -> ModelInfo | None:
        return self._by_mms_name.get(mms_name)

    def with_version(self, info: ModelInfo) -> "Catalog":
        """This catalog plus `info` (not routed to yet)."""
        versions = {**self._versions, info.name: {**self._versions.get(info.name, {}), info.version: info}}
        return Catalog(versions, self._current)

    def routed(self, name: str, version: str) -> "Catalog":
        """This catalog with `name` routed to its kept `version`."""
        if version not in self._versions.get(name, {}):
            raise KeyError(f"{name} version {version} is not registered")
        return Catalog(self._versions, {**self._current, name: version})

    def without(self, name: str, version: str) -> "Catalog":
        """This catalog without `version` of `name` (never the one the name routes to)."""
        if self._current.get(name) == version:
            raise KeyError(f"{name} version {version} is the one served")
        kept = {v: info for v, info in self._versions.get(name, {}).items() if v != version}
        return Catalog({**self._versions, name: kept}, self._current)

    def find(self, route: Route) -> tuple[ModelInfo | None, str]:
        """The version a route names (the routed one when it names none), or None and the message of the 404."""
        if name_problem(route.model) or route.model not in self.models:
            return None, f"unknown model {route.model!r}; served: {', '.join(sorted(self.models)) or 'none'}"
        if route.version is None:
            return self.models[route.model], ""
        info = self.version(route.model, route.version)
        if info is None:
            kept = ", ".join(self.kept(route.model))
            return None, f"model {route.model!r} has no version {route.version!r}; served: {kept}"
        return info, ""


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": []}
