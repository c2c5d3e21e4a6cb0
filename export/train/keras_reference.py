"""Keras's own training step for parity: its optimizer applied with GradientTape on the loaded model.

`training=False`, as the exported step runs the served graph (no dropout, frozen batch-norm
statistics); only the chosen variables are differentiated and updated. The model's weights
are restored afterwards: the same model object is the export's inference reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .reference import Batch, Normalisation, Variable
from .spec import Loss, Optimizer


class KerasTrainer:
    def __init__(self, model: Any, onnx_inputs: list[str], onnx_outputs: list[str]) -> None:
        self.model = model
        self.onnx_inputs = onnx_inputs
        self.onnx_outputs = onnx_outputs

    def describe(self, optimizer: Optimizer) -> str:
        import keras

        name = {"sgd": "SGD", "adam": "Adam"}[optimizer.kind]
        return f"keras {keras.__version__} {name} (GradientTape, training=False)"

    def variables(self) -> list[Variable]:
        return [
            Variable(v.path, v.path.rsplit("/", 1)[0] if "/" in v.path else "", np.array(v.numpy())) for v in self.model.trainable_variables
        ]

    def normalisations(self) -> list[Normalisation]:
        """The model's BatchNormalization layers over the channel (last) axis with γ and β (top-level layers)."""
        import keras

        found = []
        for layer in self.model.layers:
            if not isinstance(layer, keras.layers.BatchNormalization) or not (layer.center and layer.scale):
                continue
            if layer.axis not in (-1, len(layer.input.shape) - 1):
                continue
            found.append(
                Normalisation(
                    layer=layer.name,
                    gamma=Variable(layer.gamma.path, layer.name, np.array(layer.gamma.numpy())),
                    beta=Variable(layer.beta.path, layer.name, np.array(layer.beta.numpy())),
                    mean=np.array(layer.moving_mean.numpy()),
                    variance=np.array(layer.moving_variance.numpy()),
                    epsilon=float(layer.epsilon),
                    mean_key=layer.moving_mean.path,
                    variance_key=layer.moving_variance.path,
                )
            )
        return found

    def _optimizer(self, optimizer: Optimizer) -> Any:
        import keras

        if optimizer.kind == "sgd":
            return keras.optimizers.SGD(learning_rate=optimizer.learning_rate)
        return keras.optimizers.Adam(
            learning_rate=optimizer.learning_rate, beta_1=optimizer.beta1, beta_2=optimizer.beta2, epsilon=optimizer.epsilon
        )

    @staticmethod
    def _loss(loss: Loss, from_logits: bool) -> Any:
        import keras

        if loss.kind == "mse":
            return keras.losses.MeanSquaredError()
        if loss.kind == "cross-entropy":
            return keras.losses.CategoricalCrossentropy(from_logits=from_logits)
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)

    def train(
        self, keys: list[str], loss: Loss, optimizer: Optimizer, from_logits: bool, batches: list[Batch]
    ) -> list[dict[str, np.ndarray]]:
        import tensorflow as tf

        by_key = {v.path: v for v in self.model.trainable_variables}
        chosen = [by_key[key] for key in keys]
        saved = [np.array(w.numpy()) for w in self.model.weights]
        keras_optimizer = self._optimizer(optimizer)
        loss_fn = self._loss(loss, from_logits)
        history = []
        try:
            for inputs, targets in batches:
                arrays = [inputs[name] for name in self.onnx_inputs]
                with tf.GradientTape() as tape:
                    result = self.model(arrays if len(arrays) > 1 else arrays[0], training=False)
                    results = result if isinstance(result, (list, tuple)) else [result]
                    total = tf.add_n([loss_fn(targets[name], value) for name, value in zip(self.onnx_outputs, results) if name in targets])
                gradients = tape.gradient(total, chosen)
                keras_optimizer.apply_gradients(zip(gradients, chosen))
                history.append({key: np.array(v.numpy()) for key, v in zip(keys, chosen)})
        finally:
            for weight, value in zip(self.model.weights, saved):
                weight.assign(value)
        return history
