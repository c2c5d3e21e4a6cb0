"""The registry folder: `ROOT/NAME/VERSION/{files…, model.json}` and `ROOT/NAME/latest.json`.

This module is the one owner of that layout. Export, the federated publisher, the web server and
the serving replicas' watcher call a `Registry` and never compute a path themselves, so they agree
on what a version is: a folder named by a whole number that holds a model.json. A version folder
appears whole (written in a hidden staging folder, then renamed in one step) and is immutable;
`latest.json` moves only after the folder is there, by an atomic replace, so a reader (a page, a
replica polling the folder, a CDN) never sees half a version or half a pointer.

Version numbers never repeat: a staging folder reserves its number by its name, and the next
number is one past every numeric folder and every reservation, complete or not. A process killed
mid-write leaves a staging folder that `recover` removes; it never leaves a version folder
without its model.json, because the rename is the last step.

Why not a library: the layout is a handful of renames and one JSON pointer; object stores and
registries (MLflow, KServe's storage initializer) assume their own layouts and servers, while
this one must stay plain static files that any web server or volume can hold.
It uses only the standard library so that every package (the MMS side included) may import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

MANIFEST_NAME = "model.json"
LATEST_NAME = "latest.json"
_STAGING_PREFIX = ".staging-"
_DISCARD_PREFIX = ".discarded-"


class RegistryError(ValueError):
    """A registry folder or version is not what the layout requires; the message is one line naming it."""


def parse_version(version: int | str) -> int:
    """A version is a whole number ≥ 1 (given as int or as its decimal string)."""
    text = str(version)
    if isinstance(version, bool) or not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise RegistryError(f"version {version!r} must be a whole number ≥ 1")
    return int(text)


def file_digest(path: Path) -> dict[str, Any]:
    """SHA-256 and size of one file, as model.json's `files` entries hold them."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "size": path.stat().st_size}


