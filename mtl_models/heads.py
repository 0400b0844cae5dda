"""One head per task: hidden layer, transfer edges, stop-gradient, and the task's output."""

from __future__ import annotations

import keras
from keras import layers

from mtl_models.backbone import Trunk
from mtl_models.layers import StopGradient, TaskUncertainty
from mtl_models.metrics import WithinDistance
from mtl_models.spec import HeadSpec, TaskSpec

__all__ = ["build_head", "loss_name", "head_metrics"]


def loss_name(task: TaskSpec) -> str:
    """The loss a task trains with, by name."""
    if task.kind == "regression":
        return task.loss
    if task.kind in ("binary", "multilabel") or (task.kind == "segmentation" and task.num_classes == 1):
        return "binary_crossentropy"
    return "sparse_categorical_crossentropy"


def head_metrics(task: TaskSpec) -> list[keras.metrics.Metric]:
    """Fresh metric objects for a task, named as in ``task.metrics`` (logged as ``<task>_<metric>``)."""
    sparse = task.kind == "classification" or (task.kind == "segmentation" and task.num_classes > 1)
    made = []
    for name in task.metrics:
        if name == "accuracy":
            metric = keras.metrics.SparseCategoricalAccuracy if sparse else keras.metrics.BinaryAccuracy
            made.append(metric(name="accuracy"))
        elif name == "top3_accuracy":
            made.append(keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3_accuracy"))
        elif name == "auc":
            made.append(keras.metrics.AUC(name="auc", multi_label=task.kind == "multilabel"))
        elif name == "mae":
            made.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif name == "mse":
            made.append(keras.metrics.MeanSquaredError(name="mse"))
        elif name == "rmse":
            made.append(keras.metrics.RootMeanSquaredError(name="rmse"))
        elif name == "within_5pct":
            made.append(WithinDistance(0.05, name="within_5pct"))
        elif name == "iou" and task.num_classes == 1:
            made.append(keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="iou"))
        elif name == "iou":
            made.append(keras.metrics.MeanIoU(task.num_classes, sparse_y_true=True, sparse_y_pred=False, name="iou"))
        else:  # the spec validates names, so this is a programming error
            raise ValueError(f"No metric {name!r} for a {task.kind} task.")
    return made


def build_head(head: HeadSpec, trunk: Trunk, hidden: dict, *, uncertainty: bool):
    """Build one head on ``trunk``. Returns (output tensor, hidden tensor or None).

    ``hidden`` maps already-built heads to their hidden features, for transfer edges.
    """
    t = head.name
    if head.task.kind == "segmentation":
        x = trunk.feature_map
        if head.stop_gradient:
            x = StopGradient(name=f"{t}__stop_gradient")(x)
        return _finish(head, _decode_mask(head, x, trunk.downsamplings), uncertainty), None

    x = trunk.features
    if head.stop_gradient:
        x = StopGradient(name=f"{t}__stop_gradient")(x)
    if head.transfer_from:
        sources = [hidden[s] for s in head.transfer_from]
        if head.stop_gradient:  # the transferred features also lead back to the backbone
            sources = [StopGradient(name=f"{t}__stop_gradient_{s}")(h) for s, h in zip(head.transfer_from, sources)]
        x = layers.Concatenate(name=f"{t}__transfer")([x, *sources])
    features = None
    if head.units:
        features = layers.Dense(head.units, activation="relu", name=f"{t}__hidden")(x)
        x = features
        if head.dropout:
            x = layers.Dropout(head.dropout, name=f"{t}__dropout")(x)
    task = head.task
    if task.kind == "classification":
        units, activation = task.num_classes, "softmax"
    elif task.kind in ("binary", "multilabel"):
        units, activation = task.num_classes, "sigmoid"
    else:
        units, activation = task.output_dim, task.activation
    name = f"{t}__output" if uncertainty else t
    out = layers.Dense(units, activation=activation, name=name)(x)
    return _finish(head, out, uncertainty), features


def _decode_mask(head: HeadSpec, x, downsamplings: int):
    """Upsample the feature map back to the image size, one conv per halving."""
    t = head.name
    for step in range(1, downsamplings + 1):
        x = layers.UpSampling2D(2, name=f"{t}__upsample{step}")(x)
        x = layers.Conv2D(head.units, 3, padding="same", activation="relu", name=f"{t}__decode{step}")(x)
    if not downsamplings:
        x = layers.Conv2D(head.units, 3, padding="same", activation="relu", name=f"{t}__decode")(x)
    if head.dropout:
        x = layers.Dropout(head.dropout, name=f"{t}__dropout")(x)
    return x


def _finish(head: HeadSpec, x, uncertainty: bool):
    t, task = head.name, head.task
    if task.kind == "segmentation":
        classes = task.num_classes
        activation = "sigmoid" if classes == 1 else "softmax"
        x = layers.Conv2D(classes, 1, activation=activation, name=f"{t}__output" if uncertainty else t)(x)
    if uncertainty:
        x = TaskUncertainty(loss_name(task), name=t)(x)
    return x
