"""The federated loop's serving side: the registry's models as the aggregator sees them, and
`RegistryPublisher`, which turns a round's parameters into version N+1 of the registry.

Both `edgecloud aggregate` and `serve --federated` publish only into the registry: the version
folder appears whole (renamed from a staging folder), then latest.json moves. Serving it is the
registry watcher's job (mms_handlers/replica/watcher.py, in every replica front door, `serve`'s
too): it checks the hashes, registers `NAME-vN` in MMS beside what is served, routes the name to
it once a worker answers and retires old versions. So a publisher never talks to MMS, and what a
killed publisher leaves (a staging folder, a version latest.json does not name) is never served;
the next close clears or reuses it (`RegistryPublisher`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aggregation.http import FederatedApi
from aggregation.service import FederatedModel, FederatedService, ParameterSpec, Publisher, run_ticker
from aggregation.settings import FederatedSettings
from aggregation.store import open_store
from aggregation.tokens import TokenVerifier
from export.federated_version import trainable_parameters, write_federated_version
from export.manifest import read_manifest
from registry import LATEST_NAME, Registry, RegistryError, model_json

from .errors import CliError

PREFIX = "/federated"
DATABASE_FILE = "federated.sqlite"


@dataclass
class FederatedOptions:
    """`serve --federated NAME ...`: which models take updates, the round rules, where rounds are kept."""

    models: list[str]
    settings: FederatedSettings = field(default_factory=FederatedSettings)
    database: str | None = None  # default: MODEL_STORE/federated.sqlite
    client_secret: bytes | None = field(default=None, repr=False)  # --client-secret: updates need a token it signed


def database_of(options: FederatedOptions, model_store: Path) -> str:
    return options.database or str(Path(model_store) / DATABASE_FILE)


def latest_version(registry: Path, name: str) -> str:
    latest = Path(registry) / name / LATEST_NAME
    try:
        return model_json.read_latest(latest)["version"]
    except (OSError, ValueError) as error:
        raise CliError(f"--federated {name}: no {latest} naming its current version ({error})") from None


def load_model(registry: Path, name: str, version: str | None = None) -> FederatedModel:
    """The version latest.json names (or `version`), with its trainable parameters' values (CliError if it has none)."""
    version = version or latest_version(registry, name)
    version_dir = Path(registry) / name / version
    manifest = read_manifest(version_dir)
    if not (manifest.get("training") or {}).get("parameters"):
        raise CliError(f"--federated {name}: version {version} has no training entry; export it with --trainable")
    base = trainable_parameters(version_dir)
    specs = tuple(ParameterSpec(p["name"], tuple(p["shape"]), p.get("dtype", "float32")) for p in manifest["training"]["parameters"])
    provenance = manifest.get("federated") or {}
    return FederatedModel(name, version, specs, base, provenance.get("round"), provenance.get("clients"))


def written_by_round(registry: Registry, name: str, base_version: str, round_id: int) -> tuple[int, dict[str, Any]] | None:
    """The newest version and its `federated` provenance, when round `round_id` on `base_version`
    wrote it (a closer stopped after writing, before recording the close), else None."""
    versions = registry.versions(name)
    if not versions or versions[-1] <= int(base_version):
        return None
    try:
        provenance = registry.manifest(name, versions[-1]).get("federated") or {}
    except RegistryError:
        return None
    if provenance.get("round") == round_id and str(provenance.get("base_version")) == str(base_version):
        return versions[-1], provenance
    return None


class RoundLost(RuntimeError):
    """The closer no longer holds the round (its database connection dropped): it publishes nothing."""


class RegistryPublisher:
    """`edgecloud aggregate` and `serve --federated`: writes version N+1 into the registry and moves
    latest.json; the serving replicas that watch the registry serve it (the publisher never talks to them).

    The service calls it while it holds the round's claim, so it is the model's one publisher, in
    whichever replica. First it clears what closers before it left: staging folders (they reserve
    their numbers) and complete versions newer than latest.json that are not this round's
    aggregate. A version this round already wrote from the same updates (its closer killed before
    recording the close) is published as it is, hashes checked, not written again: version numbers
    never repeat and never skip. One written from fewer updates (its closer lost the database, and
    with it the claim, while updates came in) is not the round's aggregate: unpublished, it is
    removed and its number written again; already published, it stays and the round's aggregate
    becomes the next version. Last, `held()`: a closer that lost the round moves nothing. latest.json
    never moves back.
    """

    def __init__(self, registry: Path) -> None:
        self.root = Path(registry)
        self.registry = Registry(registry)

    def publish(
        self, model: FederatedModel, parameters: dict[str, np.ndarray], provenance: dict[str, Any], held: Callable[[], bool]
    ) -> FederatedModel:
        name = model.name
        self.registry.recover(name)
        latest = self.registry.latest(name) or 0
        written = written_by_round(self.registry, name, model.version, provenance["round"])
        reuse = None
        if written is not None:
            version, earlier = written
            if (earlier.get("clients"), earlier.get("samples")) == (provenance["clients"], provenance["samples"]):
                reuse = version
        for leftover in self.registry.versions(name):
            if leftover > latest and leftover != reuse:
                self.registry.remove_version(name, leftover)
        if reuse is None:
            reuse = int(write_federated_version(self.registry.model_dir(name), model.version, parameters, provenance).name)
        if not held():
            raise RoundLost(f"round {provenance['round']} of {name} was lost while version {reuse} was written; it stays unpublished")
        if reuse > (self.registry.latest(name) or 0):
            self.registry.set_latest(name, reuse)
        return load_model(self.root, name, str(reuse))


class Aggregator:
    """A running aggregator: store, service, ticker. `serve --federated` mounts `api` on its site;
    `edgecloud aggregate` serves `service` with aggregation.server."""

    def __init__(self, options: FederatedOptions, registry: Path, publisher: Publisher, database: str) -> None:
        models = [load_model(registry, name) for name in options.models]
        self.database = database
        self.store = open_store(self.database)
        self.service = FederatedService(
            self.store, options.settings, models, publisher, loader=lambda name, version: load_model(registry, name, version)
        )
        self.tokens = TokenVerifier(options.client_secret) if options.client_secret is not None else None
        self.api = FederatedApi(self.service, self.tokens).handle
        self._stop = threading.Event()
        self._ticker = run_ticker(self.service, self._stop, every=0.5)

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=60)  # a close in progress finishes (its version is whole) before the store closes
        self.store.close()
