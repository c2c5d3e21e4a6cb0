"""Read-only stand-in for the `registry` package's `Registry` (the lead's leaf package, due on main).

Implements only what the version watcher reads (`models`, `versions`, `latest`, `check`,
`version_dir`) and `set_latest` (`edgecloud versions --serve`), with the same names, results and
`RegistryError(ValueError)`, so switching to
`from registry import Registry, RegistryError` is one import once that package lands; this file
then goes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "model.json"
LATEST = "latest.json"


class RegistryError(ValueError):
    """A registry file is missing or wrong; the message names it in one line."""


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def models(self) -> list[str]:
        return sorted(child.name for child in self.root.iterdir() if child.is_dir() and not child.name.startswith("."))

    def model_dir(self, name: str) -> Path:
        return self.root / name

    def version_dir(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def versions(self, name: str) -> list[int]:
        folder = self.model_dir(name)
        return sorted(int(c.name) for c in folder.iterdir() if c.name.isdigit() and (c / MANIFEST).is_file())

    def latest(self, name: str) -> int | None:
        path = self.model_dir(name) / LATEST
        if not path.is_file():
            return None
        try:
            version = json.loads(path.read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RegistryError(f"{path}: not a latest.json naming a version ({error})") from None
        if not str(version).isdigit():
            raise RegistryError(f"{path} names version {version!r}: a version is a number")
        return int(version)

    def check(self, name: str, version: int) -> dict[str, Any]:
        folder = self.version_dir(name, version)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            files = manifest["files"].items()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise RegistryError(f"{folder}: no readable {MANIFEST} listing its files ({error})") from None
        for file, entry in files:
            path = folder / file
            if not path.is_file():
                raise RegistryError(f"{folder}: {MANIFEST} names {file}, which is missing")
            if path.stat().st_size != entry.get("size") or hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
                raise RegistryError(f"{folder}: {file} does not match the size and SHA-256 in {MANIFEST}")
        return manifest

    def set_latest(self, name: str, version: int) -> None:
        """Point latest.json at `version` (roll back or forward) once it checks; written atomically."""
        self.check(name, version)
        path = self.model_dir(name) / LATEST
        partial = path.with_name(f".{LATEST}.partial")
        partial.write_text(json.dumps({"name": name, "version": str(version), "manifest": f"{version}/{MANIFEST}",
                                       "versions": [str(v) for v in self.versions(name)]}))  # fmt: skip
        os.replace(partial, path)
