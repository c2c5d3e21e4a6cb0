"""Fitting a user's sample to a model's inputs, and making one when the shapes allow it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import BadInputError
from .verify import Feeds


def load_sample(path: Path | None) -> dict[str, np.ndarray] | np.ndarray | None:
    """`.npy` (one input) or `.npz` (one array per input name)."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"sample file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError/OSError/EOFError for bad files
        raise BadInputError(f"cannot read sample {path.name}: {error}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            try:
                return {key: loaded[key] for key in loaded.files}
            except Exception as error:  # noqa: BLE001 - members load lazily: a pickled (object) array fails here
                raise BadInputError(f"cannot read sample {path.name}: {error}") from None
    return loaded


def name_sample(sample: dict[str, np.ndarray] | np.ndarray, names: Sequence[str]) -> Feeds:
    """Key the sample by input name: a lone array for a one-input model, else an .npz by name."""
    if isinstance(sample, np.ndarray):
        if len(names) != 1:
            raise BadInputError(f"the model has {len(names)} inputs ({', '.join(names)}): give the sample as .npz keyed by name")
        sample = {names[0]: sample}
    if set(sample) != set(names):
        raise BadInputError(f"sample arrays {sorted(sample)} do not match the model inputs {sorted(names)}")
    return {name: np.asarray(sample[name]) for name in names}


def fit_sample(sample: dict[str, np.ndarray] | np.ndarray, specs: Sequence[dict[str, Any]]) -> Feeds:
    """Map the sample onto the inputs, add a missing batch axis, check every fixed dimension."""
    sample = name_sample(sample, [spec["name"] for spec in specs])
    feeds: Feeds = {}
    for spec in specs:
        array = np.asarray(sample[spec["name"]])
        shape = spec["shape"]
        if array.ndim == len(shape) - 1:
            array = array[np.newaxis, ...]
        fits = array.ndim == len(shape) and all(want is None or want == got for want, got in zip(shape, array.shape))
        if not fits:
            raise BadInputError(f"sample for input {spec['name']!r} has shape {list(array.shape)}, the model expects {_show(shape)}")
        feeds[spec["name"]] = array.astype(spec["dtype"], copy=False)
    return feeds


def synthesize_sample(specs: Sequence[dict[str, Any]], seed: int = 0) -> Feeds:
    """A batch-of-one random sample; only possible when nothing but the batch axis is free."""
    rng = np.random.default_rng(seed)
    feeds: Feeds = {}
    for spec in specs:
        shape = list(spec["shape"])
        if shape and shape[0] is None:
            shape[0] = 1
        if any(dim is None for dim in shape):
            raise BadInputError(f"input {spec['name']!r} has free dimensions {_show(spec['shape'])}: pass --sample to fix them")
        feeds[spec["name"]] = rng.standard_normal(shape).astype(spec["dtype"])
    return feeds


def _show(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"
