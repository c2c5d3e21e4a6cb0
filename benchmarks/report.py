"""REPORT.md, results.json and the PNG plots from one run's rows.

The ratios are the point: this machine is shared and noisy, so absolute figures drift from run
to run, while peers measured side by side in one round keep their proportions. Each ratio is
taken within each round and reported as the median and spread of the rounds (`rounds.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cloud import FLASK, IN_PROCESS, MMS_B1, MMS_B8, MMS_B8_WAIT, PEERS, PING, TORCHSERVE, CloudRow, median_rows
from .edge import CLOUD, EdgeRow
from .export_figures import ExportRow
from .plots import PLOTS, write_plots
from .rounds import Spread

SECTIONS = (
    "Machine and versions",
    "Cloud",
    "Cloud ratios",
    "Cloud rounds",
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
            "date": self.date,
            "command": self.command,
            "settings": self.settings,
            "machine": self.machine,
            "versions": self.versions,
            "cloud": [r.as_json() for r in self.cloud],
            "cloud_ratios": [
                {key: value.as_json() if isinstance(value, Spread) else value for key, value in r.items()} for r in cloud_ratios(self.cloud)
            ],
            "edge": [r.as_json() for r in self.edge],
            "export": [r.as_json() for r in self.export],
            "torchserve": self.torchserve,
        }


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


# Ratio name → (numerator peer, denominator peer); the denominator "-" row is /ping's.
THROUGHPUT_RATIOS = {
    "b1_over_flask": (MMS_B1, FLASK),
    "b8_over_flask": (MMS_B8, FLASK),
    "b8_over_b1": (MMS_B8, MMS_B1),
    "b8_wait_over_b1": (MMS_B8_WAIT, MMS_B1),
    "b1_over_torchserve": (MMS_B1, TORCHSERVE),
    "b1_over_ping": (MMS_B1, PING),
}
# Latency differences (ms) against the in-process floor of the same round.
LATENCY_DIFFERENCES = {"b1_p50_minus_floor_ms": MMS_B1, "flask_p50_minus_floor_ms": FLASK}


def _by_round(rows: list[CloudRow]) -> dict[tuple[str, str, int, int], CloudRow]:
    return {(r.peer, r.model, r.concurrency, r.round): r for r in rows}


def cloud_ratios(rows: list[CloudRow]) -> list[dict[str, Any]]:
    """Per model and concurrency, each ratio of THROUGHPUT_RATIOS and LATENCY_DIFFERENCES as a Spread over rounds.

    A ratio is computed inside each round (both points measured seconds apart), never across rounds;
    a ratio whose peer was not measured is None.
    """
    found = _by_round(rows)
    rounds = sorted({r.round for r in rows})
    models = list(dict.fromkeys(r.model for r in rows if r.peer not in (PING, IN_PROCESS)))
    concurrencies = sorted({r.concurrency for r in rows if r.peer == MMS_B1})
    summaries = []
    for model in models:
        for concurrency in concurrencies:
            summary: dict[str, Any] = {"model": model, "concurrency": concurrency}
            for name, (top, bottom) in THROUGHPUT_RATIOS.items():
                values = []
                for number in rounds:
                    a = found.get((top, model, concurrency, number))
                    b = found.get((bottom, "-" if bottom == PING else model, concurrency, number))
                    if a and b and b.requests_per_s > 0:
                        values.append(a.requests_per_s / b.requests_per_s)
                summary[name] = Spread.of(values)
            for name, peer in LATENCY_DIFFERENCES.items():
                values = []
                for number in rounds:
                    a, floor = found.get((peer, model, concurrency, number)), found.get((IN_PROCESS, model, 1, number))
                    if a and floor:
                        values.append(a.p50_ms - floor.p50_ms)
                summary[name] = Spread.of(values)
            summaries.append(summary)
    return summaries


def round_loads(rows: list[CloudRow]) -> list[dict[str, Any]]:
    """Per round: how many points, and the 1-minute load average over its points (mean, lowest, highest)."""
    loads = []
    for number in sorted({r.round for r in rows}):
        values = [r.load_1min for r in rows if r.round == number]
        loads.append({"round": number, "points": len(values), "load": Spread.of(values), "load_mean": sum(values) / len(values)})
    return loads


def edge_ratios(rows: list[EdgeRow]) -> list[dict[str, Any]]:
    """Edge steady p50 ÷ cloud round-trip p50 (from the same page), per model and runtime."""
    ratios = []
    for cloud in (r for r in rows if r.runtime == CLOUD and r.p50_ms):
        for edge in (r for r in rows if r.model == cloud.model and r.runtime != CLOUD):
            ratio = edge.p50_ms / cloud.p50_ms if edge.p50_ms is not None else None
            ratios.append(
                {"model": cloud.model, "runtime": edge.runtime, "ratio": ratio, "edge_p50_ms": edge.p50_ms, "cloud_p50_ms": cloud.p50_ms}
            )
    return ratios


def cloud_markdown(rows: list[CloudRow]) -> str:
    """Medians over the rounds (each figure's spread is in the ratio table and results.json)."""
    order = {peer: index for index, peer in enumerate(PEERS)}
    ordered = sorted(median_rows(rows), key=lambda r: (r.model != "-", r.model, r.concurrency, order[r.peer]))
    body = [
        [
            r.model,
            r.peer,
            str(r.concurrency),
            _num(r.requests_per_s, 0),
            _num(r.p50_ms, 3),
            _num(r.p99_ms, 3),
            str(r.requests),
            str(r.errors),
        ]
        for r in ordered
    ]
    return _table(
        ["model", "peer", "concurrency", "median req/s", "median p50 ms", "median p99 ms", "requests (all rounds)", "errors"], body
    )


def _ratio(spread: Spread | None) -> str:
    return "–" if spread is None else spread.ratio_text()


def _difference(spread: Spread | None) -> str:
    return "–" if spread is None else spread.value_text(3)


def cloud_ratio_markdown(rows: list[CloudRow]) -> str:
    body = [
        [
            r["model"],
            str(r["concurrency"]),
            *(_ratio(r[name]) for name in THROUGHPUT_RATIOS),
            *(_difference(r[name]) for name in LATENCY_DIFFERENCES),
        ]
        for r in cloud_ratios(rows)
    ]
    b8, b8_wait = (peer.replace("MMS batch 8 (", "MMS b8 (").replace(" delay)", ")") for peer in (MMS_B8, MMS_B8_WAIT))
    header = [
        "model",
        "concurrency",
        "MMS b1 ÷ Flask",
        f"{b8} ÷ Flask",
        f"{b8} ÷ MMS b1",
        f"{b8_wait} ÷ MMS b1",
        "MMS b1 ÷ TorchServe",
        "MMS b1 ÷ ping",
        "MMS b1 p50 − in-process p50 (ms)",
        "Flask p50 − in-process p50 (ms)",
    ]
    return _table(header, body)


def round_markdown(rows: list[CloudRow]) -> str:
    body = [
        [str(r["round"]), str(r["points"]), f"{r['load_mean']:.2f}", f"{r['load'].low:.2f}–{r['load'].high:.2f}" if r["load"] else "–"]
        for r in round_loads(rows)
    ]
    return _table(["round", "points", "1-min load average (mean of its points)", "lowest–highest"], body)


def edge_markdown(rows: list[EdgeRow]) -> str:
    body = [
        [
            r.model,
            r.runtime,
            _num(r.cold_ms, 0),
            _num(r.warm_ms, 0),
            _num(r.p50_ms, 3),
            _num(r.p99_ms, 3),
            str(r.runs),
            _sci(r.max_abs_diff),
            (r.error or "").replace("|", "/"),
        ]
        for r in rows
    ]
    header = [
        "model",
        "runtime",
        "cold start ms",
        "warm start ms",
        "steady p50 ms",
        "steady p99 ms",
        "runs",
        "max abs diff vs onnxruntime",
        "error",
    ]
    return _table(header, body)


def edge_ratio_markdown(rows: list[EdgeRow]) -> str:
    body = [
        [r["model"], r["runtime"], _num(r["edge_p50_ms"], 3), _num(r["cloud_p50_ms"], 3), _num(r["ratio"], 3)] for r in edge_ratios(rows)
    ]
    return _table(["model", "runtime", "edge p50 ms", "cloud round trip p50 ms", "edge ÷ cloud"], body)


def export_markdown(rows: list[ExportRow]) -> str:
    keys = list(dict.fromkeys(key for r in rows for key in r.parity))
    body = [
        [
            r.model,
            r.kind,
            _num(r.export_seconds, 1),
            str(r.opset),
            f"{r.onnx_bytes:,}",
            f"{r.edge_file} ({r.edge_bytes:,})",
            *(_sci(r.parity.get(k)) if k in r.parity else "" for k in keys),
        ]
        for r in rows
    ]
    header = ["model", "kind", "export s", "opset", "ONNX bytes", "browser file (bytes)", *(f"parity: {k}" for k in keys)]
    notes = "\n".join(f"- export time of `{r.model}`: {r.export_note}" for r in rows)
    return _table(header, body) + "\n\n" + notes


def cloud_sections(rows: list[CloudRow], settings: dict[str, Any]) -> list[str]:
    """The "Cloud", "Cloud ratios" and "Cloud rounds" sections (also the whole of `benchmarks.cloud_rounds`)."""
    return [
        "## Cloud",
        f"wrk, {settings['cloud_seconds']:g} s per point, {settings['rounds']} interleaved rounds (every peer once per "
        "round and point, in an order rotated from round to round), one-row JSON body (the model's export sample), "
        f"MMS with {settings['mms_workers']} workers per model and onnxruntime at 1 thread per worker; "
        f"`{MMS_B8}` batches only what is already queued (the default delay), `{MMS_B8_WAIT}` waits up to "
        f"{settings['batch8_wait_ms']} ms to fill a batch. The in-process floor is one thread calling `session.run` "
        "in a loop (no HTTP, no JSON). Figures are the medians of the rounds.",
        cloud_markdown(rows),
        "## Cloud ratios",
        "Throughput ratios at equal concurrency and latency differences against the in-process p50 (what HTTP, "
        "JSON and the server add to the work itself), each taken within a round: the median of the rounds, then "
        "the lowest–highest round in brackets. A ratio whose rounds lie on both sides of 1.0 says **no "
        "difference**.",
        cloud_ratio_markdown(rows),
        "## Cloud rounds",
        "What else ran on the machine while each round did (the load average counts this benchmark's own wrk "
        "and servers too: about 2–3 on this 2-core machine when nothing else runs).",
        round_markdown(rows),
    ]


def markdown(results: Results) -> str:
    settings = results.settings
    parts = [
        "# Benchmark report",
        f"Run on {results.date} with `{results.command}` ({settings['mode']} mode). **This machine is shared and "
        "noisy** (see the load average below): absolute figures drift from run to run, the ratios between peers "
        "measured side by side in this one run are what to read.",
        "## Machine and versions",
        _table(["", ""], [[k, v] for k, v in {**results.machine, **results.versions}.items()]),
        *cloud_sections(results.cloud, settings),
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
