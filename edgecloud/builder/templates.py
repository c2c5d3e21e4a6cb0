"""Model templates: a function of KerasTuner hyperparameters that returns a compiled Keras model.

A template is called as `template(hp, window=T, horizon=H)` and must return a compiled
`keras.Model` taking float32 windows shaped [batch, T, 1] (normalised signal) and returning
[batch, H] (the next H normalised samples). Every `hp.*` call declares a searched
hyperparameter. Templates are found by name among the built-ins below, then among the
`edgecloud.templates` entry points of installed packages, or directly as `module.path:function`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable

from ..errors import CliError

if TYPE_CHECKING:
    import keras

ENTRY_POINT_GROUP = "edgecloud.templates"

TemplateFunction = Callable[..., Any]  # (hp, *, window: int, horizon: int) -> compiled keras.Model


class TemplateError(CliError):
    """The template cannot be found or does not build a usable model (a usage error: exit code 2)."""


@dataclass(frozen=True)
class Template:
    name: str
    build: TemplateFunction
    origin: str  # "built-in", "entry point <value>" or "module path"


def ecg_forecaster(hp: Any, *, window: int, horizon: int) -> keras.Model:
    """Conv1D front end (+ MaxPool1D) → LSTM → Dense head.

    The convolution finds beat shapes, the pooling shortens the sequence four times so the LSTM
    stays cheap (and small once unrolled for the browser), the LSTM carries the rhythm.
    """
    import keras

    filters = hp.Choice("filters", [8, 16, 32])
    kernel = hp.Choice("kernel", [3, 5, 7, 9])
    units = hp.Choice("units", [16, 32, 48])
    dropout = hp.Float("dropout", 0.0, 0.3, step=0.1)
    learning_rate = hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")

    inputs = keras.Input((window, 1), name="window")
    hidden = keras.layers.Conv1D(filters, kernel, padding="same", activation="relu", name="conv")(inputs)
    hidden = keras.layers.MaxPool1D(4, name="pool")(hidden)
    hidden = keras.layers.LSTM(units, name="lstm")(hidden)
    hidden = keras.layers.Dropout(dropout, name="dropout")(hidden)
    outputs = keras.layers.Dense(horizon, name="head")(hidden)
    model = keras.Model(inputs, outputs, name="ecg_forecaster")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


BUILT_IN: dict[str, TemplateFunction] = {"ecg-forecaster": ecg_forecaster}


def available() -> list[str]:
    """Names usable with --template (built-ins and installed entry points)."""
    return sorted({*BUILT_IN, *(entry.name for entry in entry_points(group=ENTRY_POINT_GROUP))})


def _from_module_path(spec: str) -> Template:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise TemplateError(f"template {spec!r} must look like module.path:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TemplateError(f"cannot import template module {module_name!r}: {error}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise TemplateError(f"module {module_name!r} has no function {attribute!r}")
    return Template(spec, function, "module path")


def resolve(spec: str) -> Template:
    """The template a --template value names."""
    if ":" in spec:
        return _from_module_path(spec)
    if spec in BUILT_IN:
        return Template(spec, BUILT_IN[spec], "built-in")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == spec:
            try:
                function = entry.load()
            except Exception as error:  # noqa: BLE001 - a broken plug-in is named, not a traceback
                raise TemplateError(f"entry point {spec!r} ({entry.value}) cannot be loaded: {error}") from None
            return Template(spec, function, f"entry point {entry.value}")
    raise TemplateError(f"unknown template {spec!r}; choose one of {', '.join(available())} or give module.path:function")


def check(template: Template, *, window: int, horizon: int) -> None:
    """Build once with default hyperparameters and check the contract, before any search starts."""
    import keras
    import keras_tuner

    try:
        model = template.build(keras_tuner.HyperParameters(), window=window, horizon=horizon)
    except Exception as error:  # noqa: BLE001 - the user's code failed: say so in one line
        raise TemplateError(f"template {template.name!r} failed to build: {type(error).__name__}: {error}") from None
    if not isinstance(model, keras.Model):
        raise TemplateError(f"template {template.name!r} returned {type(model).__name__}, not a keras.Model")
    if getattr(model, "optimizer", None) is None:
        raise TemplateError(f"template {template.name!r} returned a model that is not compiled")
    if len(model.inputs) != 1 or tuple(model.inputs[0].shape[1:]) != (window, 1):
        shapes = [tuple(tensor.shape) for tensor in model.inputs]
        raise TemplateError(f"template {template.name!r} must take one input (None, {window}, 1); it takes {shapes}")
    if len(model.outputs) != 1 or tuple(model.outputs[0].shape[1:]) != (horizon,):
        shapes = [tuple(tensor.shape) for tensor in model.outputs]
        raise TemplateError(f"template {template.name!r} must return one output (None, {horizon}); it returns {shapes}")
