"""The one rule for model names on the serving side (MMS, the .mar, the registry's URLs).

A name becomes a file name (NAME.mar), a folder of the registry and part of MMS's URLs, so it
must never carry a path separator, `..` or anything a URL or a shell would reinterpret.
export/pipeline.py keeps the same pattern (export may not import the serving side);
tests/test_model_names.py holds the two equal.
"""

from __future__ import annotations

import re

# fullmatch, not match with `$`: `$` also matches before a trailing newline.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a model name, in one line; None when it can."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return None
    return f"model name {name!r} must start with a letter and use only letters, digits, '_' and '-'"


def is_model_name(name: object) -> bool:
    return name_problem(name) is None


def version_name(name: str, version: int | str) -> str:
    """The MMS name one version of a model is registered under (MMS has no versions: one name, one archive)."""
    return f"{name}-v{version}"


def public_name(registered: str, manifest: dict) -> str:
    """The model's own name for answers: `NAME` when MMS serves it as `version_name(NAME, VERSION)`, else the
    name it was registered under (or model.json's, when none)."""
    name, version = manifest.get("name"), manifest.get("version")
    if isinstance(name, str) and registered == version_name(name, version):
        return name
    return registered or (name if isinstance(name, str) else "")
