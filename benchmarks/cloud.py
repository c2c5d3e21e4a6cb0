"""Cloud load tests: every peer on the same model, body, concurrency and duration, one after another.

Peers: MMS `/ping` (the HTTP ceiling of the server itself), MMS + our onnxruntime handler at
batch size 1 and 8, TorchServe with the same handler (when it runs here), the seed's Flask app
under gunicorn, and onnxruntime called in-process
(the compute floor, no HTTP at all). Points are interleaved per concurrency level so a burst of
load from elsewhere on this shared machine hits every peer alike.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from mms_handlers.server import MmsServer

from .loadtest import LoadResult, run_wrk
from .models import BenchModel
from .peers import FlaskPeer

PING = "MMS /ping"
MMS_B1 = "MMS batch 1"
MMS_B8 = "MMS batch 8"
FLASK = "Flask + gunicorn (2 workers)"
TORCHSERVE = "TorchServe batch 1"
IN_PROCESS = "onnxruntime in-process"
PEERS = (PING, MMS_B1, MMS_B8, TORCHSERVE, FLASK, IN_PROCESS)
BATCH8_DELAY_MS = 5
WORKERS = 2  # MMS workers per model, like gunicorn's 2 workers: one per core here
WARMUP_REQUESTS = 20


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

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def batched_name(model: BenchModel) -> str:
    return f"{model.name}_b8"


def register(mms: MmsServer, models: list[BenchModel], cloud_models: list[BenchModel]) -> None:
    """Every model at batch size 1 (the edge page calls these too); the cloud models also at 8."""
    for model in models:
        mms.register(model.mar.name, initial_workers=WORKERS, batch_size=1)
    for model in cloud_models:
        mms.register(model.mar.name, name=batched_name(model), initial_workers=WORKERS, batch_size=8,
                     max_batch_delay_ms=BATCH8_DELAY_MS)  # fmt: skip
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


def in_process(model: BenchModel, seconds: float) -> CloudRow:
    """onnxruntime called directly on the same one-row input, one thread, timed with perf_counter."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model.version_dir / model.manifest["cloud"]["file"]), options, providers=["CPUExecutionProvider"]
    )
    feeds = model.sample()
    for _ in range(WARMUP_REQUESTS):
        session.run(None, feeds)
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        begin = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - begin)
    total = time.perf_counter() - start
    ms = np.asarray(times) * 1000.0
    return CloudRow(IN_PROCESS, model.name, 1, len(times) / total, float(np.percentile(ms, 50)),
                    float(np.percentile(ms, 99)), len(times), 0)  # fmt: skip


def _row(peer: str, model: str, concurrency: int, result: LoadResult) -> CloudRow:
    return CloudRow(peer, model, concurrency, result.requests_per_s, result.p50_ms, result.p99_ms,
                    result.requests, result.errors)  # fmt: skip


def run_cloud(
    mms: MmsServer,
    cloud_models: list[BenchModel],
    concurrencies: tuple[int, ...],
    seconds: float,
    torchserve_url: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> list[CloudRow]:
    """All peers × models × concurrencies; MMS (and TorchServe, if given) must serve the models already."""
    rows: list[CloudRow] = []
    base = mms.config.inference_url
    files = {model.name: model.version_dir / model.manifest["cloud"]["file"] for model in cloud_models}
    with FlaskPeer(files) as flask:
        for model in cloud_models:
            body = json_body(model)
            targets = [
                (MMS_B1, f"{base}/predictions/{model.name}"),
                (MMS_B8, f"{base}/predictions/{batched_name(model)}"),
                (FLASK, f"{flask.url}/predictions/{model.name}"),
            ]
            if torchserve_url:
                targets.insert(2, (TORCHSERVE, f"{torchserve_url}/predictions/{model.name}"))
            for _, url in targets:
                _warm_up(url, body)
            progress(f"cloud: {model.name} in-process floor")
            rows.append(in_process(model, seconds))
            for concurrency in concurrencies:
                if model is cloud_models[0]:
                    progress(f"cloud: /ping at concurrency {concurrency}")
                    rows.append(_row(PING, "-", concurrency, run_wrk(f"{base}/ping", None, concurrency, seconds)))
                for peer, url in targets:
                    progress(f"cloud: {model.name} {peer} at concurrency {concurrency}")
                    rows.append(_row(peer, model.name, concurrency, run_wrk(url, body, concurrency, seconds)))
    return rows
