"""The main engine: Ray Tune's Tuner with the Optuna searcher (TPE by default) and successive halving.

Single-objective searches stop trials by :class:`~search.engines.rungs.Rungs` on the best objective
so far; multi-objective ones run Optuna's multi-objective study with FIFO (halving needs one metric).
A time limit is spent in three stretches: the first trial alone while it learns fast (``budget.lead``,
lead.py), then the search, then a cooldown in which no trial starts, only the leaders train on and their
learning rates anneal (``budget.cooldown``, cooldown.py).
Trial workers outlive their trials (``reuse_actors``, see trainable.py). The Optuna study is
a real RDB study (SQLite in the run directory by default), so optuna-dashboard opens it.

The study and the leaderboard agree: Optuna is told each trial's best objective over its
epochs (what the leaderboard ranks by), every study trial carries its Ray Tune trial id
(user attribute ``ray_trial_id``) and, once it has ended, its leaderboard row's status, task
metrics and epochs (user attributes, :func:`~search.rundir.leaderboard.trial_attrs`), and trials
that the time limit ended, which Ray Tune never reports to its searcher, are told when the search ends.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator

import optuna
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from search.engines import recorder
from search.engines.attached import attach, attached
from search.engines.cooldown import Cooldown
from search.engines.lead import LEAD_FILE, Lead
from search.engines.rungs import Rungs
from search.engines.samplers import make_sampler
from search.engines.trainable import BEST_OBJECTIVE, TrialTrainable
from search.engines.worker import FAILURE_KEY, MAX_RETRIES
from search.errors import SearchError
from search.experiment.objective import Objective
from search.experiment.prepared import Prepared
from search.rundir.leaderboard import leaderboard_spec, trial_attrs
from search.rundir.records import FINISHED, SCHEDULER_FILE, TrialRecord, atomic_write

__all__ = ["TRIAL_ATTR", "TUNE_DIR", "RungScheduler", "fit", "restore", "settle_study"]

TUNE_DIR = "tune"  # Ray Tune's experiment directory name under the storage path
TRIAL_ATTR = "ray_trial_id"  # the study trial's user attribute naming its Ray Tune trial
# The rungs' horizon without budget.max_epochs: far above what a search trains, so the time limit, not an epoch
# cap, decides how long the trials that keep winning train.
HORIZON = 100_000


class _Search(OptunaSearch):
    """Ray's OptunaSearch, tagging each study trial with the Ray Tune trial it configures (and telling the
    study FAIL for a trial whose last result reports its failure). The first trial it suggests leads (lead.py);
    in the run's cooldown it suggests nothing (Ray Tune asks again later)."""

    run_key: str | None = None  # the run directory, whose lead and cooldown this process has attached

    def suggest(self, trial_id: str) -> dict | None:
        cooldown, lead = attached(self.run_key, "cooldown"), attached(self.run_key, "lead")
        if cooldown and cooldown.active():
            return None
        params = None
        with self._study_writes():
            params = super().suggest(trial_id)
        if params is not None and lead:
            lead.began(trial_id)
        if trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr(TRIAL_ATTR, trial_id)
        return params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if _is_epoch(result):
            with self._study_writes():
                super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and result.get(FAILURE_KEY):  # a trial that failed reports it as its last result
            result, error = None, True
        elif result and not _is_epoch(result):  # ended without an epoch: nothing new to tell
            result = None
        record = attached(self.run_key, "recorder")
        ending = record.ending(trial_id) if record else None  # its leaderboard row, once the recorder hears of it
        if error and ending and ending.status != "failed":
            return  # a lost worker: its reason is recorded after this, and settle_study tells the study then
        with self._study_writes():  # left undone on a full disk: settle_study tells the study at the end
            if ending and trial_id in self._ot_trials:  # a finished study trial's attributes cannot change
                for key, value in trial_attrs(ending, record.spec).items():
                    self._ot_trials[trial_id].set_user_attr(key, value)
            super().on_trial_complete(trial_id, result, error)

    @contextlib.contextmanager
    def _study_writes(self) -> Iterator[None]:
        """A study on a full disk stops the search (disk.py) rather than failing it."""
        try:
            yield
        except optuna.exceptions.StorageInternalError as exc:
            disk = attached(self.run_key, "disk")
            if disk is None or not disk.study_failed(exc):
                raise


def _is_epoch(result: dict) -> bool:
    """Whether a trial's result is an epoch's (not a last result that only ends the trial)."""
    return "epoch" in result and not result.get(FAILURE_KEY)


