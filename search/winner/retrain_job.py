"""One retraining run: a configuration at full budget with one seed, judged once on the test split.

A run trains with early stopping that restores the best weights, reduce-LR-on-plateau, a
moving average of its weights (what each epoch validates and the checkpoint keeps; off with
``weight_average: 0``), a best checkpoint (``model.keras``) chosen by the objective on the
validation split, and TensorBoard logs; then the best checkpoint is evaluated on the test split, which the
search never saw. Everything lands in the run's own directory, ``result.json`` last
(:mod:`search.winner.runs`), so a run with a ``result.json`` is finished and a repeated
retrain skips it. Epochs are scored by the callback every engine uses
(:class:`~search.engines.scoring.EpochScorer`).

A single-task baseline run (``task`` set) trains that task's head alone on the same
backbone, with the same budget and seed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import keras

from mtl_models.fine_tune import FineTuneSchedule
from mtl_models.streaming import feed, validation
from mtl_models.spec import ModelSpec
from search.engines.averaging import WeightAverage
from search.engines.scoring import EpochScorer
from search.engines.worker import FAILURES_DIR, VAL_OBJECTIVE, TrialFailure, configure_tensorflow, fails_for_good
from search.experiment.objective import Objective, task_term
from search.experiment.prepared import Prepared
from search.rundir.directory import MODEL_FILE
from search.winner.evaluation import split_metrics
from search.winner.resumable import EpochBackup
from search.winner.runs import Job, RunResult

__all__ = ["job_objective", "run_job", "single_task_spec"]


def single_task_spec(spec: ModelSpec, task: str) -> ModelSpec:
    """The same network with ``task``'s head alone: no transfer edges, no stop-gradient, weight 1."""
    head = dataclasses.replace(spec.head(task), transfer_from=(), stop_gradient=False, loss_weight=1.0)
    return spec.replace(heads=(head,), loss_weighting="fixed", name=f"{spec.name}_{task}")


def job_objective(prepared: Prepared, job: Job) -> Objective:
    """What the run's checkpoint and early stopping maximise: the experiment's objective, or the task's score."""
    if job.task is None:
        return dataclasses.replace(prepared.objective, multi=False)
    task = next(t for t in prepared.tasks if t.name == job.task)
    return Objective((task_term(task, prepared.splits),))


def run_job(config: dict[str, Any], *, prepared: Prepared, root: str, epochs: int, patience: int) -> None:
    """The Ray Tune trainable of a retraining run (``config["job"]`` is a :meth:`Job.to_dict`).

    A run whose worker or node is lost is retried from its last epoch (resumable.py); one that raised is not
    (its reason is kept under ``root/failures``, see :func:`search.engines.worker.fails_for_good`).
    """
    with fails_for_good(str(Path(root) / FAILURES_DIR)):
        _run_job(Job(**config["job"]), prepared, Path(root), epochs, patience)


def _run_job(job: Job, prepared: Prepared, root: Path, epochs: int, patience: int) -> None:
    import ray
    from ray import tune

    directory = root / job.name
    directory.mkdir(parents=True, exist_ok=True)
    configure_tensorflow(prepared.experiment.resources.cpus, prepared.experiment.resources.gpus)
    spec, batch_size = prepared.spec_for(job.params)
    if job.task:
        spec = single_task_spec(spec, job.task)
    objective = job_objective(prepared, job)
    tasks = [t for t in prepared.tasks if t.name in {h.name for h in spec.heads}]
    keras.utils.set_random_seed(job.seed)
    from mtl_models.factory import build_model

    model = build_model(spec)
    names = tuple(t.name for t in tasks)
    train = feed(prepared.splits.train, batch_size, shuffle=True, seed=job.seed, tasks=names)
    val = validation(prepared.splits.val, batch_size, tasks=names)
    started = time.time()
    where = {"node": ray.get_runtime_context().get_node_id(), "worker": os.getpid()}  # kept with each epoch's row

    def report(row: dict[str, Any]) -> None:
        row.update(where)
        tune.report({k: v for k, v in row.items() if _finite(v)})

    # A non-finite objective must never win the checkpoint: it is logged as -inf.
    scorer = EpochScorer(objective, non_finite=-math.inf, on_row=report)
    monitor = dict(monitor=VAL_OBJECTIVE, mode="max")
    momentum = prepared.experiment.weight_average
    # The moving average of the weights is what each epoch validates and the checkpoint keeps (averaging.py).
    averaging = WeightAverage(momentum) if momentum else None
    checkpoint = keras.callbacks.ModelCheckpoint(str(directory / MODEL_FILE), save_best_only=True, **monitor)
    stopping = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True, **monitor)
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, patience // 3), min_lr=1e-6, **monitor)
    backup = EpochBackup(directory, averaging=averaging, scorer=scorer, checkpoint=checkpoint, stopping=stopping,
                         plateau=plateau)
    trained = backup.restore(model)  # a retry after a lost worker goes on from its last epoch
    started = min(started, scorer.first_step_at or started)  # the wall time counts the epochs trained before
    model.fit(
        **train, initial_epoch=trained, epochs=epochs, validation_data=val, verbose=0,
        callbacks=[
            FineTuneSchedule(spec),  # which backbone layers train in each epoch, and the rate's factor
            *([averaging] if averaging else []),  # first: the callbacks after it see the averaged weights
            scorer,  # before the callbacks below: it adds val_objective to the logs they read
            keras.callbacks.TerminateOnNaN(), checkpoint, stopping, plateau,
            keras.callbacks.TensorBoard(str(directory / "tensorboard"), write_graph=False),
            backup,  # last: it saves what the others decided at each epoch's end
        ],
    )
    ran = dict(job=job, epochs=len(scorer.rows), history=tuple(scorer.rows), wall_s=round(time.time() - started, 2))
    if scorer.failure or not (directory / MODEL_FILE).exists():
        failure = scorer.failure or "no epoch finished with a finite objective"
        result = RunResult(status="failed", failure=failure, **ran)
        result.write(directory)
        backup.clear()  # a repeated retrain starts it afresh, not from the epoch that failed
        raise TrialFailure(result.failure)
    best = keras.models.load_model(directory / MODEL_FILE, safe_mode=True)
    RunResult(status="completed", best_epoch=scorer.best_epoch,
              val_metrics=split_metrics(best, prepared.splits.val, tasks, objective, split="val"),
              test_metrics=split_metrics(best, prepared.splits.test, tasks, objective, split="test"), **ran
              ).write(directory)
    backup.clear()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
