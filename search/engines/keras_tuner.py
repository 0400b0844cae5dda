"""The single-machine engine: KerasTuner (Hyperband, BayesianOptimization or RandomSearch), no Ray.

The search space is the experiment's one declaration, translated by
:meth:`SearchSpace.sample_keras_tuner`; the objective is the same (``val_objective``, max,
scored by the epoch callback every engine uses, :class:`~search.engines.scoring.EpochScorer`);
trials are written as the same trial records and leaderboard as the Ray Tune engine's, so
``results``, ``retrain`` and ``export`` work on either. KerasTuner keeps its own state under
``<run dir>/keras_tuner/``, which is what a resume reloads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import keras
import keras_tuner as kt

from mtl_models.streaming import feed, validation
from search.engines.samplers import keras_tuner_class
from search.engines.scoring import EpochScorer
from search.engines.worker import VAL_OBJECTIVE, configure_tensorflow
from search.experiment.metrics import metric_key
from search.experiment.prepared import Prepared
from search.rundir.leaderboard import leaderboard_spec, write_leaderboard
from search.rundir.records import FINISHED, TrialRecord, best_values, load_records, trial_path

__all__ = ["KT_DIR", "fit"]

KT_DIR = "keras_tuner"

_NO_CAP = 1_000_000  # trials, where the budget has only a time limit: the deadline ends the search


class _Stop(kt.errors.FatalError):
    """The budget (trials or wall time) is spent: end the search between trials (fatal, so it is not retried)."""


class _HyperModel(kt.HyperModel):
    """KerasTuner's build function: the experiment's one space, read from ``hp``, made into a model."""

    def __init__(self, prepared: Prepared):
        super().__init__()
        self.prepared = prepared

    def build(self, hp):
        from mtl_models import build_model

        spec, _ = self.prepared.spec_for(self.prepared.experiment.space.sample_keras_tuner(hp))
        return build_model(spec)


def _tuner_class(base: type):
    class Recording(base):
        """A KerasTuner tuner that records each trial as the Ray Tune engine does."""

        def __init__(self, *args, prepared: Prepared, run_dir: Path, progress: Callable[[str], None], **kwargs):
            self.prepared, self.run_dir, self.progress = prepared, run_dir, progress
            self.task_keys = [metric_key(t.name, t.score_metric, "val") for t in prepared.tasks]
            self.started = time.time()
            super().__init__(*args, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            budget = self.prepared.experiment.budget
            done = [r for r in load_records(self.run_dir) if r.status != "running"]
            deadline = self.started + budget.time_limit_s if budget.time_limit_s else None
            if (budget.trials and len(done) >= budget.trials) or (deadline is not None and time.time() >= deadline):
                raise _Stop
            keras.utils.set_random_seed(self.prepared.experiment.seed)
            params = self.prepared.experiment.space.sample_keras_tuner(trial.hyperparameters)
            _, batch_size = self.prepared.spec_for(params)  # build() reads the same values from hp
            splits, seed = self.prepared.splits, self.prepared.experiment.seed
            kwargs.update(feed(splits.train, batch_size, shuffle=True, seed=seed),
                          validation_data=validation(splits.val, batch_size))  # batched by this trial's size
            scorer = EpochScorer(self.prepared.objective, deadline=deadline)
            kwargs["callbacks"] = [scorer, *kwargs.get("callbacks", [])]  # first: it adds val_objective to the logs
            record = TrialRecord(trial.trial_id, "running", params=params, started_at=time.time())
            record.write(trial_path(self.run_dir, trial.trial_id))
            try:
                result = super().run_trial(trial, *args, **kwargs)
            except Exception as exc:  # recorded, then KerasTuner marks the trial failed and goes on
                self._finish(record, scorer, status="failed", failure=f"{type(exc).__name__}: {exc}")
                raise
            last = scorer.rows[-1]["epoch"] if scorer.rows else 0
            status = ("completed" if last >= budget.max_epochs else "out of time" if scorer.out_of_time
                      else "stopped early")
            self._finish(record, scorer, status=status, failure=scorer.failure)
            return result

        def _finish(self, record: TrialRecord, scorer: EpochScorer, *, status: str, failure: str | None) -> None:
            rows = scorer.rows
            objectives = [row[VAL_OBJECTIVE] for row in rows]
            done = TrialRecord(**{**record.__dict__, "status": "failed" if failure else status, "failure": failure,
                                  "objective": max(objectives) if objectives and not failure else None,
                                  "task_metrics": best_values(rows, self.task_keys),
                                  "epochs": rows[-1]["epoch"] if rows else 0,
                                  "wall_s": round(time.time() - record.started_at, 2), "history": tuple(rows)})
            done.write(trial_path(self.run_dir, record.trial_id))
            records = load_records(self.run_dir)
            frame = write_leaderboard(self.run_dir, records, leaderboard_spec(self.prepared))
            finished = sum(r.status in FINISHED for r in records)
            top = frame.iloc[0] if len(frame) and frame["objective"].notna().any() else None
            best_text = f" · best objective {top['objective']:.4f} (trial {top['trial']})" if top is not None else ""
            self.progress(f"[{time.strftime('%H:%M:%S')}] {finished} done · {done.status}: trial {record.trial_id}"
                          f"{best_text}")

    return Recording


def fit(prepared: Prepared, run_dir: Path, *, progress: Callable[[str], None] = print) -> None:
    """Run (or, with state under ``run_dir/keras_tuner``, continue) the search in this process."""
    experiment = prepared.experiment
    budget = experiment.budget
    algorithm = experiment.searcher.sampler
    configure_tensorflow(experiment.resources.cpus, experiment.resources.gpus)
    options: dict[str, Any] = dict(
        objective=kt.Objective(VAL_OBJECTIVE, direction="max"), directory=str(run_dir.resolve()), project_name=KT_DIR,
        seed=experiment.seed, overwrite=False, max_consecutive_failed_trials=budget.trials or _NO_CAP,
        prepared=prepared, run_dir=run_dir, progress=progress,
    )
    if algorithm == "hyperband":
        options.update(max_epochs=budget.max_epochs, factor=max(2, int(experiment.scheduler.reduction_factor)),
                       hyperband_iterations=1000)  # stopped by the trial budget, not by the brackets
    else:
        options.update(max_trials=budget.trials or _NO_CAP)  # without a cap, the time limit ends the search
    tuner = _tuner_class(keras_tuner_class(algorithm))(_HyperModel(prepared), **options)
    train, val = prepared.splits.train, prepared.splits.val
    try:
        tuner.search(**feed(train, experiment.batch_size, shuffle=True, seed=experiment.seed),
                     validation_data=validation(val, experiment.batch_size), epochs=budget.max_epochs, verbose=0)
    except _Stop:
        pass
