"""Trial records and the leaderboard ranked from them.

The search driver records each trial as one :class:`TrialRecord`, written to
``results/<name>/trials/<trial_id>.json``; :func:`build_leaderboard` ranks those records into a table and
:func:`write_leaderboard` saves it as ``leaderboard.csv`` and ``leaderboard.md``. Pure Python, numpy and
pandas: nothing here imports Ray, Optuna or Keras, so a leaderboard can be rebuilt on any machine.
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
from typing import Any, Literal

import numpy as np
import pandas as pd

from search.leaderboard_render import ROLES_KEY, edge_note, edge_params, render_markdown, render_table

__all__ = [
    "STATUSES",
    "Column",
    "LeaderboardSpec",
    "FINISHED",
    "ParamRange",
    "SCORED",
    "TrialRecord",
    "build_leaderboard",
    "edge_note",
    "edge_params",
    "load_records",
    "pareto_ranks",
    "render_markdown",
    "render_table",
    "trial_path",
    "write_leaderboard",
]

# "stopped early": the scheduler (ASHA, Hyperband) ended the trial; "out of time": the search's time limit
# ended it before its last epoch; "interrupted": the search stopped (Ctrl-C, a killed driver) while the
# trial ran, and a resume continues it.
STATUSES = ("pending", "running", "completed", "stopped early", "out of time", "failed", "interrupted")
SCORED = ("completed", "stopped early", "out of time")  # finished with a score: ranked, retrainable
FINISHED = (*SCORED, "failed")  # will not run again
# Leaderboard columns a metric or objective may not be named after.
_RESERVED = ("rank", "trial", "status", "pareto", "epochs", "wall_s", "at_edge")


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
    status: Literal["pending", "running", "completed", "stopped early", "out of time", "failed", "interrupted"] = "pending"
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
        _atomic_write(Path(path), self.to_json())

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


def _atomic_write(path: Path, text: str) -> None:
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


@dataclass(frozen=True)
class Column:
    """A metric column of the leaderboard and the direction in which it improves."""

    name: str
    mode: Literal["max", "min"]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`name` must be a non-empty string, but got name={self.name!r}.")
        if self.mode not in ("max", "min"):
            raise ValueError(f"`mode` must be 'max' or 'min', but got mode={self.mode!r} for column {self.name!r}.")


@dataclass(frozen=True)
class ParamRange:
    """A numeric param's search range, used to flag best values that sit at its edge."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"`low < high` must hold for finite bounds, but got ({self.low=}, {self.high=}).")
        if self.log and self.low <= 0:
            raise ValueError(f"`low > 0` must hold for a log range, but got low={self.low!r}.")


def pareto_ranks(values: Sequence[Sequence[float]], modes: Sequence[str]) -> list[int]:
    """Non-dominated sorting: each point's Pareto front, 1 for the points nothing dominates.

    ``modes[j]`` ("max" or "min") says which way objective ``j`` improves. Equal points share a front.
    """
    if len(values) == 0:
        return []
    points = np.asarray(values, dtype=float)
    if points.ndim != 2 or points.shape[1] == 0:
        raise ValueError(f"`values` must be rows of one or more numbers each, but got shape {points.shape}.")
    if len(modes) != points.shape[1] or any(m not in ("max", "min") for m in modes):
        raise ValueError(
            f"`modes` must hold 'max' or 'min' for each of {points.shape[1]} objectives, but got {modes!r}."
        )
    if not np.isfinite(points).all():
        raise ValueError(f"`values` must all be finite, but got {points[~np.isfinite(points).all(axis=1)].tolist()}.")
    costs = points * np.array([-1.0 if m == "max" else 1.0 for m in modes])  # every column now minimised
    n = len(costs)
    no_worse, better = np.ones((n, n), dtype=bool), np.zeros((n, n), dtype=bool)
    for column in costs.T:  # one objective at a time keeps memory at n*n, not n*n*k
        no_worse &= column[:, None] <= column[None, :]
        better |= column[:, None] < column[None, :]
    dominates = no_worse & better  # [i, j]: point i dominates point j
    ranks, remaining, front = np.zeros(n, dtype=int), np.ones(n, dtype=bool), 0
    while remaining.any():
        front += 1
        current = remaining & ~(dominates & remaining[:, None]).any(axis=0)
        ranks[current] = front
        remaining &= ~current
    return ranks.tolist()


def trial_path(run_dir: str | os.PathLike, trial_id: str) -> Path:
    """Where the driver writes a trial's record: ``<run_dir>/trials/<trial_id>.json``."""
    return Path(run_dir) / "trials" / f"{trial_id}.json"


def load_records(run_dir: str | os.PathLike) -> list[TrialRecord]:
    """Every record in ``<run_dir>/trials/*.json``, by start time (unstarted last) then trial id.

    Returns ``[]`` when the trials folder does not exist yet.
    """
    trials = Path(run_dir) / "trials"
    if not trials.is_dir():
        return []
    records = [TrialRecord.read(path) for path in sorted(trials.glob("*.json"))]
    return sorted(records, key=lambda r: (r.started_at is None, r.started_at or 0.0, r.trial_id))


