"""The Ray Tune trainable: one trial builds its model, trains, reports and checkpoints each epoch.

Runs in a Ray worker process. TensorFlow is configured before it touches a device:
threads limited to the CPUs the trial was given, GPU memory growth on (so fractional
GPU trials can share a card). A NaN or infinite loss ends the trial as failed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import keras

from search.leaderboard import FINISHED
from search.prepared import Prepared

__all__ = ["FAIL_ENV", "FAILURES_DIR", "MAX_RETRIES", "TrainingClock", "TrialFailure", "configure_tensorflow",
           "fails_for_good", "train_trial"]

# Tests make some trials raise mid-training, so that failure handling is checked for real:
# this variable, set to JSON {"when": {name: value, ...}, "epoch": n}, fails every trial whose
# sampled parameters take all those values, at the end of epoch ``n``. Unset in normal use.
FAIL_ENV = "MTL_SEARCH_TEST_FAIL"


# A trial whose node is lost (a killed worker, a preempted machine) is retried from its last
# checkpoint up to this many times; a trial that raised is not (see fails_for_good).
MAX_RETRIES = 2
FAILURES_DIR = "failures"  # under the run directory: markers of trials that raised


class TrialFailure(RuntimeError):
    """A trial that cannot succeed (NaN loss, invalid sampled model); the search goes on."""


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
def fails_for_good(failures_dir: str | None):
    """Make a trial that raised fail for good, while a trial whose node died is retried.

    Ray Tune retries a trial after any error (``FailureConfig.max_failures``). Retries are for
    lost nodes; an exception from the trial itself (NaN loss, an invalid model, a bug) would
    only repeat. So the first exception leaves a marker file with its reason under
    ``failures_dir``, and a retry finding the marker re-raises that reason at once.
    """
    from ray import tune

    if not failures_dir:
        yield
        return
    marker = Path(failures_dir) / f"{tune.get_context().get_trial_id()}.txt"
    if marker.is_file():
        raise TrialFailure(marker.read_text())
    try:
        yield
    except Exception as exc:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(exc) if isinstance(exc, TrialFailure) else f"{type(exc).__name__}: {exc}")
        raise


def train_trial(config: dict[str, Any], *, prepared: Prepared, run_dir: str | None = None) -> None:
    """Train one sampled configuration, reporting every epoch to Ray Tune.

    With ``run_dir``: a trial that raised is not retried (:func:`fails_for_good`), and a trial
    the run directory already records as finished returns at once. The second case follows a
    killed driver: Ray Tune restores from its last snapshot, which can predate a trial's end.
    """
    from ray import tune

    if run_dir and _finished_before(Path(run_dir) / "trials" / f"{tune.get_context().get_trial_id()}.json"):
        return
    with fails_for_good(str(Path(run_dir) / FAILURES_DIR) if run_dir else None):
        _train(config, prepared)


def _finished_before(record: Path) -> bool:
    try:
        return json.loads(record.read_text()).get("status") in FINISHED
    except (OSError, ValueError):
        return False


def _train(config: dict[str, Any], prepared: Prepared) -> None:
    from ray import tune

    experiment = prepared.experiment
    configure_tensorflow(experiment.resources.cpus)
    from mtl_models import build_model
    from mtl_models.errors import SpecError

    params = dict(config)
    fail = json.loads(os.environ.get(FAIL_ENV) or "null")
    fail_at = fail["epoch"] if fail and all(_same(params.get(k), v) for k, v in fail["when"].items()) else None
    try:
        spec, batch_size = prepared.spec_for(params)
    except (SpecError, ValueError) as exc:
        raise TrialFailure(f"the sampled parameters give an invalid model: {exc}") from None
    keras.utils.set_random_seed(experiment.seed)

    start_epoch, state = 0, {}
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            model = keras.models.load_model(Path(directory) / "model.keras", safe_mode=True)
            state = json.loads((Path(directory) / "state.json").read_text())
            start_epoch = state["epoch"]
    else:
        model = build_model(spec)

    train, val = prepared.splits.train, prepared.splits.val
    reporter = _Reporter(prepared, start_epoch=start_epoch, state=state, fail_at=fail_at)
    model.fit(
        dict(train.inputs),
        dict(train.targets),
        batch_size=batch_size,
        epochs=experiment.budget.max_epochs,
        initial_epoch=start_epoch,
        validation_data=(dict(val.inputs), dict(val.targets)),
        callbacks=[keras.callbacks.TerminateOnNaN(), reporter],
        verbose=0,
    )
    if reporter.failure:
        raise TrialFailure(reporter.failure)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class TrainingClock(keras.callbacks.Callback):
    """When training began (the trial's start-up is over) and training seconds so far, for each epoch's record.

    Both engines' epoch callbacks derive from it; bench/engines.py reads the two figures for
    start-up overhead and slot utilisation.
    """

    first_step_at: float | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.first_step_at = time.time()

    def timing(self) -> dict[str, float]:
        return {"first_step_at": self.first_step_at, "train_s": round(time.time() - self.first_step_at, 3)}


class _Reporter(TrainingClock):
    """Reports every epoch's metrics and objective to Ray Tune, with a checkpoint to resume from."""

    def __init__(self, prepared: Prepared, *, start_epoch: int, state: dict, fail_at: int | None):
        super().__init__()
        self.prepared = prepared
        self.best = state.get("best_objective", -math.inf)
        self.fail_at = fail_at
        self.failure: str | None = None
        import ray

        self.node = ray.get_runtime_context().get_node_id()  # which node ran each epoch, for the records

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from ray import tune

        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self.fail_at is not None and epoch + 1 >= self.fail_at:
            raise TrialFailure(f"deliberate failure at epoch {epoch + 1} ({FAIL_ENV} is set)")
        if not _finite(logs.get("loss")):
            self.failure = f"loss became {logs.get('loss')} at epoch {epoch + 1}"
            self.model.stop_training = True
            return
        objective = self.prepared.objective
        metrics = {**logs, "epoch": epoch + 1, "node": self.node, **self.timing()}
        if not objective.multi:
            value = objective.value(logs)
            metrics["objective"] = value if _finite(value) else 0.0
            self.best = max(self.best, metrics["objective"])
            metrics["best_objective"] = self.best
        with tempfile.TemporaryDirectory() as directory:
            self.model.save(os.path.join(directory, "model.keras"))
            Path(directory, "state.json").write_text(json.dumps({"epoch": epoch + 1, "best_objective": self.best}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
