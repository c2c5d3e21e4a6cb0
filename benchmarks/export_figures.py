"""Export figures per model: export time, ONNX size, browser (lowered) file size, parity per runtime.

Sizes and export-time parity come from model.json (what `edgecloud export` recorded); browser
parity comes from this run's edge benchmark (first prediction vs onnxruntime in Python).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .edge import EdgeRow
from .models import BenchModel


@dataclass
class ExportRow:
    model: str
    kind: str
    export_seconds: float
    export_note: str
    opset: int | None
    onnx_bytes: int
    edge_file: str
    edge_bytes: int
    # runtime → max |diff| (None: the runtime failed on this model; the edge table says why)
    parity: dict[str, float | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _size(manifest: dict[str, Any], model: BenchModel, file: str) -> int:
    entry = manifest.get("files", {}).get(file)
    return int(entry["size"]) if entry else (model.version_dir / file).stat().st_size


def export_figures(models: list[BenchModel], edge_rows: list[EdgeRow]) -> list[ExportRow]:
    rows = []
    for model in models:
        manifest = model.manifest
        cloud_file = manifest.get("cloud", {}).get("file", "model.onnx")
        edge_file = manifest.get("edge", {}).get("file", cloud_file)
        parity: dict[str, float | None] = {
            key.replace("_", " "): float(entry["max_abs_diff"])
            for key, entry in manifest.get("parity", {}).items()
            if isinstance(entry, dict) and "max_abs_diff" in entry
        }
        for edge in edge_rows:
            if edge.model == model.name:
                parity[f"{edge.runtime} vs onnxruntime"] = None if edge.error else edge.max_abs_diff
        rows.append(
            ExportRow(
                model.name,
                model.kind,
                model.export_seconds,
                model.export_note,
                manifest.get("opset"),
                _size(manifest, model, cloud_file),
                edge_file,
                _size(manifest, model, edge_file),
                parity,
            )
        )
    return rows
