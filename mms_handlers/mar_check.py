"""Refuse a .mar that MMS should not unpack, before it is registered.

MMS 1.1.11 unpacks a .mar with java.util.zip.ZipInputStream into `new File(dest, entryName)`
with no path check (zip-slip: `../x` lands outside the model folder), reading entries from their
local headers in file order, while Python's zipfile reads the central directory at the end. So
this walk checks what Java will see: every byte up to the central directory belongs to an entry
the directory lists, with the same name, a whole compressed stream and the right CRC. Then the
names (no absolute path, no `..`, no symlink, no code MMS would put on the worker's PYTHONPATH)
and the contents our handler needs (MAR-INF/MANIFEST.json naming it, model.json, the ONNX file).
"""

from __future__ import annotations

import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from .names import name_problem
from .service import HANDLER, MANIFEST_FILE

MAR_MANIFEST = "MAR-INF/MANIFEST.json"
CODE_SUFFIXES = (".py", ".pyc", ".pyd", ".so", ".pth")
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_HAS_DESCRIPTOR = 0x08
_ENCRYPTED = 0x01
_CHUNK = 1 << 20


class MarError(ValueError):
    """The .mar is broken or unsafe; the message names the entry and the problem in one line."""


def check_mar(path: Path) -> dict[str, Any]:
    """Raise MarError unless the .mar at `path` is whole and safe to unpack; returns its MANIFEST.json."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            names = [_checked_name(entry) for entry in entries]
            if len(set(names)) != len(names):
                raise MarError("an entry name appears twice")
            _check_layout(Path(path), entries, archive.start_dir)
            manifest = _json_entry(archive, names, MAR_MANIFEST)
            _check_contents(archive, names, manifest)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
        raise MarError(f"not a readable zip archive ({error or type(error).__name__})") from None
    return manifest


def _checked_name(entry: zipfile.ZipInfo) -> str:
    name = entry.orig_filename
    if not name or not (name.isascii() and name.isprintable()) or "\\" in name:
        raise MarError(f"entry {name!r} has a name that is not plain printable ASCII")
    if name.startswith("/"):
        raise MarError(f"entry {name!r} is an absolute path")
    if ".." in name.split("/"):
        raise MarError(f"entry {name!r} escapes the model folder ('..')")
    kind = stat.S_IFMT(entry.external_attr >> 16)
    if stat.S_ISLNK(kind):
        raise MarError(f"entry {name!r} is a symbolic link")
    if kind and not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
        raise MarError(f"entry {name!r} is not a regular file or folder")
    if name.endswith(CODE_SUFFIXES):
        raise MarError(f"entry {name!r} is Python code, which MMS would put on the worker's import path")
    if entry.flag_bits & _ENCRYPTED or entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise MarError(f"entry {name!r} is encrypted or compressed in a way MMS cannot read")
    return name


def _check_layout(path: Path, entries: list[zipfile.ZipInfo], directory_start: int) -> None:
    """Entries tile the file from byte 0 to the central directory, as a sequential reader sees them."""
    position = 0
    with open(path, "rb") as handle:
        for entry in sorted(entries, key=lambda item: item.header_offset):
            if entry.header_offset != position:
                raise MarError(f"bytes at offset {position} belong to no listed entry")
            handle.seek(position)
            header = handle.read(_LOCAL_HEADER.size)
            if len(header) != _LOCAL_HEADER.size:
                raise MarError(f"entry {entry.orig_filename!r} is cut short")
            signature, _, flags, method, _, _, crc, packed, size, name_length, extra_length = _LOCAL_HEADER.unpack(header)
            local = (signature, handle.read(name_length), method)
            listed = (_LOCAL_SIGNATURE, entry.orig_filename.encode("ascii"), entry.compress_type)
            # With a data descriptor (or zip64) the local header's sizes are placeholders.
            if not flags & _HAS_DESCRIPTOR and 0xFFFFFFFF not in (packed, size):
                local, listed = (*local, crc, packed, size), (*listed, entry.CRC, entry.compress_size, entry.file_size)
            if local != listed:
                raise MarError(f"entry {entry.orig_filename!r} has a local header that differs from the directory")
            handle.seek(extra_length, 1)
            _check_data(handle, entry)
            data_end = handle.tell()
            position = data_end + (_descriptor_length(handle, entry) if flags & _HAS_DESCRIPTOR else 0)
    if position != directory_start:
        raise MarError(f"bytes at offset {position} belong to no listed entry")


def _check_data(handle: IO[bytes], entry: zipfile.ZipInfo) -> None:
    """The entry's data is exactly one whole stream of the listed sizes with the listed CRC."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if entry.compress_type == zipfile.ZIP_DEFLATED else None
    left, produced, crc = entry.compress_size, 0, 0
    while left:
        chunk = handle.read(min(left, _CHUNK))
        if not chunk:
            raise MarError(f"entry {entry.orig_filename!r} is cut short")
        left -= len(chunk)
        while chunk:
            data = inflater.decompress(chunk, _CHUNK) if inflater else chunk
            chunk = inflater.unconsumed_tail if inflater else b""
            produced, crc = produced + len(data), zlib.crc32(data, crc)
            if produced > entry.file_size:
                raise MarError(f"entry {entry.orig_filename!r} holds more data than listed")
    if inflater and (not inflater.eof or inflater.unused_data):
        raise MarError(f"entry {entry.orig_filename!r} is not one whole compressed stream")
    if produced != entry.file_size or crc != entry.CRC:
        raise MarError(f"entry {entry.orig_filename!r} is corrupt (size or CRC differs)")


def _descriptor_length(handle: IO[bytes], entry: zipfile.ZipInfo) -> int:
    """Length of the data descriptor after an entry's data (optional signature, CRC, two sizes)."""
    sizes = 16 if max(entry.compress_size, entry.file_size) >= 0xFFFFFFFF else 8
    return 4 + sizes + (4 if handle.read(4) == _DESCRIPTOR_SIGNATURE else 0)


def _json_entry(archive: zipfile.ZipFile, names: list[str], name: str) -> Any:
    if name not in names:
        raise MarError(f"has no {name}")
    try:
        return json.loads(archive.read(name))
    except ValueError as error:
        raise MarError(f"{name} is not valid JSON ({error})") from None


def _check_contents(archive: zipfile.ZipFile, names: list[str], manifest: Any) -> None:
    """MANIFEST.json names our handler and a valid model name; model.json names an ONNX file that is there."""
    model = manifest.get("model") if isinstance(manifest, dict) else None
    handler = model.get("handler") if isinstance(model, dict) else None
    if not handler:
        raise MarError(f"{MAR_MANIFEST} names no handler")
    if handler != HANDLER:
        raise MarError(f"{MAR_MANIFEST} names handler {handler!r}, not {HANDLER}: MMS would run code the archive chose")
    problem = name_problem(model.get("modelName"))
    if problem:
        raise MarError(f"{MAR_MANIFEST}: {problem}")
    described = _json_entry(archive, names, MANIFEST_FILE)
    try:
        cloud_file = described["cloud"]["file"]
    except (KeyError, TypeError):
        raise MarError(f"{MANIFEST_FILE} names no cloud ONNX file") from None
    if not isinstance(cloud_file, str) or cloud_file not in names:
        raise MarError(f"{MANIFEST_FILE} names {cloud_file!r}, which the archive does not hold")
