"""Retrain a search's best configurations across seeds and judge them on the test split.

``retrain(run_dir, top_k=3, seeds=(42, 43, 44))`` runs top-K × seeds retraining runs
(:mod:`search.winner.retrain_job`) as Ray Tune trials, on the embedded Ray or a cluster, then
writes ``retrain/retrain.{json,csv,md}``: per configuration, each task's test metrics and
the objective as mean ± std over seeds, ranked by the mean objective (or by a named task
metric). With ``baselines=True`` each task is also trained alone with the winner's network,
and Δm% says whether sharing helped. Runs that finished are kept, so repeating the command
after an interruption continues it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ray.tune import Callback

from search.engines import cluster
from search.engines.recorder import failure_reason
from search.engines.worker import MAX_RETRIES
from search.errors import ConfigError
from search.experiment.config import load_experiment
from search.experiment.metrics import OBJECTIVE, metric_key, split_key
from search.experiment.prepared import Prepared, prepare
from search.rundir.directory import RETRAIN_DIR, check_writable, read_run_info
from search.rundir.leaderboard import build_leaderboard, leaderboard_spec
from search.rundir.records import SCORED, load_records
from search.winner.report import write_report
from search.winner.retrain_job import run_job
from search.winner.retrain_table import RetrainTable, build_table
from search.winner.runs import Job, RunResult

__all__ = ["RetrainOptions", "retrain", "selection_key", "top_configs"]


@dataclass(frozen=True)
class RetrainOptions:
    """How to retrain: how many configurations, which seeds, the budget, how to pick the winner."""

    top_k: int = 3
    seeds: tuple[int, ...] = (42, 43, 44)
    epochs: int | None = None  # default: the search's max_epochs, or (without one) the most its top trials trained
    patience: int | None = None  # default: a fifth of the epochs, at least 3
    by: str = "objective"  # or "task.metric", e.g. "B.accuracy"
    baselines: bool = False
    concurrency: int | None = None  # default: the experiment's

    def check(self, prepared: Prepared) -> None:
        _check_int("--top-k", self.top_k, 1)
        if not self.seeds:
            raise ConfigError("--seeds", "must list at least one seed", list(self.seeds))
        for seed in self.seeds:
            _check_int("--seeds", seed, 0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("--seeds", "must not repeat a seed", list(self.seeds))
        for name, value in (("--epochs", self.epochs), ("--patience", self.patience),
                            ("--concurrency", self.concurrency)):
            if value is not None:
                _check_int(name, value, 1)
        selection_key(self.by, prepared)

    def budget(self, prepared: Prepared, searched_epochs: int) -> tuple[int, int]:
        """Epochs and early-stopping patience; ``searched_epochs``: the most epochs the configurations trained."""
        epochs = self.epochs or prepared.experiment.budget.max_epochs or max(1, searched_epochs)
        return epochs, self.patience or max(3, epochs // 5)


def selection_key(by: str, prepared: Prepared) -> str:
    """The test-split key that picks the winner: ``test_objective`` or ``test_<task>_<metric>``."""
    if by == OBJECTIVE:
        return split_key(OBJECTIVE, "test")
    task, _, metric = by.partition(".")
    names = {t.name: t for t in prepared.tasks}
    if task not in names:
        raise ConfigError("--by", f"must be 'objective' or TASK[.METRIC] with a task of the data set {sorted(names)}",
                          by)
    metric = metric or names[task].score_metric
    if metric not in names[task].metrics:
        raise ConfigError("--by", f"must name a metric task {task!r} reports {list(names[task].metrics)}", by)
    return metric_key(task, metric, "test")


def retrain(run_dir: str | Path, options: RetrainOptions = RetrainOptions(), *, address: str | None = None,
            progress: Callable[[str], None] = print) -> RetrainTable:
    """Retrain the top configurations of the search in ``run_dir``; returns the ranked table."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    prepared = prepare(load_experiment(run_dir / info.experiment_file))
    options.check(prepared)
    if len(prepared.splits.test.inputs[next(iter(prepared.splits.test.inputs))]) == 0:
        raise ConfigError("data.split.test_fraction", "must be > 0 to judge retrained models on a test split", 0)
    configs = top_configs(run_dir, prepared, options.top_k)
    root = run_dir / RETRAIN_DIR
    check_writable(root, field="run_dir")
    epochs, patience = options.budget(prepared, searched_epochs(run_dir, [trial_id for trial_id, _ in configs]))
    jobs = [Job(trial_id, params, seed) for trial_id, params in configs for seed in options.seeds]
    progress(f"Retraining {len(configs)} configuration(s) × {len(options.seeds)} seed(s) for up to {epochs} epochs "
             f"(early stopping after {patience}); runs in {root}/")
    address = address or info.address
    description = cluster.start_ray(address)
    try:
        progress(f"On {description}.")
        if address:  # every node writes its runs under the run directory: it must be shared
            root.mkdir(parents=True, exist_ok=True)
            cluster.check_shared_storage(root)
            cluster.check_shared_files(prepared.data_files(), "data folder")
        _run(prepared, jobs, root, epochs, patience, options, progress)
        table = build_table(prepared, configs, _results(root, jobs), key=selection_key(options.by, prepared))
        if options.baselines and table.winner:
            winner = table.winner
            single = [Job(winner.config_id, winner.params, seed, task.name)
                      for task in prepared.tasks for seed in options.seeds]
            progress(f"Single-task baselines: {len(prepared.tasks)} task(s) × {len(options.seeds)} seed(s) with "
                     f"{winner.config_id}'s network.")
            _run(prepared, single, root, epochs, patience, options, progress)
            table = table.with_baselines(_results(root, single), prepared.tasks)
    finally:
        cluster.stop_ray()
    table.write(root)
    progress(f"Retrain table: {root / 'retrain.md'}")
    write_report(run_dir, progress=progress)
    return table


