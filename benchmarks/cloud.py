"""Cloud load tests: every peer on the same model, body, concurrency and duration, in interleaved rounds.

Peers: MMS `/ping` (the HTTP ceiling of the server itself), MMS + our onnxruntime handler at
batch size 1, at batch size 8 with the default batch delay (batches only what is already
queued) and with a waiting delay (the old setting, for comparison), TorchServe with the same
handler (when it runs here), the seed's Flask app under gunicorn, and onnxruntime called
in-process (the compute floor, no HTTP at all). Every point is measured once per round and each
round runs every peer in turn (rotated from round to round), so a burst of load from elsewhere on
this shared machine hits every peer alike; `rounds.py` turns the rounds into medians and spreads.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from mms_handlers.server import DEFAULT_BATCH_DELAY_MS, MmsServer

from .loadtest import LoadResult, run_wrk
from .models import BenchModel
from .peers import FlaskPeer
from .rounds import load_average, rotated

BATCH8_WAIT_MS = 1  # the shortest waiting delay: full batches under load, but a lone request waits it out
PING = "MMS /ping"
MMS_B1 = "MMS batch 1"
MMS_B8 = f"MMS batch 8 ({DEFAULT_BATCH_DELAY_MS} ms delay)"
MMS_B8_WAIT = f"MMS batch 8 ({BATCH8_WAIT_MS} ms delay)"
FLASK = "Flask + gunicorn (2 workers)"
TORCHSERVE = "TorchServe batch 1"
IN_PROCESS = "onnxruntime in-process"
PEERS = (PING, MMS_B1, MMS_B8, MMS_B8_WAIT, TORCHSERVE, FLASK, IN_PROCESS)
ROUNDS = 3  # rounds per cloud point in a full run (the minimum for a median and a spread)
WORKERS = 2  # MMS workers per model, like gunicorn's 2 workers: one per core here
WARMUP_REQUESTS = 20
MEDIAN_ROUND = 0  # the `round` of a row that is the median of every round (`median_rows`)


@dataclass
class CloudRow:
    peer: str
    model: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    round: int = 1
    load_1min: float = 0.0  # the 1-minute load average, mean of the point's start and end

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def batched_name(model: BenchModel, waiting: bool = False) -> str:
    return f"{model.name}_b8w" if waiting else f"{model.name}_b8"


def register(mms: MmsServer, models: list[BenchModel], cloud_models: list[BenchModel]) -> None:
    """Every model at batch size 1 (the edge page calls these too); the cloud models also at 8, twice."""
    for model in models:
        mms.register(model.mar.name, initial_workers=WORKERS, batch_size=1)
    for model in cloud_models:
        mms.register(
            model.mar.name, name=batched_name(model), initial_workers=WORKERS, batch_size=8, max_batch_delay_ms=DEFAULT_BATCH_DELAY_MS
        )
        mms.register(
            model.mar.name, name=batched_name(model, waiting=True), initial_workers=WORKERS, batch_size=8, max_batch_delay_ms=BATCH8_WAIT_MS
        )
    mms.wait_until_healthy()


def json_body(model: BenchModel) -> bytes:
    """The plain-JSON request every HTTP peer gets: the model's one-row export sample."""
    return json.dumps({"inputs": {name: array.tolist() for name, array in model.sample().items()}}).encode()


def _warm_up(url: str, body: bytes) -> None:
    """A few requests first, so lazy work (first session run, connection pools) is not timed."""
    for _ in range(WARMUP_REQUESTS):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status} during warm-up")
            response.read()


class InProcessFloor:
    """onnxruntime called directly on the same one-row input, one thread, timed with perf_counter."""

    def __init__(self, model: BenchModel) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        path = model.version_dir / model.manifest["cloud"]["file"]
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.model, self.feeds = model.name, model.sample()
        for _ in range(WARMUP_REQUESTS):
            self.session.run(None, self.feeds)

    def measure(self, seconds: float, round_number: int = 1) -> CloudRow:
        load = load_average()
        times: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            begin = time.perf_counter()
            self.session.run(None, self.feeds)
            times.append(time.perf_counter() - begin)
        total = time.perf_counter() - start
        ms = np.asarray(times) * 1000.0
        return CloudRow(
            IN_PROCESS,
            self.model,
            1,
            len(times) / total,
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 99)),
            len(times),
            0,
            round_number,
            (load + load_average()) / 2,
        )


