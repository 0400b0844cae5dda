"""The metric vocabulary: one spelling of a key per task, metric and split, and which way it improves."""

import pytest

from search.experiment.metrics import from_keras_logs, higher_is_better, metric_key, mode, split_key


def test_a_key_names_task_metric_and_split():
    assert metric_key("shape", "accuracy", "val") == "val_shape_accuracy"
    assert metric_key("midpoint", "mae", "test") == "test_midpoint_mae"
    assert split_key("objective", "train") == "train_objective"
    with pytest.raises(ValueError, match="`split` must be one of"):
        split_key("objective", "validation")


@pytest.mark.parametrize("metric, higher", [
    ("accuracy", True), ("val_shape_accuracy", True), ("test_colour_auc", True), ("iou", True),
    ("val_midpoint_within_5pct", True), ("objective", True), ("test_objective", True),
    ("mae", False), ("val_midpoint_mae", False), ("test_size_rmse", False), ("mse", False), ("train_loss", False),
])
def test_higher_is_better_knows_errors_and_losses(metric, higher):
    assert higher_is_better(metric) is higher
    assert mode(metric) == ("max" if higher else "min")


def test_keras_logs_get_their_split():
    logs = {"loss": 1.5, "shape_accuracy": 0.5, "midpoint_mae": 0.2, "val_loss": 1.7, "val_shape_accuracy": 0.4}
    assert from_keras_logs(logs, ["shape", "midpoint"]) == {
        "train_loss": 1.5, "train_shape_accuracy": 0.5, "train_midpoint_mae": 0.2,
        "val_loss": 1.7, "val_shape_accuracy": 0.4}


def test_a_one_output_model_s_logs_get_their_task_back():
    """Keras drops the output's name when there is one output (``mae``, not ``midpoint_mae``)."""
    logs = {"loss": 0.3, "mae": 0.2, "val_loss": 0.4, "val_mae": 0.25, "midpoint_within_5pct": 0.9}
    assert from_keras_logs(logs, ["midpoint"]) == {
        "train_loss": 0.3, "train_midpoint_mae": 0.2, "val_loss": 0.4, "val_midpoint_mae": 0.25,
        "train_midpoint_within_5pct": 0.9}
