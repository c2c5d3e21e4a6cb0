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