def top_configs(run_dir: Path, prepared: Prepared, top_k: int) -> list[tuple[str, dict]]:
    """The ``top_k`` best trials as the leaderboard ranks them (objective, or Pareto rank), best first."""
    records = {r.trial_id: r for r in load_records(run_dir) if r.status in SCORED}
    frame = build_leaderboard(list(records.values()), leaderboard_spec(prepared)) if records else None
    ranked = [] if frame is None else list(frame[frame["rank"].notna()]["trial"])
    if not ranked:
        raise ConfigError("run_dir", "holds no finished trials to retrain; run or resume the search first "
                          f"(mtl-search resume {run_dir})", str(run_dir))
    return [(trial_id, dict(records[trial_id].params)) for trial_id in ranked[:top_k]]


def searched_epochs(run_dir: Path, trial_ids: Sequence[str]) -> int:
    """The most epochs any of these trials trained in the search."""
    return max((r.epochs for r in load_records(run_dir) if r.trial_id in set(trial_ids)), default=0)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, f"must be an integer >= {low}", value)


def _results(root: Path, jobs: Sequence[Job]) -> dict[str, RunResult]:
    return {job.name: RunResult.read(root / job.name, job) for job in jobs}


def _done(root: Path, job: Job) -> bool:
    return RunResult.read(root / job.name, job).completed


def _run(prepared: Prepared, jobs: Sequence[Job], root: Path, epochs: int, patience: int, options: RetrainOptions,
         progress: Callable[[str], None]) -> None:
    from ray import tune

    todo = [job for job in jobs if not _done(root, job)]
    if len(todo) < len(jobs):
        progress(f"{len(jobs) - len(todo)} of {len(jobs)} runs finished before; keeping them.")
    if not todo:
        return
    resources = prepared.experiment.resources
    trainable = tune.with_resources(
        tune.with_parameters(run_job, prepared=prepared, root=str(root.resolve()), epochs=epochs, patience=patience),
        {"cpu": resources.cpus, "gpu": resources.gpus},
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"job": tune.grid_search([job.to_dict() for job in todo])},
        tune_config=tune.TuneConfig(max_concurrent_trials=options.concurrency or prepared.experiment.concurrency),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(root.resolve()), verbose=0,
            callbacks=[_Progress(root, len(todo), progress)],
            failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
        ),
    )
    try:
        grid = tuner.fit()
        # Ray Tune turns the first Ctrl-C into a clean stop and returns: runs that neither finished nor
        # failed were interrupted.
        interrupted = [r for r in grid if r.error is None and not _done(root, Job(**r.config["job"]))]
        if interrupted or len(grid) < len(todo):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        progress("Retraining interrupted; run the same command again to continue (finished runs are kept).")
        raise


class _Progress(Callback):
    """One line per finished run: what it scored on the test split."""

    def __init__(self, root: Path, total: int, say: Callable[[str], None]):
        self.root, self.total, self.say, self.done = root, total, say, 0

    def _line(self, trial, text: str) -> None:
        self.done += 1
        job = Job(**trial.config["job"])
        self.say(f"[{time.strftime('%H:%M:%S')}] {self.done}/{self.total} runs · {job.name}: {text}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        job = Job(**trial.config["job"])
        result = RunResult.read(self.root / job.name, job)
        score = " · ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
        self._line(trial, f"{score} (best epoch {result.best_epoch} of {result.epochs})")

    def on_trial_recover(self, iteration, trials, trial, **info):
        job = Job(**trial.config["job"])
        self.say(f"[{time.strftime('%H:%M:%S')}] {job.name} lost its worker ({failure_reason(trial)}); "
                 "retrying it from its last epoch")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, f"failed: {failure_reason(trial)}")
