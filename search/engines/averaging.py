"""Weight averaging: a training run is judged, checkpointed and kept with a moving average of its weights.

A network trained at a constant learning rate circles a minimum; the exponential moving average of its
weights (Polyak averaging, the EMA that timm and Keras' ``use_ema`` keep) sits nearer it, at every epoch,
without changing how training goes. So every epoch is validated with the averaged weights, and whatever
is saved after it (a retraining run's checkpoint, early stopping's best weights) holds them; training
itself goes on from the raw weights.

The average is updated after every training step with momentum ``min(momentum, (1 + t) / (10 + t))`` at
step ``t`` (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so the first epochs are not
judged by an average of the untrained network. All of the model's weights are averaged, batch-norm
statistics included.

Measured before choosing (each built-in task's fixed model trained alone, best val objective so far,
momentum 0.99 without warm-up): shapes after 25 epochs 0.9772 raw, 0.9822 averaged; after 40, 0.9785 and
0.9844 (what the raw weights reach only with a learning-rate cooldown); glyphs after 25, 0.9459 and 0.9563;
after 40, 0.9610 and 0.9674.

Keras' own ``use_ema`` cannot serve a run that trains one epoch per ``fit`` call (the Ray Tune trainable):
``fit`` overwrites the raw weights with the average when it returns. This callback keeps its own.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["WeightAverage"]


class WeightAverage(keras.callbacks.Callback):
    """Keeps the moving average of the model's weights and swaps it in for validation and for what follows an
    epoch (checkpoints, early stopping); the raw weights are back when the next epoch trains or ``fit`` returns.

    Put it first among the callbacks, so those after it see the averaged weights at an epoch's end.
    """

    def __init__(self, momentum: float):
        super().__init__()
        if not 0 < momentum < 1:
            raise ValueError(f"momentum must be in (0, 1), got {momentum}")
        self.momentum = momentum
        self.average: list[tf.Variable] | None = None
        self.steps = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.swapped = False  # whether the model holds the averaged weights now
        self._exchange = None  # the swap, as one graph (built on first use)

    def __deepcopy__(self, memo):  # one average per run, as EpochScorer
        return self

    def _weights(self) -> list:
        return [w.value if isinstance(w, keras.Variable) else w for w in self.model.weights]

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.average is None:
            self.average = [tf.Variable(w, trainable=False) for w in self._weights()]
            self._update = tf.function(self._update_average)
            self._exchange = None

    def _update_average(self) -> None:
        self.steps.assign_add(1.0)
        momentum = tf.minimum(self.momentum, (1.0 + self.steps) / (10.0 + self.steps))
        for average, weight in zip(self.average, self._weights()):
            if average.dtype.is_floating:
                average.assign(momentum * average + (1.0 - momentum) * tf.cast(weight, average.dtype))
            else:
                average.assign(weight)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update()

    def _swap(self, averaged: bool) -> None:
        if self.average is None or self.swapped == averaged:
            return
        if self._exchange is None:  # one graph for every weight: 5 ms a swap through NumPy, three swaps an epoch
            self._exchange = tf.function(self._exchange_all)
        self._exchange()
        self.swapped = averaged

    def _exchange_all(self) -> None:
        for average, weight in zip(self.average, self.model.weights):
            held = tf.identity(weight.value if isinstance(weight, keras.Variable) else weight)
            weight.assign(average)
            average.assign(held)

    def on_test_begin(self, logs: dict | None = None) -> None:
        # In until the next epoch trains (not swapped back at the test's end): checkpoints after validation save them.
        self._swap(True)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._swap(True)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._swap(False)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._swap(False)

    def averaged_weights(self) -> list[np.ndarray]:
        """The averaged weights, whichever the model holds now (``model.set_weights`` takes them)."""
        source = self.model.weights if self.swapped else self.average
        return [np.array(keras.ops.convert_to_numpy(w)) for w in source]

    def raw_weights(self) -> list[np.ndarray]:
        """The weights training goes on from."""
        source = self.average if self.swapped else self.model.weights
        return [np.array(keras.ops.convert_to_numpy(w)) for w in source]

    def restore(self, averaged: list[np.ndarray], steps: float) -> None:
        """Take up an average saved with a checkpoint (the model already holds its raw weights)."""
        self.average = [tf.Variable(np.asarray(w), trainable=False) for w in averaged]
        self._update = tf.function(self._update_average)
        self._exchange = None
        self.steps.assign(float(steps))
        self.swapped = False
