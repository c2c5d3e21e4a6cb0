"""REPORT.md, results.json and the PNG plots from one run's rows.

The ratios are the point: this machine is shared and noisy, so absolute figures drift from run
to run, while peers measured side by side in one run keep their proportions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cloud import FLASK, IN_PROCESS, MMS_B1, MMS_B8, PEERS, PING, TORCHSERVE, CloudRow
from .edge import CLOUD, EdgeRow
from .export_figures import ExportRow
from .plots import PLOTS, write_plots

SECTIONS = (
    "Machine and versions",
    "Cloud",
    "Cloud ratios",
    "Edge",
    "Edge vs cloud",
    "Export",
    "TorchServe",
    "Plots",
    "Method",
)


@dataclass
class Results:
    date: str
    command: str
    settings: dict[str, Any]
    machine: dict[str, str]
    versions: dict[str, str]
    cloud: list[CloudRow] = field(default_factory=list)
    edge: list[EdgeRow] = field(default_factory=list)
    export: list[ExportRow] = field(default_factory=list)
    torchserve: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.date, "command": self.command, "settings": self.settings, "machine": self.machine,
            "versions": self.versions, "cloud": [r.as_json() for r in self.cloud],
            "edge": [r.as_json() for r in self.edge], "export": [r.as_json() for r in self.export],
            "torchserve": self.torchserve,
        }  # fmt: skip


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if value == float("inf"):
        return "∞"
    return f"{value:,.{digits}f}"


def _sci(value: float | None) -> str:
    return "–" if value is None else ("∞" if value == float("inf") else f"{value:.1e}")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _find(rows: list[CloudRow], peer: str, model: str, concurrency: int) -> CloudRow | None:
    return next((r for r in rows if r.peer == peer and r.model == model and r.concurrency == concurrency), None)


def cloud_ratios(rows: list[CloudRow]) -> list[dict[str, Any]]:
    """Per model and concurrency: predictions ÷ ping, MMS ÷ Flask (÷ TorchServe) req/s; p50 − in-process p50."""
    ratios = []
    models = list(dict.fromkeys(r.model for r in rows if r.peer != PING))
    for model in models:
        floor = _find(rows, IN_PROCESS, model, 1)
        for concurrency in sorted({r.concurrency for r in rows if r.peer == PING}):
            ping, flask = _find(rows, PING, "-", concurrency), _find(rows, FLASK, model, concurrency)
            b1, b8 = _find(rows, MMS_B1, model, concurrency), _find(rows, MMS_B8, model, concurrency)
            torchserve = _find(rows, TORCHSERVE, model, concurrency)
            if not (ping and flask and b1 and b8 and floor):
                continue
            ratios.append({
                "model": model, "concurrency": concurrency,
                "b1_over_ping": b1.requests_per_s / ping.requests_per_s,
                "b8_over_ping": b8.requests_per_s / ping.requests_per_s,
                "b1_over_flask": b1.requests_per_s / flask.requests_per_s,
                "b8_over_flask": b8.requests_per_s / flask.requests_per_s,
                "b1_over_torchserve": b1.requests_per_s / torchserve.requests_per_s if torchserve else None,
                "b1_p50_minus_floor_ms": b1.p50_ms - floor.p50_ms,
                "flask_p50_minus_floor_ms": flask.p50_ms - floor.p50_ms,
            })  # fmt: skip
    return ratios


def edge_ratios(rows: list[EdgeRow]) -> list[dict[str, Any]]:
    """Edge steady p50 ÷ cloud round-trip p50 (from the same page), per model and runtime."""
    ratios = []
    for cloud in (r for r in rows if r.runtime == CLOUD and r.p50_ms):
        for edge in (r for r in rows if r.model == cloud.model and r.runtime != CLOUD):
            ratio = edge.p50_ms / cloud.p50_ms if edge.p50_ms is not None else None
            ratios.append({"model": cloud.model, "runtime": edge.runtime, "ratio": ratio,
                           "edge_p50_ms": edge.p50_ms, "cloud_p50_ms": cloud.p50_ms})  # fmt: skip
    return ratios


def cloud_markdown(rows: list[CloudRow]) -> str:
    order = {peer: index for index, peer in enumerate(PEERS)}
    ordered = sorted(rows, key=lambda r: (r.model != "-", r.model, r.concurrency, order[r.peer]))
    body = [[r.model, r.peer, str(r.concurrency), _num(r.requests_per_s, 0), _num(r.p50_ms, 3), _num(r.p99_ms, 3),
             str(r.requests), str(r.errors)] for r in ordered]  # fmt: skip
    return _table(["model", "peer", "concurrency", "req/s", "p50 ms", "p99 ms", "requests", "errors"], body)


def cloud_ratio_markdown(rows: list[CloudRow]) -> str:
    body = [[r["model"], str(r["concurrency"]), _num(r["b1_over_ping"]), _num(r["b8_over_ping"]),
             _num(r["b1_over_flask"]), _num(r["b8_over_flask"]), _num(r["b1_over_torchserve"]),
             _num(r["b1_p50_minus_floor_ms"]),
             _num(r["flask_p50_minus_floor_ms"])] for r in cloud_ratios(rows)]  # fmt: skip
    header = ["model", "concurrency", "MMS b1 ÷ ping", "MMS b8 ÷ ping", "MMS b1 ÷ Flask", "MMS b8 ÷ Flask",
              "MMS b1 ÷ TorchServe", "MMS b1 p50 − in-process p50 (ms)",
              "Flask p50 − in-process p50 (ms)"]  # fmt: skip
    return _table(header, body)


def edge_markdown(rows: list[EdgeRow]) -> str:
    body = [[r.model, r.runtime, _num(r.cold_ms, 0), _num(r.warm_ms, 0), _num(r.p50_ms, 3), _num(r.p99_ms, 3),
             str(r.runs), _sci(r.max_abs_diff), (r.error or "").replace("|", "/")] for r in rows]  # fmt: skip
    header = ["model", "runtime", "cold start ms", "warm start ms", "steady p50 ms", "steady p99 ms", "runs",
              "max abs diff vs onnxruntime", "error"]  # fmt: skip
    return _table(header, body)


def edge_ratio_markdown(rows: list[EdgeRow]) -> str:
    body = [[r["model"], r["runtime"], _num(r["edge_p50_ms"], 3), _num(r["cloud_p50_ms"], 3), _num(r["ratio"], 3)]
            for r in edge_ratios(rows)]  # fmt: skip
    return _table(["model", "runtime", "edge p50 ms", "cloud round trip p50 ms", "edge ÷ cloud"], body)


def export_markdown(rows: list[ExportRow]) -> str:
    keys = list(dict.fromkeys(key for r in rows for key in r.parity))
    body = [[r.model, r.kind, _num(r.export_seconds, 1), str(r.opset), f"{r.onnx_bytes:,}",
             f"{r.edge_file} ({r.edge_bytes:,})", *(_sci(r.parity.get(k)) if k in r.parity else "" for k in keys)]
            for r in rows]  # fmt: skip
    header = ["model", "kind", "export s", "opset", "ONNX bytes", "browser file (bytes)",
              *(f"parity: {k}" for k in keys)]  # fmt: skip
    notes = "\n".join(f"- export time of `{r.model}`: {r.export_note}" for r in rows)
    return _table(header, body) + "\n\n" + notes


def markdown(results: Results) -> str:
    settings = results.settings
    parts = [
        "# Benchmark report",
        f"Run on {results.date} with `{results.command}` ({settings['mode']} mode). **This machine is shared and "
        "noisy** (see the load average below): absolute figures drift from run to run, the ratios between peers "
        "measured side by side in this one run are what to read.",
        "## Machine and versions",
        _table(["", ""], [[k, v] for k, v in {**results.machine, **results.versions}.items()]),
        "## Cloud",
        f"wrk, {settings['cloud_seconds']:g} s per point, one-row JSON body (the model's export sample), "
        f"MMS with {settings['mms_workers']} workers per model and onnxruntime at 1 thread per worker; batch 8 waits "
        f"at most {settings['batch8_delay_ms']} ms for a batch. The in-process floor is one thread calling "
        "`session.run` in a loop (no HTTP, no JSON).",
        cloud_markdown(results.cloud),
        "## Cloud ratios",
        "Throughput ratios at equal concurrency; latency differences at the same concurrency against the "
        "in-process p50 (what HTTP, JSON and the server add to the work itself).",
        cloud_ratio_markdown(results.cloud),
        "## Edge",
        f"Headless Chromium, fresh profile per row; cold start = navigation start → first prediction with nothing "
        f"cached (runtime, wasm, model fetched, session created, one run); warm start = the same page loaded "
        f"again in the same profile (HTTP cache warm); steady = up to {settings['edge_max_runs']} runs or "
        f"{settings['edge_seconds']:g} s in the page. `cloud` is a `fetch` from the same page to MMS (CORS).",
        edge_markdown(results.edge),
        "## Edge vs cloud",
        "Steady p50 of each browser runtime ÷ the p50 of a round trip to MMS from the same page.",
        edge_ratio_markdown(results.edge),
        "## Export",
        export_markdown(results.export),
        "## TorchServe",
        results.torchserve,
        "## Plots",
        "\n".join(f"![{name}]({name})" for name in PLOTS),
        "## Method",
        "- Every peer runs on this machine, one after another, with the same body, durations and concurrency; "
        "wrk and the servers share the CPU cores, so the highest concurrencies measure the machine as much as "
        "the server.\n"
        "- `errors` counts non-2xx answers and connect/write/timeout socket errors (read errors are the "
        "connection closes of gunicorn's sync workers, which do not keep connections alive).\n"
        f"- Settings: `{json.dumps(settings)}`. Raw rows: `results.json`.",
    ]
    return "\n\n".join(parts) + "\n"


def write_report(results: Results, out_dir: Path) -> Path:
    """REPORT.md, results.json and the plots into out_dir; returns the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results.as_json(), indent=1) + "\n")
    write_plots(results.cloud, results.edge, out_dir)
    report = out_dir / "REPORT.md"
    report.write_text(markdown(results))
    return report
