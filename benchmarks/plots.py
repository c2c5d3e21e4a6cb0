"""Four small PNGs (matplotlib, Agg backend: no display needed) for REPORT.md."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from .cloud import IN_PROCESS, PEERS, PING, CloudRow, median_rows  # noqa: E402
from .edge import EdgeRow  # noqa: E402

DPI = 80
PLOTS = ("cloud_throughput.png", "cloud_latency.png", "edge_latency.png", "edge_startup.png")


def _bars(ax, groups: list[str], series: dict[str, list[float]], log: bool = False) -> None:
    width = 0.8 / max(1, len(series))
    for index, (label, values) in enumerate(series.items()):
        positions = [g + index * width for g in range(len(groups))]
        ax.bar(positions, values, width, label=label)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7, framealpha=0.6)
    ax.grid(axis="y", alpha=0.3)


def _cloud(rows: list[CloudRow], out: Path, value: str, title: str, ylabel: str) -> None:
    models = list(dict.fromkeys(r.model for r in rows if r.model != "-"))
    concurrencies = sorted({r.concurrency for r in rows if r.peer == PING})
    figure, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        series = {}
        for peer in PEERS:
            if (peer == IN_PROCESS and value == "requests_per_s") or not any(r.peer == peer for r in rows):
                continue  # in-process: one thread, no HTTP, not comparable with concurrent load
            values = []
            for concurrency in concurrencies:
                match = [
                    r for r in rows if r.peer == peer and r.model in (model, "-") and (r.concurrency == concurrency or peer == IN_PROCESS)
                ]
                values.append(getattr(match[0], value) if match else 0.0)
            series[peer] = values
        _bars(ax, [f"c={c}" for c in concurrencies], series, log=True)
        ax.set_title(f"{title}: {model}", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=DPI)
    plt.close(figure)


def _edge(rows: list[EdgeRow], out: Path, values: tuple[str, ...], title: str) -> None:
    models = list(dict.fromkeys(r.model for r in rows))
    runtimes = list(dict.fromkeys(r.runtime for r in rows))
    figure, axes = plt.subplots(1, len(values), figsize=(5.5 * len(values), 3.6), squeeze=False)
    for ax, value in zip(axes[0], values):
        series = {}
        for runtime in runtimes:
            found = {r.model: getattr(r, value) for r in rows if r.runtime == runtime}
            series[runtime] = [found.get(model) or 0.0 for model in models]
        _bars(ax, models, series, log=True)
        ax.set_title(f"{title}: {value.replace('_ms', '').replace('_', ' ')} (ms; no bar: failed)", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=DPI)
    plt.close(figure)


def write_plots(cloud: list[CloudRow], edge: list[EdgeRow], out_dir: Path) -> list[Path]:
    paths = [out_dir / name for name in PLOTS]
    cloud = median_rows(cloud)  # one bar per point: the median of its rounds
    _cloud(cloud, paths[0], "requests_per_s", "throughput", "requests/s (log)")
    _cloud(cloud, paths[1], "p50_ms", "p50 latency", "ms (log)")
    _edge(edge, paths[2], ("p50_ms", "p99_ms"), "steady")
    _edge(edge, paths[3], ("cold_ms", "warm_ms"), "start to first prediction")
    return paths
