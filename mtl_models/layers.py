"""Registered custom layers: they load with ``safe_mode=True`` and no ``custom_objects``.

Both are registered under the ``mtl_models`` package when this module is imported
(importing ``mtl_models`` does that), so ``keras.models.load_model`` finds them.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["StopGradient", "TaskUncertainty"]


@keras.saving.register_keras_serializable(package="mtl_models")
class StopGradient(keras.layers.Layer):
    """Identity in the forward pass; no gradient flows back through it.

    Put in front of a head, it keeps that head's loss from reaching any shared weight.
    A registered layer rather than a Lambda, so saved models load in safe mode.
    """

    def call(self, inputs):
        return ops.stop_gradient(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mtl_models")
class TaskUncertainty(keras.layers.Layer):
    """Identity on a task's output that owns the task's learned log-variance ``s``.

    With uncertainty weighting (Kendall et al., 2018) the model's loss is
    ``sum_i 0.5 * exp(-s_i) * L_i + 0.5 * s_i`` (the form LibMTL uses); the model reads
    ``s_i`` and ``loss`` (the task's loss name) from this layer. ``initial_log_var``
    0 starts every task at weight 0.5, the same for all tasks.
    """

    def __init__(self, loss: str, initial_log_var: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(loss, str) or not loss:
            raise ValueError(f"Invalid value received for argument `loss`. Expected a loss name. Received: loss={loss!r}")
        self.loss = loss
        self.initial_log_var = float(initial_log_var)

    def build(self, input_shape):
        self.log_var = self.add_weight(
            name="log_var",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_log_var),
            trainable=True,
        )

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = {"loss": self.loss, "initial_log_var": self.initial_log_var}
        return {**base_config, **config}
