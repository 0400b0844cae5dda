"""The Ray Tune trainable: one trial builds its model, trains, reports and checkpoints each epoch.

Runs in a Ray worker process. TensorFlow is configured before it touches a device:
threads limited to the CPUs the trial was given, GPU memory growth on (so fractional
GPU trials can share a card). A NaN or infinite loss ends the trial as failed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import keras

from search.engines.worker import (FAIL_ENV, FAILURES_DIR, VAL_OBJECTIVE, EpochScorer, TrialFailure,
                                   configure_tensorflow, fails_for_good)
from search.experiment.metrics import OBJECTIVE
from search.experiment.prepared import Prepared
from search.rundir.directory import MODEL_FILE
from search.rundir.records import FINISHED, recorded_status

__all__ = ["BEST_OBJECTIVE", "train_trial"]

BEST_OBJECTIVE = "best_objective"  # reported each epoch: the best objective so far, what the searcher is told

_STATE_FILE = "state.json"  # beside the checkpoint's model: the epoch reached and the best objective so far


def train_trial(config: dict[str, Any], *, prepared: Prepared, run_dir: str | None = None) -> None:
    """Train one sampled configuration, reporting every epoch to Ray Tune.

    With ``run_dir``: a trial that raised is not retried (:func:`fails_for_good`), and a trial
    the run directory already records as finished returns at once. The second case follows a
    killed driver: Ray Tune restores from its last snapshot, which can predate a trial's end.
    """
    from ray import tune

    if run_dir and recorded_status(run_dir, tune.get_context().get_trial_id()) in FINISHED:
        return
    with fails_for_good(str(Path(run_dir) / FAILURES_DIR) if run_dir else None):
        _train(config, prepared)


def _train(config: dict[str, Any], prepared: Prepared) -> None:
    from ray import tune

    experiment = prepared.experiment
    configure_tensorflow(experiment.resources.cpus)
    from mtl_models import build_model
    from mtl_models.errors import SpecError

    params = dict(config)
    try:
        spec, batch_size = prepared.spec_for(params)
    except (SpecError, ValueError) as exc:
        raise TrialFailure(f"the sampled parameters give an invalid model: {exc}") from None
    keras.utils.set_random_seed(experiment.seed)

    start_epoch, state = 0, {}
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            model = keras.models.load_model(Path(directory) / MODEL_FILE, safe_mode=True)
            state = json.loads((Path(directory) / _STATE_FILE).read_text())
            start_epoch = state["epoch"]
    else:
        model = build_model(spec)

    scorer = EpochScorer(prepared.objective, best=state.get(BEST_OBJECTIVE, -math.inf))
    scorer.on_row = _Reporter(scorer, multi=prepared.objective.multi, fail_at=_fail_at(params))
    train, val = prepared.splits.train, prepared.splits.val
    model.fit(
        dict(train.inputs),
        dict(train.targets),
        batch_size=batch_size,
        epochs=experiment.budget.max_epochs,
        initial_epoch=start_epoch,
        validation_data=(dict(val.inputs), dict(val.targets)),
        callbacks=[keras.callbacks.TerminateOnNaN(), scorer],
        verbose=0,
    )
    if scorer.failure:
        raise TrialFailure(scorer.failure)


def _fail_at(params: dict[str, Any]) -> int | None:
    """The epoch at which the test hook (:data:`FAIL_ENV`) fails this trial; None in normal use."""
    fail = json.loads(os.environ.get(FAIL_ENV) or "null")
    if fail and all(_same(params.get(k), v) for k, v in fail["when"].items()):
        return fail["epoch"]
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


class _Reporter:
    """Reports each scored epoch to Ray Tune with a checkpoint to resume from (the scorer's ``on_row``)."""

    def __init__(self, scorer: EpochScorer, *, multi: bool, fail_at: int | None):
        import ray

        self.scorer, self.multi, self.fail_at = scorer, multi, fail_at
        self.node = ray.get_runtime_context().get_node_id()  # which node ran each epoch, for the records

    def __call__(self, row: dict[str, Any]) -> None:
        from ray import tune

        if self.fail_at is not None and row["epoch"] >= self.fail_at:
            raise TrialFailure(f"deliberate failure at epoch {row['epoch']} ({FAIL_ENV} is set)")
        metrics = {**row, "node": self.node}
        if not self.multi:  # what ASHA and the searcher read; the best so far is what the leaderboard ranks by
            metrics[OBJECTIVE] = row[VAL_OBJECTIVE]
            metrics[BEST_OBJECTIVE] = self.scorer.best
        with tempfile.TemporaryDirectory() as directory:
            self.scorer.model.save(os.path.join(directory, MODEL_FILE))
            state = {"epoch": row["epoch"], BEST_OBJECTIVE: self.scorer.best}
            Path(directory, _STATE_FILE).write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
