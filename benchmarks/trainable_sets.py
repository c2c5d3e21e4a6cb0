"""Which layers should the page train? `head` vs `last:2` vs `all` on the demo forecaster (issue 28).

Part of `python -m benchmarks.personalisation` (so of `make bench`). The demo build's Keras model
is exported once per trainable set (`edgecloud export --trainable SET`, each its own model name in
one registry), then, per set:

- memory: tensors and values trained, their bytes, the optimizer state's bytes (Adam's m and v)
  and the size of `train.onnx`, read from model.json and the folder;
- Python: the exporter's onnxruntime runner on each validation person's first part at a few
  learning rates, MAE on the later part (`personalise_people`);
- Chromium: `handler.personalize` on each validation person's first part, onnxruntime-web only (the
  runtime the trainer picks for `last:2`/`all`, whose steps ONNX.js cannot run, so `head` is held
  to it too), on a fresh page: wall time and the page's worst timer lateness, then the page's own
  forecasts of the later part (`handler.predict`, local-only). The browser's parameters are also
  written into `model.onnx` *by initializer name* (the federated contract, not the byte ranges
  the page uses) and evaluated with onnxruntime, so the two MAEs check each other. The step
  graph's time per step on onnxruntime-web (wasm) comes from the harness page, as `edgecloud
  verify` times it.

The sets are interleaved within a round, in a rotated order, and rounds repeat (the machine is
shared and noisy): figures are medians with lowest-highest.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

SETS = ("head", "last:2", "all")


def set_model_name(base: str, spec: str) -> str:
    """A registry name per trainable set: `forecaster-head`, `forecaster-last2`, `forecaster-all`."""
    return f"{base}-{spec.replace(':', '')}"


def export_sets(
    build_dir: Path, registry: Path, base: str, sets: tuple[str, ...], progress: Callable[[str], None] = lambda line: None
) -> dict[str, Path]:
    """{set: version folder}: the build's model exported with `--trainable SET` and verified in
    Chromium as `edgecloud demo` does (so model.json ranks the runtimes for the page, the cloud file
    on onnxruntime-web among them); an export is reused while its model.json is newer than the
    model file and names that set, a verification while model.json holds its ranking."""
    from edgecloud.builder.build import MODEL_FILE, SAMPLE_FILE
    from edgecloud.commands.demo import verify_in_browser
    from export.pipeline import export_model

    source, sample = Path(build_dir) / MODEL_FILE, Path(build_dir) / SAMPLE_FILE
    folders = {}
    for spec in sets:
        version_dir = Path(registry) / set_model_name(base, spec) / "1"
        manifest = version_dir / "model.json"
        fresh = manifest.is_file() and manifest.stat().st_mtime >= source.stat().st_mtime
        if not (fresh and json.loads(manifest.read_text()).get("training", {}).get("trainable") == spec):
            progress(f"exporting the demo model with --trainable {spec}")
            start = time.perf_counter()
            export_model(
                source, name=set_model_name(base, spec), version="1", out=Path(registry), sample=sample, trainable=spec, force=True
            )
            progress(f"exported --trainable {spec} in {time.perf_counter() - start:.0f} s (load average {os.getloadavg()[0]:.1f})")
        if "ranking" not in json.loads(manifest.read_text())["edge"]:
            verify_in_browser(version_dir)
        folders[spec] = version_dir
    return folders


def step_memory(version_dir: Path) -> dict[str, int]:
    """What one step holds besides the data: trained tensors and values, their bytes (float32),
    the optimizer state's bytes and train.onnx's size on disk."""
    training = json.loads((Path(version_dir) / "model.json").read_text())["training"]
    count = lambda shape: int(np.prod(shape, dtype=np.int64))  # noqa: E731 - a scalar of an empty shape is 1
    values = sum(count(p["shape"]) for p in training["parameters"])
    return {
        "tensors": len(training["parameters"]),
        "parameters": values,
        "parameter_bytes": 4 * values,
        "state_bytes": 4 * sum(count(s["shape"]) for s in training["state"]),
        "train_onnx_bytes": (Path(version_dir) / training["file"]).stat().st_size,
    }


def with_parameters(model_file: Path, parameters: Mapping[str, np.ndarray]) -> bytes:
    """`model_file` with the named initializers replaced (by name, as a federated version is made);
    a name the file lacks is an error, never skipped."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_file))
    found = {init.name: init for init in model.graph.initializer}
    missing = sorted(set(parameters) - found.keys())
    if missing:
        raise ValueError(f"{Path(model_file).name} has no initializer named {missing[0]!r}")
    for name, value in parameters.items():
        found[name].CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32).reshape(found[name].dims), name))
    return model.SerializeToString()


