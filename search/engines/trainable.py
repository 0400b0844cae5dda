"""The Ray Tune trainable: a worker that outlives its trials, training one epoch per step.

A Ray actor imports TensorFlow, receives the data and sets up its threads once (:meth:`setup`);
each trial it is given after that (:meth:`reset_config`, Ray Tune's ``reuse_actors``) only
builds its model. One :meth:`step` trains one epoch and returns that epoch's scored row, so
the scheduler decides between epochs. Every epoch is checkpointed (the weights, the optimizer's state,
the weights' moving average and the best objective so far), which a resumed search or a retry on
another node starts from.

A trial that cannot succeed (a NaN loss, an invalid sampled model: :class:`TrialFailure`) ends with
its reason as its last result, and its worker takes on the next trial. Anything else it raises fails
it for good (:func:`fails_for_good`) on a fresh worker. A worker that could not take on its next trial
is not that trial's fault: the trial raises :class:`ReuseFailure` at its first step, which Ray Tune
retries on a fresh worker.

Keras is imported inside the methods, which run in the workers: the driver, which only names this class,
never imports TensorFlow, so Ray starts while the driver would otherwise still be importing it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ray import tune

from search.engines.checkpoint import STATE_FILE, load_training, save_training
from search.engines.cooldown import Cooldown
from search.engines.lead import LEAD_FILE, waits
from search.engines.worker import (FAIL_ENV, FAILURE_KEY, FAILURES_DIR, TEST_ENV_PREFIX, VAL_OBJECTIVE, TrialFailure,
                                   configure_tensorflow, fails_for_good)
from search.experiment.metrics import OBJECTIVE
from search.experiment.prepared import Prepared
from search.rundir.directory import MODEL_FILE
from search.rundir.records import FINISHED, recorded_status

__all__ = ["BEST_OBJECTIVE", "EPOCH_SLEEP_ENV", "LR_SCALE", "RESET_FAIL_ENV", "ReuseFailure", "TrialTrainable"]

BEST_OBJECTIVE = "best_objective"  # reported each epoch: the best objective so far, what the searcher is told
LR_SCALE = "lr_scale"  # reported each epoch: what the cooldown multiplied the trial's learning rate by
# Tests make a worker fail to take on a trial: set to JSON {"when": {name: value, ...}}, a worker given a trial
# whose sampled parameters take all those values fails to reset for it. Unset in normal use.
RESET_FAIL_ENV = TEST_ENV_PREFIX + "FAIL_RESET"
# Tests slow every trial down: seconds to wait after each epoch, so that the fault tests are shown to hold
# however long an epoch takes. Unset in normal use.
EPOCH_SLEEP_ENV = TEST_ENV_PREFIX + "EPOCH_SLEEP"


class ReuseFailure(RuntimeError):
    """A worker could not take on its next trial; Ray Tune retries the trial on a fresh worker."""


class TrialTrainable(tune.Trainable):
    """Trains sampled configurations, one at a time, one epoch per :meth:`step`."""

    def setup(self, config: dict[str, Any], *, prepared: Prepared, run_dir: str | None = None,
              cooldown: Cooldown | None = None) -> None:
        self.prepared, self.run_dir, self.cooldown = prepared, run_dir, cooldown
        configure_tensorflow(trial_threads(prepared), prepared.experiment.resources.gpus)
        self._begin(config)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Take on the next trial in this worker. Never returns False: in Ray 2.60 that ends the trial
        without telling the searcher, which keeps its slot taken for good. A failure is raised at the
        trial's first step instead, where Ray Tune retries it on a fresh worker."""
        try:
            if _matches(new_config, RESET_FAIL_ENV):
                raise RuntimeError(f"deliberate reuse failure ({RESET_FAIL_ENV} is set)")
            self._begin(new_config)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the trial deserves a fresh worker
            self.reuse_failure = f"worker could not take on trial {self.trial_id}: {type(exc).__name__}: {exc}"
        return True

    def _begin(self, config: dict[str, Any]) -> None:
        """The trial's model, from scratch (a checkpoint, if any, is loaded after this)."""
        import keras

        from mtl_models import build_model
        from mtl_models.errors import SpecError
        from search.engines.averaging import WeightAverage
        from search.engines.scoring import EpochScorer

        self.reuse_failure: str | None = None
        self.invalid: str | None = None
        self.params = dict(config)
        self.epoch = 0
        self.finished_before = bool(self.run_dir) and recorded_status(self.run_dir, self.trial_id) in FINISHED
        keras.backend.clear_session()  # the previous trial's graph and layer names go
        keras.utils.set_random_seed(self.prepared.experiment.seed)
        self.model = None
        try:
            spec, self.batch_size = self.prepared.spec_for(self.params)
            self.spec, self.learning_rate = spec, spec.optimizer.learning_rate
            self.model = build_model(spec)
        except (SpecError, ValueError) as exc:
            self.invalid = f"the sampled parameters give an invalid model: {exc}"
        self.scorer = EpochScorer(self.prepared.objective)
        momentum = self.prepared.experiment.weight_average
        self.averaging = WeightAverage(momentum) if momentum else None
        self.fail_at = _fail_at(self.params)

    def step(self) -> dict[str, Any]:
        if self.reuse_failure:
            raise ReuseFailure(self.reuse_failure)
        if self.finished_before:  # a restored driver's snapshot can predate this trial's end: nothing to do
            return self._ending_result()
        failures = str(Path(self.run_dir) / FAILURES_DIR) if self.run_dir else None
        if self.epoch == 0 and self.run_dir:  # another trial may lead alone for now (lead.py)
            waits(Path(self.run_dir) / LEAD_FILE, self.trial_id)
        try:
            with fails_for_good(failures, self.trial_id):  # anything else raised: retried on a fresh worker
                return self._train_epoch()
        except TrialFailure as exc:  # the trial's own fault: it ends, failed, and this worker takes the next one
            return self._ending_result(**{FAILURE_KEY: str(exc)})

    def _ending_result(self, **extra: Any) -> dict[str, Any]:
        """A result that ends the trial without an epoch. Ray Tune insists every result names the searcher's
        metrics; they are None here, and the searcher and scheduler ignore such a result."""
        objective = self.prepared.objective
        metrics = list(objective.metric) if objective.multi else [BEST_OBJECTIVE]
        return {"done": True, **dict.fromkeys(metrics), **extra}

    def _train_epoch(self) -> dict[str, Any]:
        import keras
        import tensorflow as tf

        from mtl_models.fine_tune import apply_fine_tune
        from mtl_models.streaming import decode_failure, feed, is_streamed, validation

        if self.invalid:
            raise TrialFailure(self.invalid)
        train, val = self.prepared.splits.train, self.prepared.splits.val
        lr_scale = self.cooldown.lr_scale() if self.cooldown else 1.0
        # The backbone's fine-tuning schedule: which of its layers train this epoch, and the rate's factor.
        rate = apply_fine_tune(self.model, self.spec, self.epoch, self.learning_rate)
        self.model.optimizer.learning_rate.assign(rate * lr_scale)  # after a checkpoint too
        seed = self.prepared.experiment.seed
        try:
            self.model.fit(**feed(train, self.batch_size, shuffle=True, seed=seed, per_epoch=True),
                           initial_epoch=self.epoch, epochs=self.epoch + 1,
                           validation_data=validation(val, self.batch_size),
                           callbacks=self._callbacks(keras), verbose=0)
        except tf.errors.OpError:  # a file that passed the checks before the search but cannot be decoded
            unreadable = is_streamed(train) and (decode_failure(train) or decode_failure(val))
            if unreadable:
                raise TrialFailure(unreadable) from None
            raise
        if self.scorer.failure:
            raise TrialFailure(self.scorer.failure)
        self.epoch += 1
        row = self.scorer.rows[-1]
        time.sleep(float(os.environ.get(EPOCH_SLEEP_ENV) or 0))
        if self.fail_at is not None and row["epoch"] >= self.fail_at:
            raise TrialFailure(f"deliberate failure at epoch {row['epoch']} ({FAIL_ENV} is set)")
        metrics = {**row, LR_SCALE: lr_scale, "node": self.node, "worker": os.getpid()}
        if not self.prepared.objective.multi:  # what ASHA and the searcher read; the best so far is what ranks
            metrics[OBJECTIVE] = row[VAL_OBJECTIVE]
            metrics[BEST_OBJECTIVE] = self.scorer.best
        return metrics

    def _callbacks(self, keras) -> list:
        # The averaged weights are validated (averaging.py); the model trains on from the raw ones.
        averaging = [self.averaging] if self.averaging else []
        return [*averaging, keras.callbacks.TerminateOnNaN(), self.scorer]

    @property
    def node(self) -> str:
        """Which node ran each epoch, for the records (``worker``: which process)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.model is None:
            return
        save_training(Path(checkpoint_dir), self.model, self.averaging,
                      {"epoch": self.epoch, BEST_OBJECTIVE: self.scorer.best, "best_epoch": self.scorer.best_epoch})

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        if self.model is None:  # an invalid model has no checkpoint to go on from
            return
        whole_model = Path(checkpoint_dir, MODEL_FILE)
        if whole_model.is_file():  # kept by an earlier version, which saved the whole model every epoch
            import keras

            self.model = keras.models.load_model(whole_model, safe_mode=True)
            state = json.loads(Path(checkpoint_dir, STATE_FILE).read_text())
        else:
            state = load_training(Path(checkpoint_dir), self.model, self.averaging)
        self.epoch = state["epoch"]
        self.scorer.best, self.scorer.best_epoch = state[BEST_OBJECTIVE], state.get("best_epoch", 0)

    def cleanup(self) -> None:
        import keras

        self.model = None
        keras.backend.clear_session()


def trial_threads(prepared: Prepared) -> int:
    """TensorFlow threads for a trial: the CPUs it would have if the other trials' slots on its node were idle.

    Ray reserves ``resources.cpus`` per trial; the trial's thread pool is sized to ``cpus x concurrency``
    (at most the node's CPUs), so when slots fall idle at a search's end the trials still running use
    the freed cores, without a restart. On a 2-core machine two such trials running at once train as
    fast in total as two single-threaded ones (bench/throughput.py measures both).
    """
    import ray

    experiment = prepared.experiment
    wanted = max(1, int(experiment.resources.cpus * experiment.concurrency))
    node_id = ray.get_runtime_context().get_node_id()
    node_cpus = next((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["NodeID"] == node_id), os.cpu_count())
    return max(1, min(wanted, int(node_cpus or 1)))


def _matches(params: dict[str, Any], env: str) -> dict | None:
    """The test hook in ``env`` if it names this trial's parameters; None in normal use."""
    hook = json.loads(os.environ.get(env) or "null")
    if hook and all(_same(params.get(k), v) for k, v in hook["when"].items()):
        return hook
    return None


def _fail_at(params: dict[str, Any]) -> int | None:
    """The epoch at which the test hook (:data:`FAIL_ENV`) fails this trial; None in normal use."""
    hook = _matches(params, FAIL_ENV)
    return hook["epoch"] if hook else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b
