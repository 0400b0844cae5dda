"""The main engine: Ray Tune's Tuner with the Optuna searcher (TPE by default) and ASHA.

Single-objective searches run ASHA on ``objective`` (max); multi-objective ones run
Optuna's multi-objective study with FIFO (ASHA needs one metric). The Optuna study is
a real RDB study (SQLite in the run directory by default), so optuna-dashboard opens it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from search.prepared import Prepared
from search.recorder import Recorder
from search.engines.common import leaderboard_spec
from search.trainable import MAX_RETRIES, train_trial

__all__ = ["TUNE_DIR", "make_sampler", "leaderboard_spec", "fit", "restore"]

TUNE_DIR = "tune"  # Ray Tune's experiment directory name under the storage path


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name, seeded."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(f"Unknown sampler {name!r}.")


def _trainable(prepared: Prepared, run_dir: Path):
    resources = prepared.experiment.resources
    return tune.with_resources(
        tune.with_parameters(train_trial, prepared=prepared, run_dir=str(run_dir.resolve())),
        {"cpu": resources.cpus, "gpu": resources.gpus},
    )


def _recorder(prepared: Prepared, run_dir: Path, progress: Callable[[str], None]) -> Recorder:
    objective = prepared.objective
    return Recorder(
        run_dir,
        leaderboard_spec(prepared),
        max_epochs=prepared.experiment.budget.max_epochs,
        task_keys=[f"{t.name}_{t.score_metric}" for t in prepared.tasks],
        objective_keys=[t.key for t in objective.terms] if objective.multi else [],
        time_limit_s=prepared.experiment.budget.time_limit_s,
        progress=progress,
    )


def fit(prepared: Prepared, run_dir: Path, *, storage_path: Path, study_storage: str,
        progress: Callable[[str], None] = print) -> tune.ResultGrid:
    """Run the search to its budget (or until interrupted). Results land in ``run_dir``."""
    experiment = prepared.experiment
    objective = prepared.objective
    searcher = OptunaSearch(
        space=experiment.space.sample_optuna,
        metric=objective.metric,
        mode=objective.mode,
        sampler=make_sampler(experiment.searcher.sampler, experiment.seed),
        study_name=experiment.name,
        storage=optuna.storages.RDBStorage(study_storage),
        seed=experiment.seed,
        points_to_evaluate=[experiment.space.encode_point(p) for p in experiment.searcher.initial_points] or None,
    )
    if objective.multi:
        scheduler = FIFOScheduler()
    else:
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            metric="objective",
            mode="max",
            max_t=experiment.budget.max_epochs,
            grace_period=min(experiment.scheduler.grace_period, experiment.budget.max_epochs),
            reduction_factor=experiment.scheduler.reduction_factor,
        )
    tuner = tune.Tuner(
        _trainable(prepared, run_dir),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=experiment.budget.trials,
            max_concurrent_trials=experiment.concurrency,
            time_budget_s=experiment.budget.time_limit_s,
            # reuse_actors stays off: it saved ~10 s of worker start per trial, but in Ray 2.60 a
            # failed reuse ("Could not re-use actor ... reset_config()") left the next trial pending
            # for good and its slot idle (bench/engines.py, ray-asha seed 0: 60 % utilisation).
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(storage_path.resolve()),
            verbose=0,
            callbacks=[_recorder(prepared, run_dir, progress)],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
            stop={"training_iteration": experiment.budget.max_epochs},
        ),
    )
    return tuner.fit()


def restore(prepared: Prepared, run_dir: Path, *, storage_path: Path,
            progress: Callable[[str], None] = print) -> tune.ResultGrid:
    """Continue an interrupted search: finished trials are kept, unfinished ones resume from checkpoints."""
    path = str((storage_path / TUNE_DIR).resolve())
    tuner = tune.Tuner.restore(path, trainable=_trainable(prepared, run_dir), resume_unfinished=True, resume_errored=False)
    # The driver-side callback is not restored from the saved state: attach a fresh one.
    tuner._local_tuner._run_config.callbacks = [_recorder(prepared, run_dir, progress)]
    return tuner.fit()