@dataclass(frozen=True)
class Target:
    peer: str
    model: str
    url: str
    body: bytes | None  # None: a GET (ping)

    def measure(self, concurrency: int, seconds: float, round_number: int) -> CloudRow:
        load = load_average()
        result: LoadResult = run_wrk(self.url, self.body, concurrency, seconds)
        return CloudRow(
            self.peer,
            self.model,
            concurrency,
            result.requests_per_s,
            result.p50_ms,
            result.p99_ms,
            result.requests,
            result.errors,
            round_number,
            (load + load_average()) / 2,
        )


def _targets(model: BenchModel, base: str, flask_url: str, torchserve_url: str | None) -> list[Target]:
    body = json_body(model)
    targets = [
        Target(MMS_B1, model.name, f"{base}/predictions/{model.name}", body),
        Target(MMS_B8, model.name, f"{base}/predictions/{batched_name(model)}", body),
        Target(MMS_B8_WAIT, model.name, f"{base}/predictions/{batched_name(model, waiting=True)}", body),
        Target(FLASK, model.name, f"{flask_url}/predictions/{model.name}", body),
    ]
    if torchserve_url:
        targets.insert(3, Target(TORCHSERVE, model.name, f"{torchserve_url}/predictions/{model.name}", body))
    return targets


def run_cloud(
    mms: MmsServer,
    cloud_models: list[BenchModel],
    concurrencies: tuple[int, ...],
    seconds: float,
    rounds: int = 3,
    torchserve_url: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> list[CloudRow]:
    """All peers × models × concurrencies, `rounds` times over; MMS (and TorchServe) must serve the models.

    Round after round, each (model, concurrency) point runs every peer once, in an order rotated
    by the round number, so each ratio compares points measured seconds apart.
    """
    rows: list[CloudRow] = []
    base = mms.config.inference_url
    files = {model.name: model.version_dir / model.manifest["cloud"]["file"] for model in cloud_models}
    ping = Target(PING, "-", f"{base}/ping", None)
    with FlaskPeer(files) as flask:
        targets = {model.name: _targets(model, base, flask.url, torchserve_url) for model in cloud_models}
        for target in (t for model_targets in targets.values() for t in model_targets):
            _warm_up(target.url, target.body or b"")
        floors = {model.name: InProcessFloor(model) for model in cloud_models}
        for round_number in range(1, rounds + 1):
            for model in cloud_models:
                progress(f"cloud round {round_number}/{rounds}: {model.name} in-process floor")
                rows.append(floors[model.name].measure(seconds, round_number))
                for concurrency in concurrencies:
                    points = ([ping] if model is cloud_models[0] else []) + targets[model.name]
                    progress(f"cloud round {round_number}/{rounds}: {model.name} at concurrency {concurrency}")
                    for target in rotated(points, round_number - 1):
                        rows.append(target.measure(concurrency, seconds, round_number))
    return rows


def median_rows(rows: list[CloudRow]) -> list[CloudRow]:
    """One row per (peer, model, concurrency): the median of its rounds' figures, the requests and errors summed.

    For tables and plots; ratios are taken round by round (`report.cloud_ratios`), never from these.
    """
    groups: dict[tuple[str, str, int], list[CloudRow]] = {}
    for row in rows:
        groups.setdefault((row.peer, row.model, row.concurrency), []).append(row)
    return [
        CloudRow(
            peer,
            model,
            concurrency,
            float(np.median([r.requests_per_s for r in group])),
            float(np.median([r.p50_ms for r in group])),
            float(np.median([r.p99_ms for r in group])),
            sum(r.requests for r in group),
            sum(r.errors for r in group),
            MEDIAN_ROUND,
            float(np.mean([r.load_1min for r in group])),
        )
        for (peer, model, concurrency), group in groups.items()
    ]
