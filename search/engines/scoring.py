"""The one epoch callback every training run uses: the Ray Tune trainable, the KerasTuner engine and
retraining, so an epoch's objective, its NaN check and its history row are computed in one place."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import keras

from search.engines.worker import VAL_OBJECTIVE
from search.experiment.metrics import from_keras_logs
from search.experiment.objective import Objective

__all__ = ["EpochScorer"]


class EpochScorer(keras.callbacks.Callback):
    """Scores every epoch: its metrics in the project's vocabulary, the objective, a NaN check, the timing.

    Adds ``val_objective`` to Keras' logs, so that callbacks after it (a checkpoint, early stopping,
    KerasTuner's objective) can monitor it; where the objective is not finite it is logged as
    ``non_finite``. A non-finite training loss stops training and sets ``failure``. Each epoch's row
    (``epoch``, ``train_*`` and ``val_*`` metrics, ``val_objective``, ``learning_rate``, ``first_step_at``
    (when training began, after the run's start-up) and ``train_s`` (training seconds so far)) is kept
    in ``rows`` and, unless the epoch failed, handed to ``on_row``. Past ``deadline`` (unix time)
    training stops at the end of the epoch and ``out_of_time`` is set.
    """

    def __init__(self, objective: Objective, *, non_finite: float = 0.0, best: float = -math.inf,
                 deadline: float | None = None, on_row: Callable[[dict[str, Any]], None] | None = None):
        super().__init__()
        self.objective = objective
        self.non_finite = non_finite
        self.best, self.best_epoch = best, 0  # the best val_objective and its epoch
        self.deadline = deadline
        self.on_row = on_row
        self.rows: list[dict[str, Any]] = []
        self.failure: str | None = None
        self.out_of_time = False
        self.first_step_at: float | None = None

    def __deepcopy__(self, memo):  # KerasTuner deep-copies callbacks per trial; this one is per run already
        return self

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.first_step_at is None:  # the first of several fit calls, where a run trains an epoch per call
            self.first_step_at = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        row: dict[str, Any] = {"epoch": epoch + 1, **from_keras_logs(logs, self.model.output_names)}
        value = self.objective.value(row, split="val")
        logs[VAL_OBJECTIVE] = row[VAL_OBJECTIVE] = value if math.isfinite(value) else self.non_finite
        if row[VAL_OBJECTIVE] > self.best:
            self.best, self.best_epoch = row[VAL_OBJECTIVE], epoch + 1
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row.update(first_step_at=self.first_step_at, train_s=round(time.time() - self.first_step_at, 3))
        self.rows.append(row)
        loss = row.get("train_loss", math.nan)
        if not math.isfinite(loss):
            self.failure = f"loss became {loss} at epoch {epoch + 1}"
            self.model.stop_training = True
        elif self.on_row is not None:
            self.on_row(row)
        if self.deadline is not None and time.time() >= self.deadline:
            self.model.stop_training = True
            self.out_of_time = True
