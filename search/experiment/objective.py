"""What a search maximises: per-task scores normalised so that higher is better.

A task's score is its first metric on the validation split: accuracy, AUC and IoU as
they are; an error (MAE, MSE, RMSE) as ``1 - error / baseline``, where the baseline is
the error of always predicting the training mean (a skill score: 0 is no better than
the mean, 1 is perfect; clipped at 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from mtl_models.data import Splits
from mtl_models.spec import TaskSpec
from search.errors import ConfigError
from search.experiment.config import ObjectiveConfig
from search.experiment.metrics import ERROR_METRICS, OBJECTIVE, Split, metric_key, mode

__all__ = ["Objective", "Term", "build_objective", "task_term"]


@dataclass(frozen=True)
class Term:
    """One task metric as the objective reads it from Keras' epoch logs."""

    task: str
    metric: str
    weight: float = 1.0
    baseline: float | None = None  # the mean predictor's error, for error metrics

    def key(self, split: Split = "val") -> str:
        """The metric's key on ``split``, e.g. ``val_shape_accuracy``."""
        return metric_key(self.task, self.metric, split)

    @property
    def mode(self) -> str:
        return mode(self.metric)

    def score(self, value: float) -> float:
        """The value as a higher-is-better score in [0, 1]."""
        if self.metric not in ERROR_METRICS:
            return float(value)
        return max(0.0, 1.0 - float(value) / self.baseline) if self.baseline else 0.0


@dataclass(frozen=True)
class Objective:
    """Single objective: the weighted mean of ``terms``' scores (reported as ``objective``, max).

    Multi-objective: each term's raw validation value, in its own direction.
    """

    terms: tuple[Term, ...]
    multi: bool = False

    @property
    def metric(self) -> str | list[str]:
        """What the searcher and scheduler read: ``objective``, or each term's validation key."""
        return [t.key() for t in self.terms] if self.multi else OBJECTIVE

    @property
    def mode(self) -> str | list[str]:
        return [t.mode for t in self.terms] if self.multi else "max"

    def value(self, metrics: Mapping[str, float], *, split: Split = "val") -> float:
        """The single objective on ``split`` from metrics keyed as :func:`metric_key` spells them (NaN where
        a value is missing or not finite).

        For a multi-objective search this is the weighted mean of the terms' scores, which
        retraining uses to rank configurations.
        """
        total = sum(t.weight for t in self.terms)
        values = [metrics.get(t.key(split), math.nan) for t in self.terms]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return math.nan
        return sum(t.weight * t.score(v) for t, v in zip(self.terms, values)) / total

    def describe(self) -> str:
        if self.multi:
            return "Pareto front of " + ", ".join(f"{t.key()} ({t.mode})" for t in self.terms)
        if len(self.terms) == 1:
            return f"{self.terms[0].task}.{self.terms[0].metric} (normalised, max)"
        return "weighted mean of " + ", ".join(f"{t.weight:g}×{t.task}.{t.metric}" for t in self.terms)


def build_objective(config: ObjectiveConfig, tasks: tuple[TaskSpec, ...], splits: Splits) -> Objective:
    """Check the objective against the tasks and compute error baselines from the data."""
    by_name = {t.name: t for t in tasks}
    if config.multi:
        terms = tuple(_term(name, by_name, splits, "objective.metrics") for name in config.metrics)
        return Objective(terms, multi=True)
    if config.metric:
        return Objective((_term(config.metric, by_name, splits, "objective.metric"),))
    weights = config.weights or {t.name: 1.0 for t in tasks}
    for task in weights:
        if task not in by_name:
            raise ConfigError("objective.weights", f"must name tasks of the data set {sorted(by_name)}", task)
    terms = tuple(
        _term(name, by_name, splits, "objective.weights", weight=weight) for name, weight in weights.items() if weight > 0
    )
    return Objective(terms)


def _term(name: str, tasks: Mapping[str, TaskSpec], splits: Splits, field: str, *, weight: float = 1.0) -> Term:
    task_name, _, metric = name.partition(".")
    if task_name not in tasks:
        raise ConfigError(field, f"must name a task of the data set {sorted(tasks)}", name)
    task = tasks[task_name]
    metric = metric or task.score_metric
    if metric not in task.metrics:
        raise ConfigError(field, f"must name a metric task {task_name!r} reports {list(task.metrics)}", name)
    return task_term(task, splits, metric, weight=weight)


def task_term(task: TaskSpec, splits: Splits, metric: str | None = None, *, weight: float = 1.0) -> Term:
    """One task's metric (its score metric by default) as an objective term, with its error baseline."""
    metric = metric or task.score_metric
    baseline = _baseline(task, metric, splits) if metric in ERROR_METRICS else None
    return Term(task.name, metric, weight, baseline)


def _baseline(task: TaskSpec, metric: str, splits: Splits) -> float:
    train = np.asarray(splits.train.targets[task.name], dtype=np.float64)
    val = np.asarray(splits.val.targets[task.name], dtype=np.float64)
    error = val - train.mean(axis=0)
    if metric == "mae":
        return float(np.mean(np.abs(error)))
    mse = float(np.mean(error**2))
    return mse if metric == "mse" else math.sqrt(mse)
