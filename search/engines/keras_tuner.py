"""The single-machine engine: KerasTuner (Hyperband, BayesianOptimization or RandomSearch), no Ray.

The search space is the experiment's one declaration, translated by
:meth:`SearchSpace.sample_keras_tuner`; the objective is the same (``val_objective``, max,
computed from the same per-task scores); trials are written as the same trial records and
leaderboard as the Ray Tune engine's, so ``results``, ``retrain`` and ``export`` work on
either. KerasTuner keeps its own state under ``<run dir>/keras_tuner/``, which is what a
resume reloads.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import keras
import keras_tuner as kt

from search.engines.common import leaderboard_spec
from search.leaderboard import FINISHED, TrialRecord, load_records, write_leaderboard
from search.prepared import Prepared
from search.trainable import TrainingClock, configure_tensorflow

__all__ = ["KT_DIR", "fit"]

KT_DIR = "keras_tuner"
MONITOR = "val_objective"


class _Stop(kt.errors.FatalError):
    """The budget (trials or wall time) is spent: end the search between trials (fatal, so it is not retried)."""


class _Objective(TrainingClock):
    """Adds ``val_objective`` to each epoch's logs (KerasTuner's objective) and keeps the history.

    Past ``deadline`` (the wall-time budget) it stops the trial at the end of the epoch, as Ray
    Tune's time budget stops its running trials.
    """

    def __init__(self, prepared: Prepared, deadline: float | None):
        super().__init__()
        self.prepared = prepared
        self.deadline = deadline
        self.rows: list[dict[str, float]] = []
        self.out_of_time = False  # the deadline ended the trial

    def __deepcopy__(self, memo):  # KerasTuner deep-copies callbacks per trial; this one is per trial already
        return self

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        value = self.prepared.objective.value({k: float(v) for k, v in logs.items()})
        logs[MONITOR] = value if math.isfinite(value) else 0.0
        self.rows.append({"epoch": epoch + 1, "objective": logs[MONITOR],
                          **{k: float(v) for k, v in logs.items() if k != MONITOR}, **self.timing()})
        if self.deadline is not None and time.time() >= self.deadline:
            self.model.stop_training = True
            self.out_of_time = True


class _HyperModel(kt.HyperModel):
    def __init__(self, prepared: Prepared):
        super().__init__()
        self.prepared = prepared

    def build(self, hp):
        from mtl_models import build_model

        spec, _ = self.prepared.spec_for(self.prepared.experiment.space.sample_keras_tuner(hp))
        return build_model(spec)

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        params = self.prepared.experiment.space.sample_keras_tuner(hp)
        _, batch_size = self.prepared.spec_for(params)
        kwargs["batch_size"] = batch_size
        return model.fit(*args, callbacks=callbacks, **kwargs)


def _tuner_class(base: type):
    class Recording(base):
        """A KerasTuner tuner that records each trial as the Ray Tune engine does."""

        def __init__(self, *args, prepared: Prepared, run_dir: Path, progress: Callable[[str], None], **kwargs):
            self.prepared, self.run_dir, self.progress = prepared, run_dir, progress
            self.started = time.time()
            super().__init__(*args, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            budget = self.prepared.experiment.budget
            done = [r for r in load_records(self.run_dir) if r.status != "running"]
            deadline = self.started + budget.time_limit_s if budget.time_limit_s else None
            if len(done) >= budget.trials or (deadline is not None and time.time() >= deadline):
                raise _Stop
            keras.utils.set_random_seed(self.prepared.experiment.seed)
            history = _Objective(self.prepared, deadline)
            kwargs["callbacks"] = [history, *kwargs.get("callbacks", [])]
            params = self.prepared.experiment.space.sample_keras_tuner(trial.hyperparameters)
            record = TrialRecord(trial.trial_id, "running", params=params, started_at=time.time())
            record.write(self.run_dir / "trials" / f"{trial.trial_id}.json")
            try:
                result = super().run_trial(trial, *args, **kwargs)
            except Exception as exc:  # recorded, then KerasTuner marks the trial failed and goes on
                self._finish(record, history, status="failed", failure=f"{type(exc).__name__}: {exc}")
                raise
            last = history.rows[-1]["epoch"] if history.rows else 0
            bad = [row["epoch"] for row in history.rows if not math.isfinite(row.get("loss", math.nan))]
            status = "completed" if last >= budget.max_epochs else "out of time" if history.out_of_time else "stopped early"
            self._finish(record, history, status=status,
                         failure=f"loss became nan at epoch {bad[0]}" if bad else None)
            return result

        def _finish(self, record: TrialRecord, history: _Objective, *, status: str, failure: str | None) -> None:
            if failure:
                status = "failed"
            tasks = [f"{t.name}_{t.score_metric}" for t in self.prepared.tasks]
            best = {}
            for key in tasks:
                values = [row[f"val_{key}"] for row in history.rows if f"val_{key}" in row]
                if values:
                    best[key] = min(values) if key.rsplit("_", 1)[-1] in ("mae", "mse", "rmse") else max(values)
            objectives = [row["objective"] for row in history.rows]
            done = TrialRecord(**{**record.__dict__, "status": status, "failure": failure,
                                  "objective": max(objectives) if objectives and not failure else None,
                                  "task_metrics": best, "epochs": history.rows[-1]["epoch"] if history.rows else 0,
                                  "wall_s": round(time.time() - record.started_at, 2), "history": tuple(history.rows)})
            done.write(self.run_dir / "trials" / f"{record.trial_id}.json")
            frame = write_leaderboard(self.run_dir, load_records(self.run_dir), leaderboard_spec(self.prepared))
            finished = sum(r.status in FINISHED for r in load_records(self.run_dir))
            top = frame.iloc[0] if len(frame) and frame["objective"].notna().any() else None
            best_text = f" · best objective {top['objective']:.4f} (trial {top['trial']})" if top is not None else ""
            self.progress(f"[{time.strftime('%H:%M:%S')}] {finished} done · {status}: trial {record.trial_id}"
                          f"{best_text}")

    return Recording


_ALGORITHMS = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization, "random": kt.RandomSearch}


def fit(prepared: Prepared, run_dir: Path, *, progress: Callable[[str], None] = print) -> None:
    """Run (or, with state under ``run_dir/keras_tuner``, continue) the search in this process."""
    experiment = prepared.experiment
    budget = experiment.budget
    algorithm = experiment.searcher.sampler
    configure_tensorflow(experiment.resources.cpus)
    options: dict[str, Any] = dict(
        objective=kt.Objective(MONITOR, direction="max"), directory=str(run_dir.resolve()), project_name=KT_DIR,
        seed=experiment.seed, overwrite=False, max_consecutive_failed_trials=budget.trials,
        prepared=prepared, run_dir=run_dir, progress=progress,
    )
    if algorithm == "hyperband":
        options.update(max_epochs=budget.max_epochs, factor=max(2, int(experiment.scheduler.reduction_factor)),
                       hyperband_iterations=1000)  # stopped by the trial budget, not by the brackets
    else:
        options.update(max_trials=budget.trials)
    tuner = _tuner_class(_ALGORITHMS[algorithm])(_HyperModel(prepared), **options)
    train, val = prepared.splits.train, prepared.splits.val
    try:
        tuner.search(dict(train.inputs), dict(train.targets), validation_data=(dict(val.inputs), dict(val.targets)),
                     epochs=budget.max_epochs, verbose=0)
    except _Stop:
        pass