def settle_study(prepared: Prepared, study_storage: str, records: Iterable[TrialRecord], *, ended: bool) -> int:
    """Tell the study how the trials it still holds as running ended, as the records say; returns how many.

    Ray Tune ends the trials still running at its time limit without telling its searcher, which
    would leave them RUNNING in the study for good. Interrupted trials stay running: a resume
    continues them. When the search has ``ended`` (its budget is spent), a trial the searcher
    suggested but Ray Tune never started is told FAIL, with the reason as user attribute ``ended``.
    """
    by_id, spec = {r.trial_id: r for r in records}, leaderboard_spec(prepared)
    storage = optuna.storages.get_storage(study_storage)
    study = optuna.load_study(study_name=prepared.experiment.name, storage=storage)
    study_id = storage.get_study_id_from_name(prepared.experiment.name)
    told = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if TRIAL_ATTR not in trial.user_attrs:
            continue  # from a run before trials were tagged
        record = by_id.get(trial.user_attrs[TRIAL_ATTR])
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        if record is None and ended:
            storage.set_trial_user_attr(trial_id, "ended", "never started: the search's budget ran out first")
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        elif record is not None and record.status in FINISHED:
            for key, value in trial_attrs(record, spec).items():
                storage.set_trial_user_attr(trial_id, key, value)
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
        values = [(record.objectives or {}).get(t.key()) for t in objective.terms]
    else:
        values = [record.objective]
    if any(v is None for v in values):
        return None, optuna.trial.TrialState.PRUNED
    return (values if objective.multi else values[0]), optuna.trial.TrialState.COMPLETE


def _trainable(prepared: Prepared, run_dir: Path, cooldown: Cooldown | None):
    resources = prepared.experiment.resources
    return tune.with_resources(
        tune.with_parameters(TrialTrainable, prepared=prepared, run_dir=str(run_dir.resolve()), cooldown=cooldown),
        {"cpu": resources.cpus, "gpu": resources.gpus},
    )


def fit(prepared: Prepared, run_dir: Path, *, storage_path: Path, study_storage: str,
        progress: Callable[[str], None] = print) -> tune.ResultGrid:
    """Run the search to its budget (or until interrupted). Results land in ``run_dir``."""
    experiment = prepared.experiment
    with recorder.attach(prepared, run_dir, progress) as record, \
            _budgeting(prepared, run_dir, fresh=True, record=record) as parts:
        tuner = tune.Tuner(
            _trainable(prepared, run_dir, parts["cooldown"]),
            tune_config=tune.TuneConfig(
                search_alg=_searcher(prepared, study_storage, run_dir),
                scheduler=_scheduler(prepared, run_dir),
                num_samples=experiment.budget.trials or -1,  # -1: until the time limit
                max_concurrent_trials=experiment.concurrency,
                time_budget_s=experiment.budget.time_limit_s,
                # A worker keeps its TensorFlow, data and threads from one trial to the next; its
                # reset_config never reports failure, which Ray 2.60 handles badly (see trainable.py).
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=str(storage_path.resolve()),
                verbose=0,
                callbacks=[record],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_frequency=1),
                failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
                stop={"training_iteration": experiment.budget.max_epochs} if experiment.budget.max_epochs else None,
            ),
        )
        return tuner.fit()


def _budgeting(prepared: Prepared, run_dir: Path, *, fresh: bool, record: recorder.Recorder):
    """The cooldown and lead of a fit or restore starting now, attached for its searcher and scheduler with the
    run's recorder and its disk guard. A lead needs a fresh single-objective search with more than one slot and a
    first point to lead with."""
    experiment = prepared.experiment
    budget, leads = experiment.budget, fresh and experiment.concurrency > 1 and not prepared.objective.multi
    (run_dir / LEAD_FILE).unlink(missing_ok=True)  # a resumed search's workers must not wait on an old lead
    scheduler = experiment.scheduler  # the lead's window: the scheduler's second rung, as far as its first look goes
    window = round(scheduler.grace_period * scheduler.reduction_factor)
    lead = Lead.starting_now(budget.time_limit_s, budget.lead, window, run_dir / LEAD_FILE) if (
        leads and _first_points(prepared)) else None
    return attach(_key(run_dir), cooldown=Cooldown.starting_now(budget.time_limit_s, budget.cooldown), lead=lead,
                  disk=record.disk, recorder=record)


def _key(run_dir: Path) -> str:
    return str(run_dir.resolve())


def _first_points(prepared: Prepared) -> list[dict]:
    """What the searcher tries first: the user's initial points, or else the experiment's fixed model."""
    searcher = prepared.experiment.searcher
    if searcher.initial_points or not searcher.fixed_model_first:
        return list(searcher.initial_points)
    point = prepared.fixed_point()
    return [point] if point else []


def _searcher(prepared: Prepared, study_storage: str, run_dir: Path) -> _Search:
    experiment, objective = prepared.experiment, prepared.objective
    search = _Search(
        space=experiment.space.sample_optuna,
        # the best objective so far, not the last epoch's: the value the leaderboard ranks by
        metric=objective.metric if objective.multi else BEST_OBJECTIVE,
        mode=objective.mode,
        sampler=make_sampler(experiment.searcher.sampler, experiment.seed, experiment.searcher.options),
        study_name=experiment.name,
        storage=optuna.storages.RDBStorage(study_storage),
        seed=experiment.seed,
        points_to_evaluate=[experiment.space.encode_point(p) for p in _first_points(prepared)] or None,
    )
    search.run_key = _key(run_dir)
    return search


