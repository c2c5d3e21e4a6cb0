"""The federated loop's serving side: the registry's models as the aggregator sees them, and the
publisher that turns a round's parameters into a served version.

Multi Model Server 1.1.11 has no model versions and cannot swap the .mar behind a name without a
gap (unregister, then register: requests meanwhile get 404). So each version a round produces is
registered under its own name, `NAME-vN` (archive `NAME-vN.mar` in the model store, which
`serve` registers again at its next start), while every name already registered keeps answering;
only then does `latest.json` move. `/predictions/NAME` keeps the version `NAME.mar` holds; a page
that runs version N on the edge asks `cloud_name(NAME, N)` for the same version (`/config.json`
`cloudModels` lists what is served).
"""

from __future__ import annotations

import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aggregation.http import FederatedApi
from aggregation.service import FederatedModel, FederatedService, ParameterSpec, run_ticker
from aggregation.settings import FederatedSettings
from aggregation.store import open_store
from export.federated_version import trainable_parameters, write_federated_version
from export.manifest import LATEST_NAME, read_manifest, update_latest
from mms_handlers.archive import build_archive
from mms_handlers.server import MmsServer

from .errors import CliError

PREFIX = "/federated"
DATABASE_FILE = "federated.sqlite"


@dataclass
class FederatedOptions:
    """`serve --federated NAME ...`: which models take updates, the round rules, where rounds are kept."""

    models: list[str]
    settings: FederatedSettings = field(default_factory=FederatedSettings)
    database: str | None = None  # default: MODEL_STORE/federated.sqlite


def cloud_name(name: str, version: str) -> str:
    """The MMS name of version `version` of `name` when a round produced it."""
    return f"{name}-v{version}"


def load_model(registry: Path, name: str) -> FederatedModel:
    """The version latest.json names, with its trainable parameters' values (CliError if it has none)."""
    latest = Path(registry) / name / LATEST_NAME
    try:
        version = str(json.loads(latest.read_text())["version"])
    except (OSError, ValueError, KeyError) as error:
        raise CliError(f"--federated {name}: no {latest} naming its current version ({error})") from None
    version_dir = latest.parent / version
    manifest = read_manifest(version_dir)
    if not (manifest.get("training") or {}).get("parameters"):
        raise CliError(f"--federated {name}: version {version} has no training entry; export it with --trainable")
    base = trainable_parameters(version_dir)
    specs = tuple(ParameterSpec(p["name"], tuple(p["shape"]), p.get("dtype", "float32")) for p in manifest["training"]["parameters"])
    produced_by = (manifest.get("federated") or {}).get("round")
    return FederatedModel(name, version, specs, base, produced_by)


def served_versions(mms: MmsServer, names: list[str]) -> dict[str, dict[str, str]]:
    """{model: {version: MMS name}} of what MMS serves now, read from each .mar's model.json."""
    served: dict[str, dict[str, str]] = {name: {} for name in names}
    for entry in mms.models():
        mms_name = entry.get("modelName", "")
        for name in names:
            if mms_name == name or mms_name.startswith(f"{name}-v"):
                mar = Path(mms.config.model_store) / f"{mms_name}.mar"
                try:
                    with zipfile.ZipFile(mar) as archive:
                        version = str(json.loads(archive.read("model.json"))["version"])
                except (OSError, KeyError, ValueError, zipfile.BadZipFile):
                    continue
                served[name][version] = mms_name
    return served


class ServingPublisher:
    """Writes version N+1, archives it, registers it with MMS beside what is served, moves latest.json."""

    def __init__(self, registry: Path, mms: MmsServer, on_served: Callable[[str, str, str], None] = lambda *a: None) -> None:
        self.registry, self.mms, self.on_served = Path(registry), mms, on_served
        self._lock = threading.Lock()

    def publish(self, model: FederatedModel, parameters: dict[str, np.ndarray], provenance: dict[str, Any]) -> FederatedModel:
        with self._lock:
            version_dir = write_federated_version(self.registry / model.name, model.version, parameters, provenance)
            name = cloud_name(model.name, version_dir.name)
            mar = build_archive(version_dir, self.mms.config.model_store, name=name)
            self.mms.register(mar.name)  # synchronous: its workers are up when this returns
            update_latest(self.registry / model.name)
            self.on_served(model.name, version_dir.name, name)
            return load_model(self.registry, model.name)


class Aggregator:
    """The running aggregator of a stack: store, service, ticker; `api` is what the site mounts."""

    def __init__(self, options: FederatedOptions, registry: Path, mms: MmsServer, on_served: Callable[[str, str, str], None]) -> None:
        models = [load_model(registry, name) for name in options.models]
        self.database = options.database or str(Path(mms.config.model_store) / DATABASE_FILE)
        self.store = open_store(self.database)
        self.service = FederatedService(self.store, options.settings, models, ServingPublisher(registry, mms, on_served))
        self.api = FederatedApi(self.service).handle
        self._stop = threading.Event()
        self._ticker = run_ticker(self.service, self._stop, every=0.5)

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=60)  # a close in progress finishes (its version is whole) before the store closes
        self.store.close()
