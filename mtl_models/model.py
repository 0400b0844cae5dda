"""The multi-task model class: a functional Keras model whose loss can learn task weights."""

from __future__ import annotations

import keras
from keras import ops

from mtl_models.layers import TaskUncertainty

__all__ = ["MultiTaskModel", "task_loss"]

_LOSSES = {
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "mse": keras.losses.MeanSquaredError,
    "mae": keras.losses.MeanAbsoluteError,
    "huber": keras.losses.Huber,
}


def task_loss(name: str) -> keras.losses.Loss:
    """A fresh Keras loss object for one of the loss names a task may use."""
    try:
        return _LOSSES[name]()
    except KeyError:
        raise ValueError(f"Unknown task loss {name!r}; expected one of {sorted(_LOSSES)}.") from None


@keras.saving.register_keras_serializable(package="mtl_models")
class MultiTaskModel(keras.Model):
    """A functional model with dict inputs and outputs, one output per task.

    With fixed weights it trains like any compiled Keras model. When the graph holds
    :class:`TaskUncertainty` layers, ``compute_loss`` replaces the fixed weighting by
    ``sum_i 0.5 * exp(-s_i) * L_i + 0.5 * s_i`` with learned ``s_i`` (Keras 3 takes only
    float loss weights, so learned ones need this override). While ``only_task`` names a
    task (set by ``compile_model`` for fine-tuning) the compiled 0/1 weights apply instead,
    so that task trains on its plain loss and no learned weight moves.
    """

    only_task: str | None = None  # a plain attribute that compile_model sets; not saved with the model

    def __init__(self, *args, **kwargs):
        # (*args, **kwargs) keeps the class revivable as a functional model on load.
        super().__init__(*args, **kwargs)

    def uncertainty_layers(self) -> dict[str, TaskUncertainty]:
        """The learned-weight layers by task name (empty with fixed weights)."""
        return {layer.name: layer for layer in self.layers if isinstance(layer, TaskUncertainty)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        weights = self.uncertainty_layers()
        if not weights or y is None or self.only_task is not None:
            return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        total = ops.zeros(())
        for name, layer in weights.items():
            task_weight = sample_weight.get(name) if isinstance(sample_weight, dict) else sample_weight
            loss = task_loss(layer.loss)(y[name], y_pred[name], sample_weight=task_weight)
            log_var = ops.cast(layer.log_var, loss.dtype)
            total = total + 0.5 * ops.exp(-log_var) * loss + 0.5 * log_var
        for extra in self.losses:
            total = total + ops.cast(extra, total.dtype)
        return total
