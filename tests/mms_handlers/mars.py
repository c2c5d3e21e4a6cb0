"""Hand-made broken and hostile .mar files, derived from a good one built by `edgecloud archive`.

Helpers, not tests: tests/mms_handlers/test_mar_check.py and test_security_mms.py use them.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

EVIL = "../evil.txt"
MAR_MANIFEST = "MAR-INF/MANIFEST.json"


def remade(
    good: Path, target: Path, changes: dict[str, bytes | None] | None = None, extra: list[tuple[zipfile.ZipInfo, bytes]] | None = None
) -> Path:
    """`good`'s entries, with `changes` (name → new bytes, or None to drop) and `extra` entries added.

    Unless `changes` says otherwise, MANIFEST.json names the model after `target`'s stem, as archive does.
    """
    with zipfile.ZipFile(good) as source:
        manifest = json.loads(source.read(MAR_MANIFEST))
    manifest["model"]["modelName"] = target.stem
    changes = {MAR_MANIFEST: json.dumps(manifest).encode(), **(changes or {})}
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for entry in source.infolist():
            if entry.filename in changes:
                if changes[entry.filename] is not None:
                    out.writestr(entry.filename, changes[entry.filename])
            else:
                out.writestr(entry, source.read(entry))
        for info, data in extra or []:
            out.writestr(info, data)
    return target


def entry(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    """A zip entry with exactly this name (zipfile keeps `..` and a leading '/') and Unix mode."""
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def with_hidden_entry(good: Path, target: Path) -> Path:
    """`good` with a local `../evil.txt` entry put in front, which the central directory does not list.

    Python's zipfile reads the directory at the end and sees only `good`'s entries; a reader that walks
    local headers from byte 0 (java.util.zip.ZipInputStream, which MMS unpacks with) meets `../evil.txt` first.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as hidden:
        hidden.writestr(entry(EVIL), b"written outside the model folder\n")
    raw = buffer.getvalue()
    local_part = raw[: raw.index(b"PK\x01\x02")]  # the local header and data, without its directory
    target.write_bytes(local_part + good.read_bytes())
    return target
