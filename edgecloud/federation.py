"""The federated loop's serving side: the registry's models as the aggregator sees them, and the
publishers that turn a round's parameters into a version: `RegistryPublisher` (`edgecloud
aggregate`: version N+1 into the registry folder, which the serving replicas watch) and
`ServingPublisher` (`serve --federated`, development: also archived and registered with its MMS).

Multi Model Server 1.1.11 has no model versions and cannot swap the .mar behind a name without a
gap (unregister, then register: requests meanwhile get 404). So each version a round produces is
registered under its own name, `NAME-vN` (archive `NAME-vN.mar` in the model store, which
`serve` registers again at its next start), while every name already registered keeps answering;
only then does `latest.json` move. `/predictions/NAME` keeps the version `NAME.mar` holds; a page
that runs version N on the edge asks `cloud_name(NAME, N)` for the same version (`/config.json`
`cloudModels` lists what is served).

Publication is crash-safe: the folder appears whole (renamed from a hidden staging sibling), a
failed publication removes its folder and archive, and a process killed between writing version
N+1 and moving latest.json leaves a folder and maybe an archive that `recover` removes at the next
start, before MMS registers the store's archives: nothing half-published is ever served, and the
round, still open in the database with every update, closes again into the same version number.
"""

from __future__ import annotations

import shutil
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aggregation.http import FederatedApi
from aggregation.service import FederatedModel, FederatedService, ParameterSpec, Publisher, run_ticker
from aggregation.settings import FederatedSettings
from aggregation.store import RoundStore, open_store
from aggregation.tokens import TokenVerifier
from export.federated_version import trainable_parameters, write_federated_version
from export.manifest import LATEST_NAME, read_manifest, update_latest
from mms_handlers.archive import build_archive
from mms_handlers.server import MmsServer
from registry import Registry, RegistryError, model_json

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


def cloud_name(name: str, version: str) -> str:
    """The MMS name of version `version` of `name` when a round produced it."""
    return f"{name}-v{version}"


def database_of(options: FederatedOptions, model_store: Path) -> str:
    return options.database or str(Path(model_store) / DATABASE_FILE)


def latest_version(registry: Path, name: str) -> str:
    latest = Path(registry) / name / LATEST_NAME
    try:
        return model_json.read_latest(latest)["version"]
    except (OSError, ValueError) as error:
        raise CliError(f"--federated {name}: no {latest} naming its current version ({error})") from None


def discard_version(version_dir: Path, model_store: Path) -> None:
    """Remove an unpublished version: its archive first, then its folder (renamed away in one step)."""
    version_dir = Path(version_dir)
    name = version_dir.parent.name
    archive = cloud_name(name, version_dir.name)
    for mar in (Path(model_store) / f"{archive}.mar", Path(model_store) / f".{archive}.mar.partial"):
        mar.unlink(missing_ok=True)
    if version_dir.is_dir():
        doomed = version_dir.with_name(f".{name}-{version_dir.name}-discarded")
        shutil.rmtree(doomed, ignore_errors=True)
        version_dir.rename(doomed)
        shutil.rmtree(doomed)


def unpublished_versions(registry: Path, name: str, store: RoundStore) -> list[Path]:
    """Version folders the open round wrote but never published (latest.json still names its base)."""
    current = store.current_round(name)
    latest = latest_version(registry, name)
    if current is None or current.base_version != latest:
        return []
    found = []
    for child in (Path(registry) / name).iterdir():
        if child.is_dir() and child.name.isdigit() and int(child.name) > int(latest):
            try:
                provenance = read_manifest(child).get("federated") or {}
            except Exception:  # noqa: BLE001 - an unreadable folder is no version of this round's
                continue
            if provenance.get("round") == current.id and str(provenance.get("base_version")) == latest:
                found.append(child)
    return sorted(found)


def recover(options: FederatedOptions, registry: Path, model_store: Path) -> list[str]:
    """Remove what a publication killed midway left (staging folders, unpublished versions and their
    archives); call before MMS registers the store. Returns one line per thing removed."""
    removed = []
    store = open_store(database_of(options, model_store))
    try:
        for name in options.models:
            for staging in Registry(registry).recover(name):
                removed.append(f"federated: removed {staging}, a version of {name} half written when the process stopped")
            for version_dir in unpublished_versions(registry, name, store):
                discard_version(version_dir, model_store)
                removed.append(
                    f"federated: removed version {version_dir.name} of {name}, written but never published "
                    f"when the process stopped; its round closes again"
                )
    finally:
        store.close()
    return removed


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
                        version = model_json.parse(archive.read(model_json.MANIFEST_NAME), f"{mar.name}:model.json")["version"]
                except (OSError, KeyError, ValueError, zipfile.BadZipFile):
                    continue
                served[name][version] = mms_name
    return served


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
    """`edgecloud aggregate`: writes version N+1 into the registry and moves latest.json; the serving
    replicas that watch the registry serve it (the aggregator never talks to them).

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


class ServingPublisher:
    """Writes version N+1, archives it, registers it with MMS beside what is served, moves latest.json."""

    def __init__(self, registry: Path, mms: MmsServer, on_served: Callable[[str, str, str], None] = lambda *a: None) -> None:
        self.registry, self.mms, self.on_served = Path(registry), mms, on_served
        self._lock = threading.Lock()

    def publish(
        self, model: FederatedModel, parameters: dict[str, np.ndarray], provenance: dict[str, Any], held: Callable[[], bool] = lambda: True
    ) -> FederatedModel:
        """`held` is always true here: `serve` runs one aggregator on its own SQLite file."""
        with self._lock:
            version_dir = write_federated_version(self.registry / model.name, model.version, parameters, provenance)
            name = cloud_name(model.name, version_dir.name)
            try:
                mar = build_archive(version_dir, self.mms.config.model_store, name=name)
                self.mms.register(mar.name)  # synchronous: its workers are up when this returns
                update_latest(self.registry / model.name)
            except Exception:
                # Not published: no folder or archive stays behind to be served or numbered over.
                if latest_version(self.registry, model.name) != version_dir.name:
                    discard_version(version_dir, self.mms.config.model_store)
                raise
            self.on_served(model.name, version_dir.name, name)
            return load_model(self.registry, model.name)


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
