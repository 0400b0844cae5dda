"""The metric vocabulary: how a metric key is spelled, which split it holds, which way it improves.

One name for one thing: a key says its split — ``train_shape_accuracy``, ``val_shape_accuracy``,
``test_shape_accuracy`` — and :func:`metric_key` is the one place that spells it. The objective
follows the same rule (``val_objective`` in an epoch's history, ``test_objective`` in a retrain
table), except as :data:`OBJECTIVE`: the value a search ranks by and reports to Ray Tune and Optuna,
which is on the validation split by definition.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

__all__ = ["ERROR_METRICS", "OBJECTIVE", "SPLITS", "from_keras_logs", "higher_is_better", "metric_key", "mode",
           "split_key"]

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
# Errors, scored against the mean predictor (see objective.py); every other task metric rises as a model improves.
ERROR_METRICS = ("mae", "mse", "rmse")
_LOWER_IS_BETTER = (*ERROR_METRICS, "loss")
OBJECTIVE = "objective"


def split_key(name: str, split: Split) -> str:
    """``name`` on ``split``: ``split_key("objective", "val") == "val_objective"``."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, but got split={split!r}.")
    return f"{split}_{name}"


def metric_key(task: str, metric: str, split: Split) -> str:
    """The key of a task's metric on a split, e.g. ``metric_key("shape", "accuracy", "val")``."""
    return split_key(f"{task}_{metric}", split)


def higher_is_better(metric: str) -> bool:
    """Whether a metric (``accuracy``, ``mae``) or a key ending in one (``val_midpoint_mae``) rises as a model
    improves: accuracy, AUC, IoU, within-distance rates and the objective do; errors and losses fall."""
    return metric.rsplit("_", 1)[-1] not in _LOWER_IS_BETTER


def mode(metric: str) -> Literal["max", "min"]:
    """``"max"`` where :func:`higher_is_better`, else ``"min"``."""
    return "max" if higher_is_better(metric) else "min"


def from_keras_logs(logs: Mapping[str, float], outputs: Sequence[str]) -> dict[str, float]:
    """One epoch's Keras logs in this vocabulary.

    Keras names training values without a split (``loss``, ``shape_accuracy``) and validation ones
    with ``val_``; a model with one output drops the task (``mae``, ``val_mae``), so ``outputs``
    (the model's output names) supplies it. Returns ``train_loss``, ``train_shape_accuracy``,
    ``val_shape_accuracy``, ...; values as floats.
    """
    only = outputs[0] if len(outputs) == 1 else None
    out = {}
    for key, value in logs.items():
        split, name = ("val", key.removeprefix("val_")) if key.startswith("val_") else ("train", key)
        if only and name != "loss" and not name.startswith(f"{only}_"):
            name = f"{only}_{name}"
        out[split_key(name, split)] = float(value)
    return out
