"""Registered custom metrics: they load with ``safe_mode=True`` and no ``custom_objects``."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["WithinDistance"]


@keras.saving.register_keras_serializable(package="mtl_models")
class WithinDistance(keras.metrics.Mean):
    """The fraction of samples whose predicted vector lies within ``threshold`` of the truth.

    The distance is Euclidean over the last axis, so for a midpoint ``(x, y)`` in units of
    the image side, ``threshold=0.05`` counts predictions within 5 % of the side.
    """

    def __init__(self, threshold: float = 0.05, name: str = "within_5pct", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = float(threshold)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, self.dtype)
        y_pred = ops.cast(y_pred, self.dtype)
        distance = ops.sqrt(ops.sum(ops.square(y_pred - y_true), axis=-1))
        hits = ops.cast(distance <= self.threshold, self.dtype)
        return super().update_state(hits, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
