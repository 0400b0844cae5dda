"""The driver-side record of a search: one JSON per trial, the leaderboard, a progress line.

A Ray Tune callback. Every trial event rewrites that trial's record under
``<run dir>/trials/``; every finished trial rewrites ``leaderboard.csv`` and
``leaderboard.md`` and prints the progress line, so the tables are current while the
search runs and survive a killed driver.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from ray.tune import Callback

from search.objective import ERROR_METRICS
from search.trainable import MAX_RETRIES
from search.leaderboard import FINISHED, LeaderboardSpec, TrialRecord, load_records, write_leaderboard

__all__ = ["Recorder", "failure_reason"]


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


class Recorder(Callback):
    """Keeps every trial's record and the leaderboard current; prints progress as trials end."""

    def __init__(self, run_dir: str | Path, spec: LeaderboardSpec, *, max_epochs: int, task_keys: list[str],
                 objective_keys: list[str], time_limit_s: float | None = None,
                 progress: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.spec = spec
        self.max_epochs = max_epochs
        self.task_keys = task_keys  # e.g. ["shape_accuracy", "midpoint_mae"]
        self.objective_keys = objective_keys  # multi-objective: the val_ keys; else []
        self.progress = progress
        self.time_limit_s = time_limit_s
        self.started = time.time()
        self.records: dict[str, TrialRecord] = {r.trial_id: r for r in load_records(self.run_dir)}

    # Ray Tune hooks -----------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        old = self.records.get(trial.trial_id)
        self._update(trial, status="running", started_at=old.started_at if old and old.started_at else time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        record = self.records.get(trial.trial_id) or self._update(trial, status="running", started_at=time.time())
        entry = {k: _clean(v) for k, v in result.items() if k in self._history_keys()}
        history = [h for h in record.history if h.get("epoch") != entry.get("epoch")] + [entry]
        best_objective = record.objective
        if "objective" in entry and entry["objective"] is not None:
            best_objective = entry["objective"] if best_objective is None else max(best_objective, entry["objective"])
        objectives = {k.removeprefix("val_"): _clean(result.get(k)) for k in self.objective_keys} or None
        self._update(trial, history=history, objective=best_objective, objectives=objectives,
                     task_metrics=_best_task_metrics(history, self.task_keys), epochs=int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        record = self.records.get(trial.trial_id)
        epochs = record.epochs if record else 0
        self._update(trial, status="completed" if epochs >= self.max_epochs else "stopped early")
        self._finished(trials)

    def on_trial_recover(self, iteration, trials, trial, **info):
        record = self.records.get(trial.trial_id)
        retries = (record.retries if record else 0) + 1
        self._update(trial, retries=retries)
        self.progress(f"[{time.strftime('%H:%M:%S')}] trial {trial.trial_id} lost its worker "
                      f"({failure_reason(trial)}); retry {retries} of {MAX_RETRIES} from its last checkpoint")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trial, status="failed", failure=failure_reason(trial))
        self._finished(trials)

    def on_experiment_end(self, trials, **info):
        # Trials ended by the time budget or an interruption get no completion event: settle them here.
        # Without a spent time budget, a trial still running at the end was interrupted (Ctrl-C, a stop):
        # a resume continues it, so it must not read as finished.
        out_of_time = self.time_limit_s is not None and time.time() - self.started >= self.time_limit_s * 0.98
        for trial in trials:
            record = self.records.get(trial.trial_id)
            if record is None or record.status not in ("running", "pending"):
                continue
            if trial.status == "TERMINATED" and out_of_time:
                self._update(trial, status="completed" if record.epochs >= self.max_epochs else "out of time")
            elif trial.status == "ERROR":
                self._update(trial, status="failed", failure=failure_reason(trial))
            else:
                self._update(trial, status="interrupted")
        self.write()

    # ---------------------------------------------------------------------------------------
    def write(self):
        return write_leaderboard(self.run_dir, list(self.records.values()), self.spec)

    def _history_keys(self) -> set[str]:
        keys = {"epoch", "objective", "loss", "val_loss", "node", "first_step_at", "train_s"}
        for key in self.task_keys:
            keys.update({key, f"val_{key}"})
        keys.update(self.objective_keys)
        return keys

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
        record.write(self.run_dir / "trials" / f"{trial.trial_id}.json")
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


def _best_task_metrics(history: list[dict], keys: list[str]) -> dict[str, float]:
    best: dict[str, float] = {}
    for key in keys:
        values = [h[f"val_{key}"] for h in history if h.get(f"val_{key}") is not None]
        if values:
            best[key] = min(values) if key.rsplit("_", 1)[-1] in ERROR_METRICS else max(values)
    return best
