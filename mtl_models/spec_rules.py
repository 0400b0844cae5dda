"""The rules a spec's fields are checked by: the allowed values, the bounds, and the checks that raise
:class:`~mtl_models.errors.SpecError` naming the field, the rule and the value."""

from __future__ import annotations

import numbers
import re
from typing import Literal, get_args

from mtl_models.errors import SpecError

# Each set of allowed values is written once, as the Literal a field is typed with; the tuple a
# check reads is derived from it.
TaskKind = Literal["classification", "binary", "multilabel", "regression", "segmentation"]
Activation = Literal["linear", "sigmoid"]
Pooling = Literal["max", "avg", "none"]
GlobalPooling = Literal["avg", "flatten"]
OptimizerName = Literal["adam", "adamw", "sgd", "rmsprop"]  # Keras' own names: keras.optimizers.get(name)
LossWeighting = Literal["fixed", "uncertainty"]
Sharing = Literal["hard", "separate"]
BackboneKind = Literal["conv", "keras_application"]
Application = Literal["MobileNetV3Small", "EfficientNetB0", "ResNet50"]  # keras.applications' own names
Flip = Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]  # keras.layers.RandomFlip's modes
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
POOLINGS: tuple[str, ...] = get_args(Pooling)
GLOBAL_POOLINGS: tuple[str, ...] = get_args(GlobalPooling)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
LOSS_WEIGHTINGS: tuple[str, ...] = get_args(LossWeighting)
SHARINGS: tuple[str, ...] = get_args(Sharing)
BACKBONE_KINDS: tuple[str, ...] = get_args(BackboneKind)
APPLICATIONS: tuple[str, ...] = get_args(Application)
FLIPS: tuple[str, ...] = get_args(Flip)
# Every application takes images of at least 32x32 and halves them five times (a stride of 32), as Keras
# builds them (imagenet_utils.obtain_input_shape's min_size; the strided stem and stages).
APPLICATION_MIN_SIDE = 32
APPLICATION_DOWNSAMPLINGS = 5
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5")  # Keras 3's weights file, or a legacy HDF5 one

# Metrics each kind of task may report; the first is the default and the task's score.
KIND_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "top3_accuracy"),
    "binary": ("accuracy", "auc"),
    "multilabel": ("accuracy", "auc"),
    "regression": ("mae", "mse", "rmse", "within_5pct"),
    "segmentation": ("iou", "accuracy"),
}
REGRESSION_LOSSES = ("mse", "mae", "huber")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Layers named ``backbone...__*`` are the shared trunk (see backbone.is_backbone_layer).
RESERVED_TASK_PREFIX = "backbone"


def check_name(field_name: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value) or "__" in value:
        raise SpecError(
            field_name,
            "must be a letter followed by letters, digits or single underscores",
            value,
        )


MAX_WIDTH = 16_384  # units or filters of one layer: 8x ResNet-50's widest; wider fails on memory, not on a rule
MAX_CLASSES = 1_000_000  # classes (or labels) of one task: 46x ImageNet-21k's; more fails on memory, not on a rule


def check_int(field_name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        rule = f"must be an integer >= {low}" if high is None else f"must be an integer in [{low}, {high}]"
        raise SpecError(field_name, rule, value)


def check_rate(field_name: str, value: object) -> None:
    if not is_number(value) or not 0.0 <= float(value) < 1.0:
        raise SpecError(field_name, "must be a float in [0, 1)", value)


def check_float(field_name: str, value: object, low: float, high: float) -> float:
    """``value`` as a float, if it is a number in [low, high]."""
    if not is_number(value) or not low <= float(value) <= high:
        raise SpecError(field_name, f"must be a float in [{low:g}, {high:g}]", value)
    return float(value)


def check_bool(field_name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SpecError(field_name, "must be true or false", value)


def check_choice(field_name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(field_name, f"must be one of {list(choices)}", value)


def check_type(field_name: str, value: object, cls: type) -> None:
    if not isinstance(value, cls):
        raise SpecError(field_name, f"must be a {cls.__name__}", value)


def check_tuple_of(field_name: str, values: object, cls: type) -> None:
    if not isinstance(values, tuple) or not all(isinstance(v, cls) for v in values):
        raise SpecError(field_name, f"must be a list of {cls.__name__}", values)


def as_tuple(value: object) -> object:
    if isinstance(value, list) or type(value).__name__ == "ndarray":
        return tuple(value.tolist() if hasattr(value, "tolist") else value)
    return value


def is_number(value: object) -> bool:
    """A real number that is not a bool (NumPy scalars included)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)
