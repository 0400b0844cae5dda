"""Objective scoring: per-task scores normalised so that higher is better, their weighted mean, baselines."""

import math

import numpy as np
import pytest

from mtl_models.data import Dataset, Splits
from mtl_models.spec import TaskSpec
from search.errors import ConfigError
from search.experiment.config import ObjectiveConfig
from search.experiment.objective import Objective, Term, build_objective

SHAPE = TaskSpec("shape", "classification", num_classes=3)
MIDPOINT = TaskSpec("midpoint", "regression", output_dim=1, metrics=("mae", "mse", "rmse"))


def _part(midpoints):
    n = len(midpoints)
    return Dataset("toy", {"x": np.zeros((n, 2), np.float32)},
                   {"shape": np.arange(n, dtype=np.int32) % 3, "midpoint": np.asarray(midpoints, np.float32)[:, None]},
                   (SHAPE, MIDPOINT))


# Training mean 0.5; the mean predictor's validation errors: |0.1 - 0.5|, |0.9 - 0.5| -> MAE 0.4, MSE 0.16.
SPLITS = Splits(train=_part([0.0, 1.0, 0.5]), val=_part([0.1, 0.9]), test=_part([0.5, 0.5]), seed=0)


def test_accuracy_scores_as_it_is_and_an_error_against_the_mean_predictor():
    assert Term("shape", "accuracy").score(0.8) == 0.8
    term = Term("midpoint", "mae", baseline=0.4)
    assert term.score(0.1) == pytest.approx(0.75)
    assert term.score(0.0) == 1.0
    assert term.score(0.8) == 0.0  # worse than the mean predictor: clipped at 0
    assert Term("midpoint", "mae", baseline=0.0).score(0.1) == 0.0
    assert term.key() == "val_midpoint_mae" and term.key("test") == "test_midpoint_mae" and term.mode == "min"


def test_the_objective_is_the_weighted_mean_of_scores_on_the_split_asked_for():
    objective = Objective((Term("shape", "accuracy", weight=3.0), Term("midpoint", "mae", weight=1.0, baseline=0.4)))
    metrics = {"val_shape_accuracy": 0.8, "val_midpoint_mae": 0.1, "test_shape_accuracy": 0.6, "test_midpoint_mae": 0.2}
    assert objective.value(metrics) == pytest.approx((3 * 0.8 + 0.75) / 4)
    assert objective.value(metrics, split="test") == pytest.approx((3 * 0.6 + 0.5) / 4)
    assert math.isnan(objective.value({"val_shape_accuracy": 0.8}))  # a term missing
    assert math.isnan(objective.value({**metrics, "val_midpoint_mae": math.nan}))
    assert objective.metric == "objective" and objective.mode == "max"


def test_build_objective_weights_every_task_by_default_and_computes_error_baselines():
    objective = build_objective(ObjectiveConfig(), (SHAPE, MIDPOINT), SPLITS)
    assert [(t.task, t.metric, t.weight) for t in objective.terms] == [("shape", "accuracy", 1.0),
                                                                       ("midpoint", "mae", 1.0)]
    assert objective.terms[1].baseline == pytest.approx(0.4)
    mse = build_objective(ObjectiveConfig(metric="midpoint.mse"), (SHAPE, MIDPOINT), SPLITS)
    assert mse.terms[0].baseline == pytest.approx(0.16)
    rmse = build_objective(ObjectiveConfig(metric="midpoint.rmse"), (SHAPE, MIDPOINT), SPLITS)
    assert rmse.terms[0].baseline == pytest.approx(0.4)
    weighted = build_objective(ObjectiveConfig(weights={"shape": 2.0, "midpoint": 0.0}), (SHAPE, MIDPOINT), SPLITS)
    assert [(t.task, t.weight) for t in weighted.terms] == [("shape", 2.0)]  # a zero weight drops the task


def test_multi_objective_reads_each_term_in_its_own_direction():
    objective = build_objective(ObjectiveConfig(metrics=("shape.accuracy", "midpoint.mae")), (SHAPE, MIDPOINT), SPLITS)
    assert objective.multi and objective.metric == ["val_shape_accuracy", "val_midpoint_mae"]
    assert objective.mode == ["max", "min"]
    assert objective.describe() == "Pareto front of val_shape_accuracy (max), val_midpoint_mae (min)"


@pytest.mark.parametrize("config, field, rule", [
    (ObjectiveConfig(metric="size"), "objective.metric", "must name a task of the data set"),
    (ObjectiveConfig(metric="shape.mae"), "objective.metric", "must name a metric task 'shape' reports"),
    (ObjectiveConfig(weights={"colour": 1.0}), "objective.weights", "must name tasks of the data set"),
    (ObjectiveConfig(metrics=("shape.accuracy", "midpoint.iou")), "objective.metrics", "must name a metric"),
])
def test_an_objective_naming_what_the_data_lacks_is_refused(config, field, rule):
    with pytest.raises(ConfigError, match=rule) as error:
        build_objective(config, (SHAPE, MIDPOINT), SPLITS)
    assert error.value.field == field
