"""Dynamic batching inside one MMS batch: stack compatible requests, run once, split back.

MMS hands the handler up to `batch_size` requests at a time. Requests whose inputs agree on
everything but the first (free) dimension are concatenated along axis 0 into one engine run
and the outputs are cut back by each request's row count. A request that cannot be stacked
(different trailing dims or dtypes, or a model without a free batch dimension) runs alone.
If a stacked run fails, its members are retried one by one so only the culprit fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np

from .signature import Signature

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]
RunFn = Callable[[Feeds], Outputs]


@dataclass
class Result:
    """One request's outputs (or the exception its own run raised) and how it was run."""

    outputs: Outputs | None = None
    error: Exception | None = None
    inference_ms: float = 0.0
    stacked_with: int = 1


@dataclass
class BatchReport:
    """What happened to one MMS batch: how many engine runs served how many requests."""

    results: dict[int, Result] = field(default_factory=dict)
    engine_runs: int = 0


def stack_key(feeds: Feeds, signature: Signature) -> Hashable | None:
    """Requests with equal keys can be stacked along axis 0; None means run alone."""
    if not signature.batchable:
        return None
    rows = {array.shape[0] for array in feeds.values()}
    if len(rows) != 1:
        return None
    return tuple((name, feeds[name].dtype.str, feeds[name].shape[1:]) for name in signature.input_names)


def group(requests: Mapping[int, Feeds], signature: Signature) -> list[list[int]]:
    """Indices of requests to run together, in arrival order; singletons for the unstackable."""
    groups: dict[Hashable, list[int]] = {}
    for index, feeds in requests.items():
        key = stack_key(feeds, signature)
        groups.setdefault(("alone", index) if key is None else key, []).append(index)
    return list(groups.values())


def run_batch(requests: Mapping[int, Feeds], signature: Signature, run: RunFn) -> BatchReport:
    """Run every request, stacked where possible; per-request results, never one shared failure."""
    report = BatchReport()
    for members in group(requests, signature):
        if len(members) == 1:
            report.results[members[0]] = _run_alone(requests[members[0]], run, report)
            continue
        try:
            stacked = _run_stacked([requests[i] for i in members], signature, run, report)
        except Exception:  # noqa: BLE001 - find the request that broke the run by running each alone
            stacked = None
        if stacked is None:
            for index in members:
                report.results[index] = _run_alone(requests[index], run, report)
            continue
        for index, result in zip(members, stacked):
            report.results[index] = result
    return report


def _run_alone(feeds: Feeds, run: RunFn, report: BatchReport) -> Result:
    started = time.perf_counter()
    report.engine_runs += 1
    try:
        outputs = run(feeds)
    except Exception as error:  # noqa: BLE001 - reported for this request only
        return Result(error=error, inference_ms=_ms_since(started))
    return Result(outputs=outputs, inference_ms=_ms_since(started))


def _run_stacked(members: Sequence[Feeds], signature: Signature, run: RunFn, report: BatchReport) -> list[Result] | None:
    counts = [next(iter(feeds.values())).shape[0] for feeds in members]
    stacked = {name: np.concatenate([feeds[name] for feeds in members], axis=0) for name in signature.input_names}
    started = time.perf_counter()
    report.engine_runs += 1
    outputs = run(stacked)
    elapsed = _ms_since(started)
    total = sum(counts)
    if any(np.ndim(value) == 0 or np.shape(value)[0] != total for value in outputs.values()):
        return None  # an output not batched along axis 0 after all: the split would be wrong
    bounds = np.cumsum(counts)[:-1]
    pieces = {name: np.split(np.asarray(value), bounds, axis=0) for name, value in outputs.items()}
    return [
        Result(outputs={name: pieces[name][i] for name in outputs}, inference_ms=elapsed, stacked_with=len(members))
        for i in range(len(members))
    ]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
