"""Metrics of a trained model on one split: every task's metrics and the experiment's objective.

``split_metrics`` is how retraining judges a run on the validation and test splits, how
``evaluate`` recomputes an exported model's card, and how ``finetune`` checks that a head improved.
Keys follow :mod:`search.experiment.metrics`: ``test_shape_accuracy``, ``test_objective``.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras

from mtl_models.data import Dataset
from mtl_models.streaming import feed
from mtl_models.spec import TaskSpec
from search.experiment.metrics import OBJECTIVE, Split, from_keras_logs, metric_key, split_key
from search.experiment.objective import Objective

__all__ = ["EVAL_BATCH", "split_metrics"]

EVAL_BATCH = 256


def split_metrics(model: keras.Model, data: Dataset, tasks: Sequence[TaskSpec], objective: Objective | None = None,
                  *, split: Split) -> dict[str, float]:
    """Every metric of the model's tasks on ``data``, which is the ``split`` split, and the objective.

    Only the tasks the model has outputs for are evaluated (a single-task baseline has one);
    the objective is added only when every task it reads is present.
    """
    names = set(model.output_names)
    arguments = feed(data, EVAL_BATCH, tasks=tuple(t.name for t in tasks if t.name in names))
    if "y" in arguments:  # arrays: only those the model takes (a pipeline's are the data set's, the model's too)
        arguments["x"] = {k: v for k, v in arguments["x"].items() if k in {i.name for i in model.inputs}}
    logs = model.evaluate(**arguments, verbose=0, return_dict=True)
    # Keras names evaluation values as it names training ones: read them as such, name them by their split.
    found = from_keras_logs(logs, model.output_names)
    metrics = {metric_key(task.name, metric, split): found[metric_key(task.name, metric, "train")]
               for task in tasks if task.name in names for metric in task.metrics}
    if objective is not None:
        value = objective.value(metrics, split=split)
        if math.isfinite(value):
            metrics[split_key(OBJECTIVE, split)] = value
    return metrics
