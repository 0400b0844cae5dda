"""The Python API, mirroring the CLI: ``run``, ``resume``, ``results``."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from search.errors import ConfigError
from search.experiment.config import Experiment, load_experiment
from search.experiment.metrics import OBJECTIVE
from search.experiment.prepared import Prepared, prepare
from search.rundir.directory import (RUN_FILE, check_study_storage, check_writable, choose_run_dir, create_run_dir,
                                     read_run_info, record_session)
from search.rundir.leaderboard import LeaderboardSpec, build_leaderboard, leaderboard_spec, write_leaderboard
from search.rundir.records import FINISHED, TRIALS_DIR, UNFINISHED, load_records

__all__ = ["run", "resume", "results", "resume_command", "retrain_table", "run_leaderboard_spec"]


def resume_command(run_dir: Path) -> str:
    return f"mtl-search resume {run_dir}"


def run(experiment: Experiment | str | Path, *, results_dir: str | Path = "results", address: str | None = None,
        storage: str | Path | None = None, progress: Callable[[str], None] = print) -> pd.DataFrame:
    """Run a search and return its leaderboard as a DataFrame (one row per trial, ranked).

    ``experiment`` is an :class:`Experiment` or the path of an experiment file. Without
    ``address`` (or ``RAY_ADDRESS``) a local Ray is started on 127.0.0.1; with one, the
    cluster is joined and ``storage`` (default: the run directory) must be shared by all nodes.
    Every check of the input runs before Ray starts; nothing is created on bad input.
    """
    started = time.time()
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    text = yaml.safe_dump(experiment.portable(), sort_keys=False)
    prepared = prepare(experiment)
    address = address or os.environ.get("RAY_ADDRESS") or None
    check_writable(choose_run_dir(Path(results_dir), experiment.name))
    if storage:
        check_writable(Path(storage), field="--storage")
    if not address:
        from search.engines.cluster import check_local_resources

        check_local_resources(experiment.resources, experiment.concurrency)
    elif experiment.engine == "keras-tuner":
        raise ConfigError("--address", "needs engine ray-tune; engine keras-tuner runs in this process", address)
    if experiment.engine == "ray-tune":
        from search.engines.samplers import check_options

        check_options(experiment.searcher, experiment.space)
    if experiment.study_storage and experiment.engine == "ray-tune":
        check_study_storage(experiment.study_storage)

    from search.engines import cluster

    description = _start(experiment, address)
    run_dir = None
    try:
        if address:
            cluster.check_cluster(experiment.resources)
        run_dir, info = create_run_dir(Path(results_dir), experiment.name, text, address=address,
                                       storage_path=Path(storage) if storage else None,
                                       study_storage=experiment.study_storage)
        storage_path, study_storage = Path(info.storage_path), info.study_storage
        if address:
            storage_path.mkdir(parents=True, exist_ok=True)
            cluster.check_shared_storage(storage_path)
            cluster.check_shared_files(prepared.data_files(), "data folder")
        if run_dir.name != experiment.name:
            progress(f"{Path(results_dir) / experiment.name} holds an earlier search; this one writes to {run_dir}")
        progress(f"Search {experiment.name!r}: {experiment.budget.describe()}, {experiment.concurrency} at a time, "
                 f"on {description}.")
        study = (f"study: mtl-search dashboard {run_dir}" if experiment.engine == "ray-tune"
                 else f"KerasTuner state: {run_dir / 'keras_tuner'}")
        progress(f"Objective: {prepared.objective.describe()}. Results: {run_dir}/leaderboard.md; {study}")
        return _drive(prepared, run_dir, storage_path, study_storage, progress, command="run", started=started)
    except Exception:
        if run_dir and not any((run_dir / TRIALS_DIR).glob("*.json")):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran: leave nothing behind
        raise
    finally:
        _shutdown()


def resume(run_dir: str | Path, *, address: str | None = None,
           progress: Callable[[str], None] = print) -> pd.DataFrame:
    """Continue an interrupted search in ``run_dir``; finished trials are kept, not re-run."""
    started = time.time()
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    experiment = load_experiment(run_dir / info.experiment_file)
    prepared = prepare(experiment)
    check_writable(run_dir, field="run_dir")  # a search stopped on a full disk resumes once there is room
    address = address or info.address or os.environ.get("RAY_ADDRESS") or None
    description = _start(experiment, address)
    try:
        if address:
            from search.engines import cluster

            cluster.check_shared_files(prepared.data_files(), "data folder")
        done = sum(r.status in FINISHED for r in load_records(run_dir))
        of = f" of {experiment.budget.trials}" if experiment.budget.trials else ""
        progress(f"Resuming {experiment.name!r} on {description}: {done}{of} trials finished before.")
        return _drive(prepared, run_dir, Path(info.storage_path), info.study_storage, progress, command="resume",
                      started=started)
    finally:
        _shutdown()


def results(run_dir: str | Path) -> pd.DataFrame:
    """The leaderboard of a run directory, rebuilt from its trial records (nothing is written): one row per
    trial, ranked; columns ``rank``, ``trial``, ``status``, ``objective`` (the best validation objective, what
    the search ranks by), each task's best validation metric (``val_shape_accuracy``), the sampled parameters,
    ``epochs``, ``wall_s``."""
    return build_leaderboard(load_records(run_dir), run_leaderboard_spec(run_dir))


def run_leaderboard_spec(run_dir: str | Path) -> LeaderboardSpec:
    """What the leaderboard of ``run_dir`` shows (its objective, task columns and parameter ranges), from the
    run's copy of its experiment."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    return leaderboard_spec(prepare(load_experiment(run_dir / info.experiment_file)))