class RungScheduler(FIFOScheduler):
    """Ray Tune's view of :class:`~search.engines.rungs.Rungs`: stops a trial when its rung cuts it, and in the
    run's cooldown (:mod:`search.engines.cooldown`) when it is not among the leaders of the running trials.
    It tells the run's lead (:mod:`search.engines.lead`) how the first trial's best objective rises.

    Each trial's best objective so far is what the rungs compare (what the leaderboard ranks by). Every
    decision about the first cut is written, with its evidence, to ``scheduler.json`` in the run directory,
    and so are the lead once it has ended and the cooldown once it has begun.
    """

    def __init__(self, rungs: Rungs, run_dir: Path):
        super().__init__()
        self.rungs, self.path, self.run_key = rungs, run_dir / SCHEDULER_FILE, _key(run_dir)
        self.running: dict[str, float] = {}  # trial -> its best objective so far, for trials still training
        self.cooling: dict | None = None  # the cooldown, once it has begun
        self.led: dict | None = None  # the first trial's lead, once it has ended
        self._write()

    def __setstate__(self, state: dict) -> None:  # a resumed search: trials report again as they run
        self.__dict__.update({**state, "running": {}})

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if not _is_epoch(result) or result.get(BEST_OBJECTIVE) is None:
            return TrialScheduler.CONTINUE
        known = len(self.rungs.decisions)
        best = float(result[BEST_OBJECTIVE])
        self.running[trial.trial_id] = best
        go = self.rungs.report(trial.trial_id, int(result["training_iteration"]), best)
        changed = len(self.rungs.decisions) != known
        key = getattr(self, "run_key", None)
        cooldown, lead = attached(key, "cooldown"), attached(key, "lead")
        if lead:
            lead.report(trial.trial_id, best, result.get("first_step_at"))
            changed = self._lead_ended(lead) or changed  # by this epoch, or earlier by time (Lead.holds)
        if go and cooldown and cooldown.active():
            go = cooldown.keeps(trial.trial_id, self.running, self.rungs.rf)
            if getattr(self, "cooling", None) is None:
                self.cooling, changed = cooldown.to_dict(self.rungs.rf), True
        if changed:
            self._write()
        return TrialScheduler.CONTINUE if go else TrialScheduler.STOP

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._left(trial)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._left(trial)
        super().on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._left(trial)
        super().on_trial_error(tune_controller, trial)

    def _left(self, trial) -> None:
        self.running.pop(trial.trial_id, None)
        lead = attached(getattr(self, "run_key", None), "lead")
        if lead:
            lead.left(trial.trial_id)
            if self._lead_ended(lead):
                self._write()

    def _lead_ended(self, lead: Lead) -> bool:
        """Keep the lead's record once it has ended (a resumed search keeps it too); True if it just did."""
        if lead.ended and getattr(self, "led", None) is None:
            self.led = lead.to_dict()
            return True
        return False

    def _write(self) -> None:
        state = self.rungs.state()
        if getattr(self, "led", None):
            state["lead"] = self.led
        if getattr(self, "cooling", None):
            state["cooldown"] = self.cooling
        disk = attached(getattr(self, "run_key", None), "disk")
        with disk.writing() if disk else contextlib.nullcontext():
            atomic_write(self.path, json.dumps(state, indent=1) + "\n")


def _scheduler(prepared: Prepared, run_dir: Path) -> FIFOScheduler:
    """Successive halving on the best objective so far; FIFO for a multi-objective search (it needs one metric)."""
    experiment = prepared.experiment
    if prepared.objective.multi:
        return FIFOScheduler()
    scheduler = experiment.scheduler
    horizon = experiment.budget.max_epochs or HORIZON
    return RungScheduler(Rungs(min(scheduler.grace_period, horizon), scheduler.reduction_factor, horizon,
                               adaptive=scheduler.adaptive), run_dir)


def restore(prepared: Prepared, run_dir: Path, *, storage_path: Path,
            progress: Callable[[str], None] = print) -> tune.ResultGrid:
    """Continue an interrupted search: finished trials are kept, unfinished ones resume from checkpoints."""
    path = str((storage_path / TUNE_DIR).resolve())
    # The restored run's recorder is a handle that resolves to the one attached here (see recorder.py).
    with recorder.attach(prepared, run_dir, progress) as record, \
            _budgeting(prepared, run_dir, fresh=False, record=record) as parts:
        try:
            tuner = tune.Tuner.restore(path, trainable=_trainable(prepared, run_dir, parts["cooldown"]),
                                       resume_unfinished=True, resume_errored=False)
        except ModuleNotFoundError as exc:  # its state names modules of an earlier layout of this package
            raise SearchError(f"{run_dir} was interrupted under an earlier mtl-search ({exc}); resume it with that "
                              "version, or start the search again.") from None
        return tuner.fit()
