"""`python -m benchmarks.demo_page`: edge ÷ cloud round trip on the demo page, per edge runtime choice.

The demo stack as `edgecloud demo` serves it (MMS + the page, the forecaster verified in Chromium so
model.json ranks its runtimes), opened in headless Chromium on a fresh profile per setting: the
handler's default (the fastest verified runtime) and each runtime forced with `?edgeRuntime=`. In
the page, the demo's own handler (`window.demo.handler`) predicts the ECG strip's windows, edge
(`local-only`) and cloud (`prefer-cloud`) alternately, window by window, so both sides see the
same machine load; `latencyMs` is the whole predict() call either way. Per round, edge p50 ÷ cloud
p50; reported as the median over rounds with its spread (benchmarks/rounds.py). Writes
DEMO_PAGE.md and demo_page.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

from .rounds import Spread, load_average
from .run import REPO, run_and_report, say

DEFAULT_OUT = REPO / "benchmarks" / "results"
SETTINGS = (None, "onnxjs", "onnxruntime-web")  # None: the handler's default

# Interleaved windows in the page: edge then cloud on even windows, cloud then edge on odd ones.
MEASURE = """async ({ windows, warmup }) => {
  const demo = window.demo;
  const edge = [], cloud = [];
  const n = demo.windowLength;
  for (let i = 0; i < warmup + windows; i += 1) {
    const end = n + ((i * demo.horizon) % (demo.signal.length - n));
    const input = { [demo.inputName]: { data: demo.signal.slice(end - n, end), shape: [1, ...demo.inputDims] } };
    const order = i % 2 ? ['prefer-cloud', 'local-only'] : ['local-only', 'prefer-cloud'];
    for (const privacy of order) {
      const answer = await demo.handler.predict(input, { privacy });
      const want = privacy === 'local-only' ? 'edge' : 'cloud';
      if (answer.ranOn !== want) throw new Error(`${privacy} answered on the ${answer.ranOn}: ${answer.fallbackReason}`);
      if (i >= warmup) (want === 'edge' ? edge : cloud).push(answer.latencyMs);
    }
  }
  return { edge, cloud, status: demo.handler.status().edge };
}"""


def measure_setting(playwright: Any, page_url: str, forced: str | None, rounds: int, windows: int) -> dict[str, Any]:
    """One fresh profile: the page with this setting, `rounds` rounds of `windows` interleaved windows."""
    from edgecloud.browser import fresh_chromium

    url = page_url + (f"?{urllib.parse.urlencode({'edgeRuntime': forced})}" if forced else "")
    with fresh_chromium(playwright, prefix="edgecloud-demo-bench-") as context:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready]", timeout=180_000)
        if page.get_attribute("body", "data-ready") != "true":
            raise RuntimeError(f"the demo page did not come up: {page.inner_text('#status')}")
        results = []
        for number in range(rounds):
            got = page.evaluate(MEASURE, {"windows": windows, "warmup": 10 if number == 0 else 0})
            edge, cloud = float(np.median(got["edge"])), float(np.median(got["cloud"]))
            results.append({"edge_p50_ms": edge, "cloud_p50_ms": cloud, "ratio": edge / cloud, "load": load_average()})
            say(
                f"demo page, {forced or 'default'}: round {number + 1}/{rounds}: {got['status']['backend']} "
                f"edge {edge:.2f} ms, cloud {cloud:.2f} ms, ratio {edge / cloud:.3f}"
            )
    return {
        "setting": forced or "default",
        "backend": got["status"]["backend"],
        "runtime_reason": got["status"]["runtimeReason"],
        "rounds": results,
    }


def run(out: Path, cache: Path, rounds: int, windows: int, command: str) -> Path:
    from playwright.sync_api import sync_playwright

    from edgecloud.commands.demo import DEMO_NAME, prepare
    from edgecloud.edge_verify import row_name
    from edgecloud.stack import Stack, StackOptions
    from mms_handlers.ports import free_port
    from mms_handlers.server import ServerConfig

    from .machine import machine, now, versions

    say("preparing the demo (build reused when cached; export, verify in Chromium, archive)")
    registry, model_store = prepare(cache)
    manifest = json.loads((registry / DEMO_NAME / "1" / "model.json").read_text())
    started, host = now(), machine()
    server = ServerConfig(model_store=model_store, inference_port=free_port(), management_port=free_port())
    stack = Stack(StackOptions(server=server, registry=registry, web_port=free_port())).start()
    try:
        with sync_playwright() as playwright:
            rows = [measure_setting(playwright, stack.urls()["page"], forced, rounds, windows) for forced in SETTINGS]
    finally:
        stack.stop()
    for row in rows:
        row["ratio"] = Spread.of(r["ratio"] for r in row["rounds"])
        row["edge_p50_ms"] = Spread.of(r["edge_p50_ms"] for r in row["rounds"])
        row["cloud_p50_ms"] = Spread.of(r["cloud_p50_ms"] for r in row["rounds"])
    out.mkdir(parents=True, exist_ok=True)
    as_json = [{**row, **{k: row[k].as_json() for k in ("ratio", "edge_p50_ms", "cloud_p50_ms")}} for row in rows]
    (out / "demo_page.json").write_text(
        json.dumps(
            {
                "date": started,
                "command": command,
                "machine": host,
                "versions": versions(),
                "rounds": rounds,
                "windows": windows,
                "ranking": manifest["edge"].get("ranking"),
                "settings": as_json,
            },
            indent=1,
        )
        + "\n"
    )
    lines = [
        "# Demo page: edge ÷ cloud round trip per edge runtime",
        f"Run on {started} with `{command}` on {host['cpu']}, {host['cores']} cores; load average at start "
        f"(1, 5, 15 min): {host['load average at start (1, 5, 15 min)']}. {rounds} rounds of {windows} windows, "
        "edge (`local-only`) and cloud (`prefer-cloud`) alternating per window; p50 of `latencyMs` per round; "
        "median (lowest–highest round). Raw rows: `demo_page.json`.",
        "",
        "Ranking `edgecloud verify` wrote (model.json `edge.ranking`): "
        + ", ".join(f"{row_name(r)} {r['median_ms']:.2f} ms" for r in manifest["edge"].get("ranking") or []),
        "",
        "| setting | edge backend | edge p50 ms | cloud p50 ms | edge ÷ cloud | why (runtimeReason) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setting']} | {row['backend']} | {row['edge_p50_ms'].value_text(3)} | "
            f"{row['cloud_p50_ms'].value_text(3)} | {row['ratio'].value_text(3)} | {row['runtime_reason']} |"
        )
    report = out / "DEMO_PAGE.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.demo_page", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per setting (default 5)")
    parser.add_argument("--windows", type=int, default=100, help="windows per round, each edge and cloud (default 100)")
    parser.add_argument("--cache", type=Path, default=REPO / ".edgecloud" / "demo", help="the demo's cache (.edgecloud/demo)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (benchmarks/results)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.windows < 1:
        parser.error("--rounds and --windows must be at least 1")
    command = shlex.join(["python", "-m", "benchmarks.demo_page", *(argv if argv is not None else sys.argv[1:])])
    return run_and_report(lambda: run(args.out, args.cache, args.rounds, args.windows, command))


if __name__ == "__main__":
    sys.exit(main())
