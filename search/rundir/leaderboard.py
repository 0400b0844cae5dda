"""The leaderboard: trial records ranked into a table, with Pareto fronts and edge-of-range flags.

:func:`build_leaderboard` ranks :class:`~search.rundir.records.TrialRecord` s into a ``pandas.DataFrame``;
:func:`write_leaderboard` saves it as ``leaderboard.csv`` and ``leaderboard.md``; :func:`leaderboard_spec`
says what an experiment's leaderboard shows. Pure Python, numpy and pandas: nothing here imports Ray,
Optuna or Keras, so a leaderboard can be rebuilt on any machine.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from search.experiment.metrics import OBJECTIVE, metric_key, mode
from search.rundir.records import SCHEDULER_FILE, TrialRecord, atomic_write
from search.rundir.render import ROLES_KEY, format_number, render_markdown

if TYPE_CHECKING:
    from search.experiment.prepared import Prepared

__all__ = ["Column", "LeaderboardSpec", "ParamRange", "build_leaderboard", "edge_params", "leaderboard_spec",
           "pareto_ranks", "trial_attrs", "write_leaderboard"]

# Leaderboard columns a metric or objective may not be named after.
_RESERVED = ("rank", "trial", "status", "pareto", "epochs", "wall_s", "at_edge")


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


def edge_params(params: Mapping[str, Any], ranges: Mapping[str, ParamRange], *, tolerance: float = 0.05) -> list[str]:
    """The numeric params within ``tolerance`` of either end of their search range (in log space for log ranges).

    Returns one line each, sorted by name, e.g. ``"backbone.filters=64 (high end of [16, 64])"``: a hint that
    the best value may lie outside the range searched.
    """
    if not 0.0 <= tolerance < 0.5:
        raise ValueError(f"`0 <= tolerance < 0.5` must hold, but got tolerance={tolerance!r}.")
    flagged = []
    for name in sorted(ranges):
        value, span = params.get(name), ranges[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            continue
        if span.log:
            position = (
                (math.log(value) - math.log(span.low)) / (math.log(span.high) - math.log(span.low))
                if value > 0
                else -math.inf
            )
        else:
            position = (value - span.low) / (span.high - span.low)
        end = "low" if position <= tolerance else "high" if position >= 1.0 - tolerance else None
        if end:
            bounds = f"[{format_number(span.low)}, {format_number(span.high)}]"
            flagged.append(f"{name}={format_number(value)} ({end} end of {bounds})")
    return flagged


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
    task_names = _task_names(spec)
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


def _task_names(spec: LeaderboardSpec) -> list[str]:
    """The task columns' names in the table: ``best_<name>`` where an objective column has the name."""
    objective_names = {c.name for c in spec.objectives}
    return [f"best_{c.name}" if c.name in objective_names else c.name for c in spec.task_columns]


def trial_attrs(record: TrialRecord, spec: LeaderboardSpec) -> dict[str, str | float | int]:
    """What the leaderboard shows of a trial besides its rank, objective and params, keyed as its columns:
    ``status`` as the column reads, each task's best validation metric (left out where the table has none) and
    ``epochs``. The Optuna study keeps them as each trial's user attributes (search.engines.ray_tune)."""
    attrs: dict[str, str | float | int] = {"status": _status_text(record)}
    for column, name in zip(spec.task_columns, _task_names(spec)):
        value = record.task_metrics.get(column.name)
        if value is not None and math.isfinite(value):
            attrs[name] = value
    attrs["epochs"] = record.epochs
    return attrs


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
    atomic_write(run_dir / "leaderboard.csv", frame.to_csv(index=False))
    atomic_write(run_dir / "leaderboard.md", render_markdown(frame, title=run_dir.resolve().name,
                                                             notes=scheduler_notes(run_dir)))
    return frame


def scheduler_notes(run_dir: Path) -> list[str]:
    """What the scheduler decided and why (its ``scheduler.json``), as lines under the table."""
    path = run_dir / SCHEDULER_FILE
    if not path.is_file():
        return []
    state = json.loads(path.read_text())
    first = state.get("first_cut_epoch")
    mode = "adaptive successive halving" if state.get("adaptive") else "successive halving"
    cut = f"first cut at epoch {first}" if first else "first cut not decided yet (no trial is cut before it is)"
    lines = [f"Scheduler: {mode} over rungs at epochs {state.get('rungs')}; {cut}."]
    lines += [f"- {d['text']}." for d in state.get("decisions", [])]
    if state.get("lead"):
        lines.append(f"- Lead, {state['lead']['text']}.")
    if state.get("cooldown"):
        lines.append(f"- Cooldown, {state['cooldown']['text']}.")
    return lines


def leaderboard_spec(prepared: Prepared) -> LeaderboardSpec:
    """How the leaderboard ranks and flags an experiment's trials (the same for every engine).

    Task columns hold each task's best validation score; a multi-objective search ranks by its
    objectives' validation keys, a single-objective one by ``objective``.
    """
    objective = prepared.objective
    tasks = tuple(Column(metric_key(t.name, t.score_metric, "val"), mode(t.score_metric)) for t in prepared.tasks)
    if objective.multi:
        objectives = tuple(Column(t.key(), t.mode) for t in objective.terms)
    else:
        objectives = (Column(OBJECTIVE, "max"),)
    ranges = {name: ParamRange(low, high, log) for name, (low, high, log) in prepared.experiment.space.ranges().items()}
    return LeaderboardSpec(task_columns=tasks, objectives=objectives, ranges=ranges)
