"""The main engine: Ray Tune's Tuner with the Optuna searcher (TPE by default) and ASHA.

Single-objective searches run ASHA on ``objective`` (max); multi-objective ones run
Optuna's multi-objective study with FIFO (ASHA needs one metric). The Optuna study is
a real RDB study (SQLite in the run directory by default), so optuna-dashboard opens it.

The study and the leaderboard agree: Optuna is told each trial's best objective over its
epochs (what the leaderboard ranks by), every study trial carries its Ray Tune trial id
(user attribute ``ray_trial_id``), and trials that the time limit ended, which Ray Tune
never reports to its searcher, are told when the search ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from search.leaderboard import FINISHED, TrialRecord
from search.objective import Objective
from search.prepared import Prepared
from search.recorder import Recorder
from search.engines.common import leaderboard_spec
from search.trainable import MAX_RETRIES, train_trial

__all__ = ["TUNE_DIR", "TRIAL_ATTR", "make_sampler", "leaderboard_spec", "fit", "restore", "settle_study"]

TUNE_DIR = "tune"  # Ray Tune's experiment directory name under the storage path
TRIAL_ATTR = "ray_trial_id"  # the study trial's user attribute naming its Ray Tune trial


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


class _Search(OptunaSearch):
    """Ray's OptunaSearch, tagging each study trial with the Ray Tune trial it configures."""

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        if trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr(TRIAL_ATTR, trial_id)
        return params


def settle_study(prepared: Prepared, study_storage: str, records: Iterable[TrialRecord], *, ended: bool) -> int:
    """Tell the study how the trials it still holds as running ended, as the records say; returns how many.

    Ray Tune ends the trials still running at its time limit without telling its searcher, which
    would leave them RUNNING in the study for good. Interrupted trials stay running: a resume
    continues them. When the search has ``ended`` (its budget is spent), a trial the searcher
    suggested but Ray Tune never started is told FAIL, with the reason as user attribute ``ended``.
    """
    by_id = {r.trial_id: r for r in records}
    storage = optuna.storages.get_storage(study_storage)
    study = optuna.load_study(study_name=prepared.experiment.name, storage=storage)
    study_id = storage.get_study_id_from_name(prepared.experiment.name)
    told = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if TRIAL_ATTR not in trial.user_attrs:
            continue  # from a run before trials were tagged
        record = by_id.get(trial.user_attrs[TRIAL_ATTR])
        if record is None and ended:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(trial_id, "ended", "never started: the search's budget ran out first")
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        elif record is not None and record.status in FINISHED:
            study.tell(trial.number, *_outcome(record, prepared.objective))
        else:
            continue
        told += 1
    return told


def _outcome(record: TrialRecord, objective: Objective) -> tuple[float | list[float] | None, optuna.trial.TrialState]:
    """The values and state a finished trial's record gives its study trial."""
    if record.status == "failed":
        return None, optuna.trial.TrialState.FAIL
    if objective.multi:
        values = [(record.objectives or {}).get(t.key.removeprefix("val_")) for t in objective.terms]
    else:
        values = [record.objective]
    if any(v is None for v in values):
        return None, optuna.trial.TrialState.PRUNED
    return (values if objective.multi else values[0]), optuna.trial.TrialState.COMPLETE


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
    searcher = _Search(
        space=experiment.space.sample_optuna,
        # the best objective so far, not the last epoch's: the value the leaderboard ranks by
        metric=objective.metric if objective.multi else "best_objective",
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
