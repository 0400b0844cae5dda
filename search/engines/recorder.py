"""The driver-side record of a search: one JSON per trial, the leaderboard, a progress line.

A Ray Tune callback. Every trial event rewrites that trial's record under
``<run dir>/trials/``; every finished trial rewrites ``leaderboard.csv`` and
``leaderboard.md`` and prints the progress line, so the tables are current while the
search runs and survive a killed driver. Between steps it has the run's disk looked at
(:class:`~search.engines.disk.DiskGuard`), so a filling disk stops the search in time.

Ray Tune pickles its callbacks with the experiment and unpickles them on ``Tuner.restore``, which
takes no new ones (ray-project/ray#41364: no public way to replace a restored run's callbacks). A
recorder is pickled as a handle instead: on restore the handle resolves to the fresh recorder that
:func:`attach` registered in this process, with this session's run directory and progress output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

from ray.tune import Callback

from search.engines.disk import DiskGuard
from search.engines.trainable import LR_SCALE
from search.engines.worker import FAILURE_KEY, MAX_RETRIES, VAL_OBJECTIVE
from search.experiment.metrics import OBJECTIVE, metric_key
from search.experiment.prepared import Prepared
from search.rundir.leaderboard import build_leaderboard, leaderboard_spec, write_leaderboard
from search.rundir.records import FINISHED, TrialRecord, best_values, load_records, trial_path

__all__ = ["Recorder", "attach", "failure_reason"]

_ATTACHED: dict[str, Recorder] = {}  # by experiment name: the recorder a restored handle resolves to


def failure_reason(trial) -> str:
    """The last line of a failed trial's error: the exception type and message."""
    text = ""
    try:
        error = trial.get_error()
        text = str(error) if error is not None else ""
    except Exception:  # noqa: BLE001 - a best effort; fall back to the error file
        text = ""
    if not text and getattr(trial, "error_file", None) and Path(trial.error_file).exists():
        text = Path(trial.error_file).read_text(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "TrialFailure" in line or "Error" in line or "Exception" in line:
            return line.split("TrialFailure: ", 1)[-1][:500]
    return (lines[-1] if lines else "unknown error")[:500]


@contextlib.contextmanager
def attach(prepared: Prepared, run_dir: Path, progress: Callable[[str], None]) -> Iterator[Recorder]:
    """A fresh recorder for a ``fit`` or a ``restore`` in this process, which restored handles resolve to."""
    recorder = Recorder(prepared, run_dir, progress)
    _ATTACHED[recorder.key] = recorder
    recorder.disk.hold()
    try:
        yield recorder
    finally:
        recorder.disk.release()
        _ATTACHED.pop(recorder.key, None)


def _attached(key: str) -> Callback:
    """What a pickled recorder becomes when unpickled: the attached one, or a callback that does nothing."""
    return _ATTACHED.get(key) or Callback()


class Recorder(Callback):
    """Keeps every trial's record and the leaderboard current; prints progress as trials end."""

    def __init__(self, prepared: Prepared, run_dir: str | Path, progress: Callable[[str], None] = print):
        experiment, objective = prepared.experiment, prepared.objective
        self.key = experiment.name
        self.run_dir = Path(run_dir)
        self.spec = leaderboard_spec(prepared)
        self.max_epochs = experiment.budget.max_epochs
        self.time_limit_s = experiment.budget.time_limit_s
        self.task_keys = [metric_key(t.name, t.score_metric, "val") for t in prepared.tasks]
        self.objective_keys = [t.key() for t in objective.terms] if objective.multi else []
        # Kept in each epoch of a trial's history: what the objective and the task scores were, and when (and the
        # cooldown's learning-rate scale).
        self.history_keys = {"epoch", VAL_OBJECTIVE, "train_loss", "val_loss", "node", "worker", "first_step_at", "train_s",
                             LR_SCALE,
                             *self.task_keys, *(metric_key(t.name, t.score_metric, "train") for t in prepared.tasks),
                             *self.objective_keys}
        self.progress = progress
        self.disk = DiskGuard(self.run_dir, progress)
        self.started = time.time()
        self.records: dict[str, TrialRecord] = {r.trial_id: r for r in load_records(self.run_dir)}

    def __reduce__(self):
        return _attached, (self.key,)

    # Ray Tune hooks -----------------------------------------------------------------------
    def on_step_begin(self, iteration, trials, **info):
        self.disk.check()

    def on_trial_start(self, iteration, trials, trial, **info):
        old = self.records.get(trial.trial_id)
        self._update(trial, status="running", started_at=old.started_at if old and old.started_at else time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get(FAILURE_KEY):  # the trial's last result: it failed, its worker goes on
            self._update(trial, status="failed", failure=result[FAILURE_KEY])
            self._finished(trials)
            self.disk.trial_failed(result[FAILURE_KEY])
            return
        if "epoch" not in result:  # a trial that had finished before a restore ends with an empty result
            return
        record = self.records.get(trial.trial_id) or self._update(trial, status="running", started_at=time.time())
        entry = {k: _clean(v) for k, v in result.items() if k in self.history_keys}
        history = [h for h in record.history if h.get("epoch") != entry.get("epoch")] + [entry]
        best_objective = record.objective
        if _clean(result.get(OBJECTIVE)) is not None:  # what ASHA read: the objective, 0 where not finite
            best_objective = result[OBJECTIVE] if best_objective is None else max(best_objective, result[OBJECTIVE])
        objectives = {k: _clean(result.get(k)) for k in self.objective_keys} or None
        self._update(trial, history=history, objective=best_objective, objectives=objectives,
                     task_metrics=best_values(history, self.task_keys), epochs=int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        record = self.records.get(trial.trial_id)
        if record and record.status == "failed":  # told by its last result
            return
        self._update(trial, status=self.ending(trial.trial_id).status)
        self._finished(trials)

    def on_trial_recover(self, iteration, trials, trial, **info):
        record = self.records.get(trial.trial_id)
        retries = (record.retries if record else 0) + 1
        self._update(trial, retries=retries)
        reason = failure_reason(trial)
        self.progress(f"[{time.strftime('%H:%M:%S')}] trial {trial.trial_id} lost its worker "
                      f"({reason}); retry {retries} of {MAX_RETRIES} from its last checkpoint")
        self.disk.trial_failed(reason)

    def on_trial_error(self, iteration, trials, trial, **info):
        record = self._update(trial, status="failed", failure=failure_reason(trial))
        self._finished(trials)
        self.disk.trial_failed(record.failure)

    def on_experiment_end(self, trials, **info):
        # Trials ended by the time budget or an interruption get no completion event: settle them here.
        # Without a spent time budget, a trial still running at the end was interrupted (Ctrl-C, a stop):
        # a resume continues it, so it must not read as finished.
        out_of_time = self.time_limit_s is not None and time.time() - self.started >= self.time_limit_s * 0.98
        for trial in trials:
            record = self.records.get(trial.trial_id)
            if record is None or record.status not in ("running", "pending"):  # not yet told how it ended
                continue
            if trial.status == "TERMINATED" and out_of_time:
                self._update(trial, status="completed" if self._complete(record.epochs) else "out of time")
            elif trial.status == "ERROR":
                self._update(trial, status="failed", failure=failure_reason(trial))
            else:
                self._update(trial, status="interrupted")
        known = {trial.trial_id for trial in trials}
        lost = [r for r in self.records.values() if r.status in ("running", "pending") and r.trial_id not in known]
        for record in lost:
            # Begun by a driver that was killed after Ray Tune's last snapshot: the restored search does not know it,
            # will never run it again, and ran another trial in its place.
            self._update(SimpleNamespace(trial_id=record.trial_id, config=record.params), status="failed",
                         failure="lost: the search's driver was killed before Ray Tune saved this trial; the resumed "
                                 "search ran another in its place")
        self.write()

    # ---------------------------------------------------------------------------------------
    def ending(self, trial_id: str) -> TrialRecord:
        """The trial's record as it reads once the trial ends now, as :meth:`on_trial_complete` records it:
        failed if its last result said so, else completed or stopped early. Ray Tune tells its searcher that a
        trial ended before it tells this callback (search.engines.ray_tune tags the study trial with it)."""
        record = self.records.get(trial_id) or TrialRecord(trial_id=trial_id)
        if record.status == "failed":
            return record
        return dataclasses.replace(record, status="completed" if self._complete(record.epochs) else "stopped early")

    def _complete(self, epochs: int) -> bool:
        """Whether a trial that trained ``epochs`` reached the epoch cap (there is none without max_epochs)."""
        return self.max_epochs is not None and epochs >= self.max_epochs

    def write(self):
        with self.disk.writing():
            return write_leaderboard(self.run_dir, list(self.records.values()), self.spec)
        return build_leaderboard(list(self.records.values()), self.spec)  # the disk is full: not written

    def _update(self, trial, **changes: Any) -> TrialRecord:
        old = self.records.get(trial.trial_id)
        base = old.__dict__ if old else {
            "trial_id": trial.trial_id, "status": "pending", "failure": None, "objective": None, "objectives": None,
            "task_metrics": {}, "epochs": 0, "wall_s": 0.0, "started_at": None, "history": [], "retries": 0,
        }
        params = {k: v for k, v in (trial.config or {}).items() if not k.startswith("_")}
        merged = {**base, "params": params, **changes}
        if merged.get("started_at") and (merged["status"] == "running" or "status" in changes):
            merged["wall_s"] = round(time.time() - merged["started_at"], 2)
        record = TrialRecord(**merged)
        self.records[trial.trial_id] = record
        with self.disk.writing():
            record.write(trial_path(self.run_dir, trial.trial_id))
        return record

    def _finished(self, trials) -> None:
        frame = self.write()
        counts = Counter(record.status for record in self.records.values())
        done = sum(counts[status] for status in FINISHED)
        best = ""
        if len(frame) and "objective" in frame.columns and frame["objective"].notna().any():
            top = frame.iloc[0]
            best = f" · best objective {top['objective']:.4f} (trial {top['trial']})"
        elif len(frame) and "pareto" in frame.columns:
            best = f" · Pareto front: {int((frame['pareto'] == 1).sum())} trial(s)"
        self.progress(
            f"[{time.strftime('%H:%M:%S')}] {done} done · {counts['running']} running · {counts['failed']} failed · "
            f"{counts['stopped early']} stopped early{best}"
        )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