def write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    """Write JSON so readers never see half a file (the registry is served while it changes)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)


@dataclass
class Staging:
    """A version being written: fill `path`, then `Registry.publish(staging)`; an exception inside
    `with` discards it."""

    registry: Registry
    name: str
    version: int
    path: Path

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.registry.discard(self)


class Registry:
    """One registry root; see the module docstring for the layout and its guarantees."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------

    def model_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise RegistryError(f"model name {name!r} is no folder name")
        return self.root / name

    def version_dir(self, name: str, version: int | str) -> Path:
        return self.model_dir(name) / str(parse_version(version))

    def models(self) -> list[str]:
        """Names with at least one complete version."""
        if not self.root.is_dir():
            return []
        return sorted(child.name for child in self.root.iterdir() if child.is_dir() and self.versions(child.name))

    def versions(self, name: str) -> list[int]:
        """Complete versions, ascending: numeric folders that hold a model.json."""
        model_dir = self.model_dir(name)
        if not model_dir.is_dir():
            return []
        return sorted(
            int(child.name)
            for child in model_dir.iterdir()
            if child.name.isascii() and child.name.isdigit() and int(child.name) >= 1 and (child / MANIFEST_NAME).is_file()
        )

    def latest(self, name: str) -> int | None:
        """The version latest.json names, or None when the model has no latest.json."""
        path = self.model_dir(name) / LATEST_NAME
        try:
            pointer = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise RegistryError(f"{path} is not readable JSON: {error}") from None
        if not isinstance(pointer, dict) or "version" not in pointer:
            raise RegistryError(f"{path} names no version")
        return parse_version(pointer["version"])

    def manifest(self, name: str, version: int | str) -> dict[str, Any]:
        """model.json of one version, parsed (not checked against its files: see `check`)."""
        path = self.version_dir(name, version) / MANIFEST_NAME
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise RegistryError(f"version {version} of {name} has no {MANIFEST_NAME} ({path})") from None
        except (OSError, ValueError) as error:
            raise RegistryError(f"{path} is not readable JSON: {error}") from None
        if not isinstance(manifest, dict):
            raise RegistryError(f"{path} is not a JSON object")
        return manifest

    def check(self, name: str, version: int | str) -> dict[str, Any]:
        """The manifest of a version whose every listed file exists with its size and SHA-256."""
        version_dir = self.version_dir(name, version)
        manifest = self.manifest(name, version)
        files = manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise RegistryError(f"{version_dir / MANIFEST_NAME} lists no files")
        for file, entry in files.items():
            path = version_dir / file
            if "/" in file or file.startswith(".") or not path.is_file():
                raise RegistryError(f"{version_dir / MANIFEST_NAME} names {file!r}, which is not in the folder")
            if not isinstance(entry, dict) or "sha256" not in entry:
                raise RegistryError(f"{version_dir / MANIFEST_NAME}: file {file!r} has no sha256")
            found = file_digest(path)
            if found["sha256"] != entry["sha256"] or ("size" in entry and found["size"] != entry["size"]):
                raise RegistryError(f"{path}: SHA-256 {found['sha256'][:12]}… does not match model.json's {str(entry['sha256'])[:12]}…")
        return manifest

    # -- writing ---------------------------------------------------------------------------

    def _reserved(self, name: str) -> list[int]:
        """Every number a folder of the model holds or reserves, complete or not."""
        model_dir = self.model_dir(name)
        if not model_dir.is_dir():
            return []
        numbers = []
        for child in model_dir.iterdir():
            label = child.name.removeprefix(_STAGING_PREFIX).split("-", 1)[0]
            if label.isascii() and label.isdigit():
                numbers.append(int(label))
        return numbers

    def next_version(self, name: str) -> int:
        return max(self._reserved(name), default=0) + 1

    def stage(self, name: str, version: int | str | None = None) -> Staging:
        """A hidden folder for a new version: the next free number, or `version` when given (export's
        `--version`; publishing over an existing version then needs `replace=True`)."""
        model_dir = self.model_dir(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        while True:
            number = self.next_version(name) if version is None else parse_version(version)
            path = model_dir / f"{_STAGING_PREFIX}{number}"
            try:
                path.mkdir()  # the reservation: atomic, so two writers never stage the same number
            except FileExistsError:
                if version is not None:
                    raise RegistryError(
                        f"version {number} of {name} is being written by another process (if none runs, remove {path})"
                    ) from None
                continue
            if version is None and (model_dir / str(number)).exists():  # published while we looked
                path.rmdir()
                continue
            return Staging(self, name, number, path)

    def publish(self, staging: Staging, *, make_latest: bool = True, replace: bool = False) -> int:
        """Rename the staged folder into NAME/VERSION in one step, then (by default) point latest.json at
        the newest complete version. The staged folder must hold a model.json whose files check."""
        if not (staging.path / MANIFEST_NAME).is_file():
            self.discard(staging)
            raise RegistryError(f"version {staging.version} of {staging.name}: the staged folder has no {MANIFEST_NAME}")
        target = self.version_dir(staging.name, staging.version)
        if target.exists():
            if not replace:
                self.discard(staging)
                raise RegistryError(f"{target} already exists: versions are immutable")
            self._remove(target)
        staging.path.rename(target)
        if make_latest:
            self.set_latest(staging.name, self.versions(staging.name)[-1], check=False)
        return staging.version

    def set_latest(self, name: str, version: int | str, *, check: bool = True) -> None:
        """Point latest.json at `version` (roll forward or back); it must be complete and hash-true."""
        number = parse_version(version)
        manifest = self.check(name, number) if check else self.manifest(name, number)
        write_json_atomic(
            self.model_dir(name) / LATEST_NAME,
            {
                "name": manifest.get("name", name),
                "version": str(number),
                "manifest": f"{number}/{MANIFEST_NAME}",
                "versions": [str(v) for v in self.versions(name)],
            },
        )

    def discard(self, staging: Staging) -> None:
        self._remove(staging.path)

    def recover(self, name: str) -> list[Path]:
        """Remove half-written folders a killed writer left (staging, or a discard cut short); returns them."""
        model_dir = self.model_dir(name)
        if not model_dir.is_dir():
            return []
        leftovers = sorted(
            child for child in model_dir.iterdir() if child.is_dir() and child.name.startswith((_STAGING_PREFIX, _DISCARD_PREFIX))
        )
        for child in leftovers:
            shutil.rmtree(child, ignore_errors=True)
        return leftovers

    def remove_version(self, name: str, version: int | str) -> None:
        """Remove one version that latest.json does not name (an unpublished round's output)."""
        number = parse_version(version)
        if self.latest(name) == number:
            raise RegistryError(f"version {number} of {name} is what latest.json names; move latest first")
        self._remove(self.version_dir(name, number))

    def retire(self, name: str, keep: int) -> list[int]:
        """Delete all but the newest `keep` complete versions, never the one latest.json names."""
        if keep < 1:
            raise RegistryError(f"keep must be at least 1, not {keep}")
        latest = self.latest(name)
        doomed = [v for v in self.versions(name)[:-keep] if v != latest]
        for version in doomed:
            self._remove(self.version_dir(name, version))
        return doomed

    def _remove(self, path: Path) -> None:
        """Rename away first (one step, so readers see the folder whole or not at all), then delete."""
        if not path.exists():
            return
        doomed = path.with_name(f"{_DISCARD_PREFIX}{path.name}-{os.getpid()}")
        shutil.rmtree(doomed, ignore_errors=True)
        path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
