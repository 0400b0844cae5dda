"""Metrics of a trained model on one split, and how multi-task models compare with single-task ones.

``split_metrics`` gives every task's metrics (``<task>_<metric>``, as Keras names them)
and the experiment's objective on a split the model is judged on, usually the test
split. ``delta_m`` is LibMTL's Δm%: the mean relative gain of the multi-task model over
single-task models, each task's sign set by whether its metric is higher- or lower-better.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import keras
import numpy as np

from mtl_models.data import Dataset
from mtl_models.spec import TaskSpec
from search.objective import ERROR_METRICS, Objective

__all__ = ["split_metrics", "delta_m", "higher_is_better", "mean_std"]

EVAL_BATCH = 256


def higher_is_better(metric: str) -> bool:
    """Accuracy, AUC, IoU and within-distance rates rise as a model improves; errors fall."""
    return metric.rsplit("_", 1)[-1] not in ERROR_METRICS and metric not in ERROR_METRICS


def split_metrics(model: keras.Model, data: Dataset, tasks: Sequence[TaskSpec],
                  objective: Objective | None = None) -> dict[str, float]:
    """Every metric of the model's tasks on ``data`` (``shape_accuracy``, ...) and ``objective``.

    Only the tasks the model has outputs for are evaluated (a single-task baseline has one);
    ``objective`` is added only when every task it reads is present.
    """
    names = set(model.output_names)
    inputs = {k: v for k, v in data.inputs.items() if k in {i.name for i in model.inputs}}
    targets = {t.name: data.targets[t.name] for t in tasks if t.name in names}
    logs = model.evaluate(inputs, targets, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
    metrics = {}
    for task in tasks:
        if task.name not in names:
            continue
        for metric in task.metrics:
            key = f"{task.name}_{metric}"
            if key not in logs and len(names) == 1 and metric in logs:  # one output: Keras drops the prefix
                metrics[key] = float(logs[metric])
            else:
                metrics[key] = float(logs[key])
    if objective is not None:
        value = objective.value(metrics, prefix="")
        if math.isfinite(value):
            metrics["objective"] = value
    return metrics


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def delta_m(multi: Mapping[str, float], single: Mapping[str, float]) -> float:
    """Δm% = 100/T · Σ_t (-1)^{l_t} (M_multi,t − M_single,t) / M_single,t  (LibMTL).

    ``multi`` and ``single`` map the same metric keys (e.g. ``shape_accuracy``) to values;
    ``l_t`` is 1 where lower is better. Positive means sharing helped.
    """
    keys = sorted(single)
    if not keys or set(keys) - set(multi):
        raise ValueError(f"delta_m needs the multi-task model's value of every key {keys}")
    gains = []
    for key in keys:
        base = single[key]
        if base == 0:
            continue
        sign = 1.0 if higher_is_better(key) else -1.0
        gains.append(sign * (multi[key] - base) / abs(base))
    return 100.0 * float(np.mean(gains)) if gains else math.nan
