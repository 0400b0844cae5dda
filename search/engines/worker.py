"""What every training run needs, whichever engine runs it: TensorFlow set up for its share of the machine,
the one epoch callback that scores each epoch, and the rule that a run which raised fails for good.

:class:`EpochScorer` is used by the Ray Tune trainable, the KerasTuner engine and retraining alike,
so an epoch's objective, its NaN check and its history row are computed in one place.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable

import keras

from search.experiment.metrics import OBJECTIVE, from_keras_logs, split_key
from search.experiment.objective import Objective

__all__ = ["FAILURES_DIR", "FAILURE_KEY", "FAIL_ENV", "MAX_RETRIES", "TEST_ENV_PREFIX", "VAL_OBJECTIVE", "EpochScorer",
           "TrialFailure", "configure_tensorflow", "fails_for_good"]

# Tests make some trials raise mid-training, so that failure handling is checked for real:
# this variable, set to JSON {"when": {name: value, ...}, "epoch": n}, fails every trial whose
# sampled parameters take all those values, at the end of epoch ``n``. Unset in normal use.
TEST_ENV_PREFIX = "MTL_SEARCH_TEST_"  # the test hooks' variables, forwarded to the workers of a local Ray
FAIL_ENV = TEST_ENV_PREFIX + "FAIL"
# A run whose node is lost (a killed worker, a preempted machine) is retried up to this many
# times; a run that raised is not (see fails_for_good).
MAX_RETRIES = 2
FAILURES_DIR = "failures"  # under the run directory: markers of runs that raised
VAL_OBJECTIVE = split_key(OBJECTIVE, "val")  # the objective in Keras' logs, for callbacks to monitor


class TrialFailure(RuntimeError):
    """A run that cannot succeed (NaN loss, invalid sampled model); the search goes on."""


# A trial worker reports a TrialFailure as its trial's last result, under this key, instead of raising it:
# Ray Tune would retry the trial and replace the worker, where the worker is fine and a retry would fail again.
FAILURE_KEY = "trial_failure"


def configure_tensorflow(cpus: float) -> None:
    """Limit TensorFlow's threads to ``cpus`` and turn GPU memory growth on, before first use."""
    import tensorflow as tf

    threads = max(1, int(cpus))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # TensorFlow already initialised in this process; keep its settings
        pass
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass


@contextlib.contextmanager
def fails_for_good(failures_dir: str | None, run_id: str | None = None):
    """Make a Ray Tune run that raised fail for good, while a run whose node died is retried.

    Ray Tune retries a trial after any error (``FailureConfig.max_failures``). Retries are for
    lost nodes; an exception from the run itself (NaN loss, an invalid model, a bug) would
    only repeat. So the first exception leaves a marker file with its reason under
    ``failures_dir``, and a retry finding the marker re-raises that reason at once. ``run_id``
    names the marker (default: the Ray Tune trial this runs in).
    """
    if not failures_dir:
        yield
        return
    if run_id is None:
        from ray import tune

        run_id = tune.get_context().get_trial_id()
    marker = Path(failures_dir) / f"{run_id}.txt"
    if marker.is_file():
        raise TrialFailure(marker.read_text())
    try:
        yield
    except Exception as exc:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(exc) if isinstance(exc, TrialFailure) else f"{type(exc).__name__}: {exc}")
        raise


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