def spread(values: list[float]) -> dict[str, float] | None:
    """Median with lowest and highest (None when nothing was measured)."""
    return {"median": statistics.median(values), "low": min(values), "high": max(values)} if values else None


def python_sets(
    folders: Mapping[str, Path], report: dict[str, Any], first_seconds: float, epochs: int, rates: tuple[float, ...]
) -> list[dict[str, Any]]:
    """One row per (set, learning rate): each validation person's MAE before and after (Python runner)."""
    from dataclasses import asdict

    from .personalisation import personalise_people, summary

    rows = []
    for spec, version_dir in folders.items():
        for rate in rates:
            people = personalise_people(version_dir, report, first_seconds, epochs, rate)
            rows.append({"set": spec, "learning_rate": rate, "summary": summary(people), "people": [asdict(p) for p in people]})
    return rows


def browser_sets(
    folders: Mapping[str, Path],
    report: dict[str, Any],
    *,
    first_seconds: float,
    epochs: int,
    learning_rate: float,
    rounds: int,
    seed: int,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """`rounds` rounds; in each, every set (in a rotated order) has its step timed and every
    validation person personalised once in Chromium. Returns the runs and per-set spreads."""
    from edgecloud.builder.data import DataSpec, Person, ecg_signal, personal_parts

    from .personalisation import forecast_mae
    from .personalisation_browser import ORTWEB_ONLY, BrowserPages, flat_data

    spec = DataSpec(**report["settings"]["data"])
    people = []
    for fields in report["data"]["validation_people"]:
        person = Person(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        people.append((person.id, personal_parts(ecg_signal(person, spec), spec, first_seconds)))
    registry = next(iter(folders.values())).parent.parent
    options = {"epochs": epochs, "learningRate": learning_rate, "shuffle": True, "seed": seed}
    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    order = list(folders)
    with BrowserPages(registry) as pages:
        for round_ in range(rounds):
            rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
            for trainable in rotated:
                version_dir = folders[trainable]
                manifest = json.loads((version_dir / "model.json").read_text())
                name, output = manifest["inputs"][0]["name"], manifest["outputs"][0]["name"]
                timed = pages.step_times(version_dir, targets=[("onnxruntime-web", "wasm")])[0]
                steps.append({"round": round_, "set": trainable, **timed})
                for person, parts in people:
                    progress(f"round {round_ + 1}/{rounds}: {trainable}, person {person}")
                    data = flat_data(name, output, parts.x_first, parts.y_first)
                    later = flat_data(name, output, parts.x_later, parts.y_later)["inputs"]
                    run = pages.personalise(manifest["name"], data, options, ORTWEB_ONLY, predict=later, output=output)
                    run.update(round=round_, set=trainable, person=person)
                    parameters = run.pop("parameters", None)
                    forecast = run.pop("forecast", None)
                    if parameters:
                        arrays = {k: np.asarray(v["data"], np.float32).reshape(v["shape"]) for k, v in parameters.items()}
                        run["mae_after"] = forecast_mae(with_parameters(version_dir / "model.onnx", arrays), parts.x_later, parts.y_later)
                    if forecast is not None:
                        page = np.asarray(forecast, np.float64).reshape(parts.y_later.shape)
                        run["mae_after_page"] = float(np.mean(np.abs(page - parts.y_later.astype(np.float64))))
                    runs.append(run)
    summaries = {}
    for trainable in order:
        mine = [r for r in runs if r["set"] == trainable and "error" not in r]
        summaries[trainable] = {
            "failed_runs": sum(1 for r in runs if r["set"] == trainable and "error" in r),
            "ms_per_step": spread([s["median_ms"] for s in steps if s["set"] == trainable and s.get("median_ms") is not None]),
            "wall_s": spread([r["wallMs"] / 1000 for r in mine]),
            "lateness_ms": spread([r["maxLatenessMs"] for r in mine]),
            "mae_after": {
                person: spread([r["mae_after"] for r in mine if r["person"] == person and "mae_after" in r]) for person, _ in people
            },
        }
    return {
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "rounds": rounds,
        "people": [person for person, _ in people],
        "mae_before": {person: forecast_mae(str(folders[order[0]] / "model.onnx"), p.x_later, p.y_later) for person, p in people},
        "steps": steps,
        "runs": runs,
        "summary": summaries,
    }


def compare_sets(
    folders: Mapping[str, Path],
    report: dict[str, Any],
    *,
    first_seconds: float,
    epochs: int,
    learning_rate: float,
    rates: tuple[float, ...],
    rounds: int,
    seed: int,
    browser: bool,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Memory, the Python runner's MAE at each of `rates`, and (with `browser`) the Chromium rounds."""
    return {
        "sets": list(folders),
        "learning_rate": learning_rate,
        "memory": {spec: step_memory(folder) for spec, folder in folders.items()},
        "python": python_sets(folders, report, first_seconds, epochs, rates),
        "browser": browser_sets(
            folders,
            report,
            first_seconds=first_seconds,
            epochs=epochs,
            learning_rate=learning_rate,
            rounds=rounds,
            seed=seed,
            progress=progress,
        )
        if browser
        else None,
    }


def verdict(result: dict[str, Any], wall_goal_s: float, lateness_goal_ms: float) -> dict[str, Any]:
    """Per set: every browser run within the wall and lateness goals, and its mean browser MAE
    after (medians over rounds, averaged over people) against head's."""
    browser = result["browser"]
    if browser is None:
        return {}
    verdicts = {}
    for spec, summary in browser["summary"].items():
        runs = [r for r in browser["runs"] if r["set"] == spec]
        maes = [m["median"] for m in summary["mae_after"].values() if m is not None]
        verdicts[spec] = {
            "within_goals": bool(runs)
            and all("error" not in r and r["wallMs"] <= wall_goal_s * 1000 and r["maxLatenessMs"] <= lateness_goal_ms for r in runs),
            "mean_mae_after": float(np.mean(maes)) if len(maes) == len(summary["mae_after"]) else None,
        }
    head = verdicts.get("head", {}).get("mean_mae_after")
    for entry in verdicts.values():
        entry["better_than_head"] = None if head is None or entry["mean_mae_after"] is None else entry["mean_mae_after"] < head
    return verdicts


def _range(figure: dict[str, float] | None, digits: int, scale: float = 1.0) -> str:
    if figure is None:
        return "-"
    return f"{figure['median'] * scale:.{digits}f} ({figure['low'] * scale:.{digits}f}-{figure['high'] * scale:.{digits}f})"


def report_lines(result: dict[str, Any], wall_goal_s: float, lateness_goal_ms: float) -> list[str]:
    """The Markdown section of PERSONALISATION.md for `compare_sets`' result."""
    lines = [
        "## Which layers to train: head vs last:2 vs all",
        "",
        "The demo build's model exported once per `--trainable` set (`benchmarks/trainable_sets.py`). "
        "Memory of one step besides the data (float32; Adam's state is m and v):",
        "",
        "| set | tensors | values | parameters | Adam state | train.onnx |",
        "|---|---|---|---|---|---|",
    ]
    for spec, m in result["memory"].items():
        lines.append(
            f"| {spec} | {m['tensors']} | {m['parameters']:,} | {m['parameter_bytes'] / 1024:.1f} kB | "
            f"{m['state_bytes'] / 1024:.1f} kB | {m['train_onnx_bytes'] / 1e6:.2f} MB |"
        )
    people = [p["person"] for p in result["python"][0]["people"]] if result["python"] else []
    lines += [
        "",
        "Python (the exporter's onnxruntime runner, the same step graphs), forecast MAE (mV) on each person's later part:",
        "",
        "| set | learning rate | " + " | ".join(f"person {p}" for p in people) + " | mean | change vs shared model |",
        "|---|---|" + "---|" * len(people) + "---|---|",
    ]
    for row in result["python"]:
        after = " | ".join(f"{p['mae_after']:.4f}" for p in row["people"])
        lines.append(
            f"| {row['set']} | {row['learning_rate']:g} | {after} | {row['summary']['mae_after']:.4f} | "
            f"{row['summary']['change_percent']:+.1f} % |"
        )
    if result["python"]:
        before = " | ".join(f"{p['mae_before']:.4f}" for p in result["python"][0]["people"])
        lines.append(f"| shared model | - | {before} | {result['python'][0]['summary']['mae_before']:.4f} | |")
    browser = result["browser"]
    if browser is None:
        return [*lines, "", "Browser: not measured (`--no-browser`)."]
    verdicts = verdict(result, wall_goal_s, lateness_goal_ms)
    lines += [
        "",
        f"Chromium, onnxruntime-web (wasm) only, learning rate {result['learning_rate']:g}: {browser['rounds']} rounds, the sets "
        f"interleaved in a rotated order, each validation person personalised on a fresh page per round; median "
        f"(lowest-highest). Step: the harness page, median of 5 steps per round. MAE after: the browser's parameters put "
        f"into model.onnx by initializer name, under onnxruntime; the page: its own `predict` (local-only) of the later "
        f"part with the personalised model. Load average (1, 5, 15 min) at the end: "
        f"{', '.join(map(str, browser['load_average']))} on {os.cpu_count()} cores. Goal for every run: "
        f"<= {wall_goal_s:g} s and timers never late > {lateness_goal_ms:g} ms.",
        "",
        "| set | ms per step | whole personalisation (s) | worst timer lateness (ms) | "
        + " | ".join(f"MAE after, person {p} (before {browser['mae_before'][p]:.4f})" for p in browser["people"])
        + " | page's own MAE (median) | every run within the goals | better than head |",
        "|---|---|---|---|" + "---|" * len(browser["people"]) + "---|---|---|",
    ]
    for spec, s in browser["summary"].items():
        page = [r["mae_after_page"] for r in browser["runs"] if r["set"] == spec and "mae_after_page" in r]
        v = verdicts[spec]
        better = "-" if spec == "head" or v["better_than_head"] is None else ("yes" if v["better_than_head"] else "no")
        failed = f" ({s['failed_runs']} runs failed)" if s["failed_runs"] else ""
        page_mae = f"{statistics.median(page):.4f}" if page else "-"
        maes = " | ".join(_range(s["mae_after"][p], 4) for p in browser["people"])
        lines.append(
            f"| {spec}{failed} | {_range(s['ms_per_step'], 1)} | {_range(s['wall_s'], 2)} | {_range(s['lateness_ms'], 1)} | "
            f"{maes} | {page_mae} | {'yes' if v['within_goals'] else 'NO'} | {better} |"
        )
    failures = [r for r in browser["runs"] if "error" in r]
    for run in failures[:3]:
        lines.append(f"\nRound {run['round'] + 1}, {run['set']}, person {run['person']} failed: {run['error'][:200]}")
    return lines