def retrain_table(run_dir: str | Path) -> pd.DataFrame:
    """The retrain table of a run directory (``retrain/retrain.csv``'s rows): one row per retrained
    configuration, ranked; columns ``rank``, ``config``, ``search_rank``, ``seeds``, the mean and std over
    seeds of each test metric (``test_objective_mean``, ``test_shape_accuracy_std``) and ``param.<name>``."""
    from search.winner.retrain_table import load_table

    return load_table(run_dir).to_frame()


def _drive(prepared: Prepared, run_dir: Path, storage_path: Path, study_storage: str,
           progress: Callable[[str], None], *, command: str, started: float) -> pd.DataFrame:
    try:
        if prepared.experiment.engine == "keras-tuner":
            from search.engines.worker import import_tensorflow_quietly

            import_tensorflow_quietly()
            from search.engines import keras_tuner

            keras_tuner.fit(prepared, run_dir, progress=progress)  # continues from its saved state, if any
        elif command == "resume":
            from search.engines import ray_tune

            ray_tune.restore(prepared, run_dir, storage_path=storage_path, progress=progress)
        else:
            from search.engines import ray_tune

            ray_tune.fit(prepared, run_dir, storage_path=storage_path, study_storage=study_storage, progress=progress)
    except KeyboardInterrupt:
        progress(f"Search interrupted. Resume it with:\n  {resume_command(run_dir)}")
        raise
    records = load_records(run_dir)
    finished = sum(r.status in FINISHED for r in records)
    unfinished = any(r.status in UNFINISHED for r in records)
    budget = prepared.experiment.budget
    interrupted = unfinished or (budget.time_limit_s is None and finished < budget.trials)
    try:
        frame, wall_s = _settle(prepared, run_dir, study_storage, records, ended=not interrupted, command=command,
                                started=started)
        recorded = f" (recorded in {run_dir / RUN_FILE})"
    except Exception as exc:
        from search.engines.disk import disk_full

        if not disk_full(exc):
            raise
        # The disk filled as the search stopped (disk.py): the study and the tables are settled on resume.
        interrupted, wall_s, recorded = True, time.time() - started, " (its disk is full: nothing more recorded)"
        frame = build_leaderboard(records, leaderboard_spec(prepared))
    if interrupted:
        of = f" of {budget.trials}" if budget.trials else ""
        progress(f"Search stopped with {finished}{of} trials finished. Resume it with:\n"
                 f"  {resume_command(run_dir)}")
    minutes, seconds = divmod(round(wall_s), 60)
    progress(f"Search {'stopped' if interrupted else 'ended'} after {minutes} min {seconds} s{recorded}.")
    frame.attrs["run_dir"] = str(run_dir)
    frame.attrs["interrupted"] = interrupted
    return frame


def _settle(prepared: Prepared, run_dir: Path, study_storage: str, records: list, *, ended: bool, command: str,
            started: float) -> tuple[pd.DataFrame, float]:
    """Tell the study how its trials ended, write the leaderboard and the session's record; the leaderboard and
    the session's wall time."""
    if prepared.experiment.engine == "ray-tune":
        from search.engines import ray_tune

        ray_tune.settle_study(prepared, study_storage, records, ended=ended)
    frame = write_leaderboard(run_dir, records, leaderboard_spec(prepared))
    best = frame[OBJECTIVE].max() if OBJECTIVE in frame.columns and frame[OBJECTIVE].notna().any() else None
    session = record_session(run_dir, command=command, started=started, statuses=Counter(r.status for r in records),
                             best_objective=None if best is None else float(best))
    return frame, session["wall_s"]


def _start(experiment: Experiment, address: str | None) -> str:
    """Start (or join) Ray for the Ray Tune engine; the KerasTuner engine needs none."""
    if experiment.engine == "keras-tuner":
        return "this process (KerasTuner, no Ray)"
    from search.engines import cluster

    return cluster.start_ray(address)


def _shutdown() -> None:
    from search.engines import cluster

    cluster.stop_ray()
