"""What every engine shares: how the leaderboard ranks an experiment's trials."""

from __future__ import annotations

from search.leaderboard import Column, LeaderboardSpec, ParamRange
from search.prepared import Prepared

__all__ = ["leaderboard_spec"]


def leaderboard_spec(prepared: Prepared) -> LeaderboardSpec:
    """How the leaderboard ranks and flags this experiment's trials."""
    objective = prepared.objective
    tasks = tuple(Column(f"{t.name}_{t.score_metric}", "min" if t.score_metric in ("mae", "mse", "rmse") else "max")
                  for t in prepared.tasks)
    if objective.multi:
        objectives = tuple(Column(t.key.removeprefix("val_"), t.mode) for t in objective.terms)
    else:
        objectives = (Column("objective", "max"),)
    ranges = {name: ParamRange(low, high, log) for name, (low, high, log) in prepared.experiment.space.ranges().items()}
    return LeaderboardSpec(task_columns=tasks, objectives=objectives, ranges=ranges)
