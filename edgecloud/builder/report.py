"""The build report: report.json for machines, report.md for people; same content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .search import format_hyperparameters

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _mae(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def render_markdown(report: dict[str, Any]) -> str:
    data, best, baselines = report["data"], report["best"], report["baselines"]
    spec = data["spec"]
    lines = [
        f"# Build report: {report['template']['name']}",
        "",
        f"Template `{report['template']['name']}` ({report['template']['origin']}), "
        f"{report['settings']['search']['tuner']} search, {len(report['trials'])} trial(s) of "
        f"{report['settings']['search']['epochs']} epoch(s), stopped by {report['stopped_by']} "
        f"after {report['seconds']:.1f} s.",
        "",
        "## Data",
        "",
        f"{data['generator']}: {len(data['train_people'])} training and {len(data['validation_people'])} "
        f"validation people (split by person), {spec['seconds_per_person']} s each at {spec['sampling_rate']} Hz. "
        f"Input {spec['window']} samples ({spec['window_seconds']} s), forecast {spec['horizon']} samples "
        f"({spec['horizon_seconds']} s). {data['train_windows']} training and {data['validation_windows']} "
        f"validation windows. The saved model takes the raw signal (mV): it normalises with mean "
        f"{data['normalisation']['mean']:.4f} and std {data['normalisation']['std']:.4f} inside.",
        "",
        "## Result (validation MAE, mV)",
        "",
        "| forecaster | val MAE |",
        "|---|---|",
        f"| best model (trial {best['trial']}) | {_mae(best['val_mae'])} |",
        f"| baseline: last value | {_mae(baselines['last_value']['val_mae'])} |",
        f"| baseline: repeat previous beat | {_mae(baselines['repeat_previous_beat']['val_mae'])} |",
        "",
        f"**{report['verdict']}**",
        "",
        "## Trials",
        "",
        "| trial | hyperparameters | val MAE | seconds | status |",
        "|---|---|---|---|---|",
    ]
    for trial in report["trials"]:
        status = trial["status"] if not trial.get("error") else f"{trial['status']}: {trial['error']}"
        lines.append(
            f"| {trial['number']} | {format_hyperparameters(trial['hyperparameters'])} | {_mae(trial['val_mae'])} "
            f"| {trial['seconds']:.1f} | {status} |"
        )
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    json_path, md_path = Path(out_dir) / REPORT_JSON, Path(out_dir) / REPORT_MD
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path


def read_report(out_dir: Path) -> dict[str, Any] | None:
    """The report of an earlier build in out_dir, or None if there is none readable."""
    try:
        return json.loads((Path(out_dir) / REPORT_JSON).read_text())
    except (OSError, ValueError):
        return None
