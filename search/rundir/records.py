"""Trial records: what a search keeps of each trial, one JSON file per trial under ``<run dir>/trials/``.

A :class:`TrialRecord` says what was tried, how it ended (a status from :data:`STATUSES`, which
mean the same everywhere) and what it scored; its epoch history uses the keys of
:mod:`search.experiment.metrics`. Files are written atomically. Pure Python: no Ray, no Keras.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from search.errors import SearchError
from search.experiment.metrics import higher_is_better

__all__ = ["FINISHED", "SCORED", "STATUSES", "SCHEDULER_FILE", "TRIALS_DIR", "UNFINISHED", "TrialRecord",
           "atomic_write", "best_values", "load_records", "recorded_status", "trial_path"]

TRIALS_DIR = "trials"
SCHEDULER_FILE = "scheduler.json"  # what the scheduler decided and why (search.engines.rungs)

# "stopped early": the scheduler (ASHA, Hyperband) ended the trial; "out of time": the search's time limit
# ended it before its last epoch; "interrupted": the search stopped (Ctrl-C, a killed driver) while the
# trial ran, and a resume continues it.
Status = Literal["pending", "running", "completed", "stopped early", "out of time", "failed", "interrupted"]
STATUSES: tuple[str, ...] = get_args(Status)
SCORED = ("completed", "stopped early", "out of time")  # finished with a score: ranked, retrainable
FINISHED = (*SCORED, "failed")  # will not run again
UNFINISHED = ("pending", "running", "interrupted")  # a resume runs or continues them


def _opt_float(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number or null, but got {name}={value!r}.")
    return float(value)


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search as the driver records it: what was tried, how it ended and what it scored.

    ``objective`` is the best single objective over epochs; ``objectives`` the last reported values of a
    multi-objective search; ``task_metrics`` each task's best validation score over epochs.
    """

    trial_id: str
    status: Status = "pending"
    failure: str | None = None  # the reason, when status == "failed"
    params: Mapping[str, Any] = field(default_factory=dict)
    objective: float | None = None
    objectives: Mapping[str, float | None] | None = None
    task_metrics: Mapping[str, float | None] = field(default_factory=dict)
    epochs: int = 0
    wall_s: float | None = None
    started_at: float | None = None  # unix time
    history: tuple[Mapping[str, Any], ...] = ()
    retries: int = 0  # times the trial lost its worker and resumed from its checkpoint

    def __post_init__(self) -> None:
        if not isinstance(self.trial_id, str) or not self.trial_id:
            raise ValueError(f"`trial_id` must be a non-empty string, but got trial_id={self.trial_id!r}.")
        if self.status not in STATUSES:
            raise ValueError(f"`status` must be one of {STATUSES}, but got status={self.status!r}.")
        if self.failure is not None and not isinstance(self.failure, str):
            raise TypeError(f"`failure` must be a string or null, but got failure={self.failure!r}.")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"`epochs` must be an integer >= 0, but got epochs={self.epochs!r}.")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"`retries` must be an integer >= 0, but got retries={self.retries!r}.")
        for name in ("params", "task_metrics"):
            if not isinstance(getattr(self, name), Mapping):
                raise TypeError(f"`{name}` must be a mapping, but got {name}={getattr(self, name)!r}.")
        if self.objectives is not None and not isinstance(self.objectives, Mapping):
            raise TypeError(f"`objectives` must be a mapping or null, but got objectives={self.objectives!r}.")
        set_ = object.__setattr__  # normalise once so that a JSON round trip compares equal
        set_(self, "params", dict(self.params))
        set_(self, "objective", _opt_float("objective", self.objective))
        if self.objectives is not None:
            set_(self, "objectives", {k: _opt_float(f"objectives.{k}", v) for k, v in self.objectives.items()})
        set_(self, "task_metrics", {k: _opt_float(f"task_metrics.{k}", v) for k, v in self.task_metrics.items()})
        set_(self, "wall_s", _opt_float("wall_s", self.wall_s))
        set_(self, "started_at", _opt_float("started_at", self.started_at))
        set_(self, "history", tuple(dict(entry) for entry in self.history))

    def to_json(self) -> str:
        """The record as an indented JSON object (non-finite floats are written as NaN/Infinity)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["history"] = list(data["history"])
        return json.dumps(data, indent=2, default=_json_scalar)

    @classmethod
    def from_json(cls, text: str) -> TrialRecord:
        """The record a :meth:`to_json` text describes; raises ValueError on unknown or missing keys."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"A trial record must be a JSON object, but got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"A trial record's keys must be among {sorted(known)}, but got unknown {unknown}.")
        if "trial_id" not in data:
            raise ValueError("A trial record must have a `trial_id`, but got none.")
        return cls(**{**data, "history": tuple(data.get("history") or ())})

    def write(self, path: str | os.PathLike) -> None:
        """Writes the record to ``path`` atomically: readers see the old file or the new one, never half."""
        atomic_write(Path(path), self.to_json())

    @classmethod
    def read(cls, path: str | os.PathLike) -> TrialRecord:
        """The record stored at ``path``; errors name the file."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except TypeError as err:
            raise TypeError(f"{path}: {err}") from err
        except ValueError as err:  # JSONDecodeError too
            raise ValueError(f"{path}: {err}") from err


def _json_scalar(value: Any) -> Any:
    """NumPy scalars (a metric logged as float32) as the Python numbers JSON can hold."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"A trial record's values must be JSON data, but got {type(value).__name__}: {value!r}.")


def atomic_write(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name does not end in .json, so load_records never picks it up.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def trial_path(run_dir: str | os.PathLike, trial_id: str) -> Path:
    """Where the driver writes a trial's record: ``<run_dir>/trials/<trial_id>.json``."""
    return Path(run_dir) / TRIALS_DIR / f"{trial_id}.json"


def load_records(run_dir: str | os.PathLike) -> list[TrialRecord]:
    """Every record in ``<run_dir>/trials/*.json``, by start time (unstarted last) then trial id.

    Returns ``[]`` when the trials folder does not exist yet.
    """
    trials = Path(run_dir) / TRIALS_DIR
    if not trials.is_dir():
        return []
    records = []
    for path in sorted(trials.glob("*.json")):
        try:
            records.append(TrialRecord.read(path))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:  # records are written whole: this one was damaged
            raise SearchError(f"{path} is not a trial record ({type(exc).__name__}: {str(exc)[:200]}); move it out "
                              f"of {trials} (that trial is then left out) or restore it, and run the command again."
                              ) from None
    return sorted(records, key=lambda r: (r.started_at is None, r.started_at or 0.0, r.trial_id))


def recorded_status(run_dir: str | os.PathLike, trial_id: str) -> str | None:
    """The status the run directory records for a trial; None where there is no readable record."""
    try:
        return TrialRecord.read(trial_path(run_dir, trial_id)).status
    except (OSError, ValueError, TypeError):
        return None


def best_values(history: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """Each key's best value over an epoch history (highest or lowest, as the metric improves); keys that no
    epoch holds a number for are left out."""
    best: dict[str, float] = {}
    for key in keys:
        values = [row[key] for row in history if isinstance(row.get(key), (int, float)) and math.isfinite(row[key])]
        if values:
            best[key] = max(values) if higher_is_better(key) else min(values)
    return best