@dataclass(frozen=True)
class LeaderboardSpec:
    """What a leaderboard shows and ranks by: the objective(s), the task metrics, the params' search ranges.

    Single objective: ``objectives=(Column("objective", "max"),)``, read from ``TrialRecord.objective``.
    Several: each objective's name is a key of ``TrialRecord.objectives``. A task column named like an
    objective column is shown as ``best_<name>``.
    """

    task_columns: tuple[Column, ...]
    objectives: tuple[Column, ...] = (Column("objective", "max"),)
    ranges: Mapping[str, ParamRange] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_columns", tuple(self.task_columns))
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "ranges", dict(self.ranges))
        if not self.objectives:
            raise ValueError("`objectives` must name at least one column, but got objectives=().")
        for group in ("task_columns", "objectives"):
            columns = getattr(self, group)
            if not all(isinstance(c, Column) for c in columns):
                raise TypeError(f"`{group}` must hold Column instances, but got {group}={columns!r}.")
            names = [c.name for c in columns]
            if len(set(names)) != len(names):
                raise ValueError(f"`{group}` names must be unique, but got {names}.")
            reserved = sorted(set(names) & set(_RESERVED))
            if reserved:
                raise ValueError(f"`{group}` names must not be among {_RESERVED}, but got {reserved}.")
        bad = {name: r for name, r in self.ranges.items() if not isinstance(r, ParamRange)}
        if bad:
            raise TypeError(f"`ranges` values must be ParamRange instances, but got {bad!r}.")

    @property
    def multi(self) -> bool:
        """Whether the search has several objectives (ranked by Pareto front)."""
        return len(self.objectives) > 1


def _scores(record: TrialRecord, spec: LeaderboardSpec) -> list[float | None]:
    """The record's value of each objective column (None where missing or not finite)."""
    if spec.multi:
        values = [(record.objectives or {}).get(c.name) for c in spec.objectives]
    else:
        values = [record.objective]
    return [v if v is not None and math.isfinite(v) else None for v in values]


def build_leaderboard(records: Sequence[TrialRecord], spec: LeaderboardSpec) -> pd.DataFrame:
    """The leaderboard: one row per trial, best first, as a ``pandas.DataFrame``.

    Columns: rank, trial, status, [pareto,] objective(s), task metrics, one per sampled param (by name),
    epochs, wall_s, at_edge. Failed rows and rows lacking an objective value come last with an empty rank. The frame's
    ``attrs`` name the column roles, so that :func:`render_table` knows which columns it may hide.
    """
    records = list(records)
    objective_names = [c.name for c in spec.objectives]
    task_names = [f"best_{c.name}" if c.name in objective_names else c.name for c in spec.task_columns]
    taken = set(_RESERVED) | set(objective_names) | set(task_names)
    param_names = sorted({name for r in records for name in r.params})
    param_columns = [f"param.{n}" if n in taken else n for n in param_names]

    scores = [_scores(r, spec) for r in records]
    # A failed trial is never ranked, even if it reported values before failing: its model is not usable.
    scored = [i for i, s in enumerate(scores) if all(v is not None for v in s) and records[i].status != "failed"]
    pareto: dict[int, int] = {}
    if spec.multi and scored:
        ranks = pareto_ranks([scores[i] for i in scored], [c.mode for c in spec.objectives])
        pareto = dict(zip(scored, ranks))
    sign = -1.0 if spec.objectives[0].mode == "max" else 1.0
    ranked = sorted(
        scored, key=lambda i: (pareto.get(i, 0), sign * scores[i][0], records[i].epochs, records[i].trial_id)
    )
    rank = {i: position for position, i in enumerate(ranked, start=1)}
    best = {i for i in ranked if (pareto[i] == 1 if spec.multi else rank[i] == 1)}
    order = ranked + [i for i in range(len(records)) if i not in rank]

    data: dict[str, Any] = {
        "rank": pd.array([rank.get(i) for i in order], dtype="Int64"),
        "trial": [records[i].trial_id for i in order],
        "status": [_status_text(records[i]) for i in order],
    }
    if spec.multi:
        data["pareto"] = pd.array([pareto.get(i) for i in order], dtype="Int64")
    for j, name in enumerate(objective_names):
        data[name] = pd.array([_float(scores[i][j]) for i in order], dtype="float64")
    for column, name in zip(spec.task_columns, task_names):
        data[name] = pd.array([_float(records[i].task_metrics.get(column.name)) for i in order], dtype="float64")
    for param, name in zip(param_names, param_columns):
        data[name] = pd.Series([records[i].params.get(param) for i in order], dtype=object)
    data["epochs"] = pd.array([records[i].epochs for i in order], dtype="Int64")
    data["wall_s"] = pd.array([_float(records[i].wall_s) for i in order], dtype="float64")
    data["at_edge"] = ["; ".join(edge_params(records[i].params, spec.ranges)) if i in best else "" for i in order]
    frame = pd.DataFrame({k: pd.Series(v, dtype=getattr(v, "dtype", None)) for k, v in data.items()})
    frame.attrs[ROLES_KEY] = {"objectives": objective_names, "tasks": task_names, "params": param_columns}
    return frame


def _float(value: float | None) -> float:
    return math.nan if value is None else value


def _status_text(record: TrialRecord) -> str:
    if record.status == "failed" and record.failure:
        return f"failed: {record.failure}"
    return record.status


def write_leaderboard(
    run_dir: str | os.PathLike, records: Sequence[TrialRecord], spec: LeaderboardSpec
) -> pd.DataFrame:
    """Builds the leaderboard and writes ``<run_dir>/leaderboard.csv`` and ``leaderboard.md`` atomically.

    Returns the frame written.
    """
    frame = build_leaderboard(records, spec)
    run_dir = Path(run_dir)
    _atomic_write(run_dir / "leaderboard.csv", frame.to_csv(index=False))
    _atomic_write(run_dir / "leaderboard.md", render_markdown(frame, title=run_dir.resolve().name))
    return frame
