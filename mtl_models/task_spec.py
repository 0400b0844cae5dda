"""The specs of a model's parts that come one per input or per task: inputs, tasks and their heads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mtl_models.errors import SpecError
from mtl_models.spec_rules import (ACTIVATIONS, KIND_METRICS, MAX_CLASSES, MAX_WIDTH, REGRESSION_LOSSES,
                                   RESERVED_TASK_PREFIX, TASK_KINDS, Activation, TaskKind, as_tuple, check_bool,
                                   check_choice, check_int, check_name, check_rate, check_type, is_number)

__all__ = ["HeadSpec", "InputSpec", "TaskSpec"]


@dataclass(frozen=True)
class InputSpec:
    """One model input: an image (H, W, C) or a vector (D,), with optional z-score statistics.

    ``mean`` and ``variance`` hold one value per channel (image) or feature (vector),
    computed on the training split only; the factory puts them in a normalisation layer
    inside the model so that a saved model takes raw inputs.
    """

    name: str
    shape: tuple[int, ...]
    mean: tuple[float, ...] | None = None
    variance: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_name("inputs.name", self.name)
        for attr in ("shape", "mean", "variance"):
            object.__setattr__(self, attr, as_tuple(getattr(self, attr)))
        where = f"inputs[{self.name}]"
        if not isinstance(self.shape, tuple) or len(self.shape) not in (1, 3):
            raise SpecError(f"{where}.shape", "must be (height, width, channels) or (features,)", self.shape)
        for dim in self.shape:
            check_int(f"{where}.shape", dim, 1)
        size = self.shape[-1]
        for attr in ("mean", "variance"):
            stats = getattr(self, attr)
            if stats is None:
                continue
            if not isinstance(stats, tuple) or len(stats) != size:
                raise SpecError(f"{where}.{attr}", f"must hold one value per channel/feature ({size})", stats)
            if not all(is_number(v) and math.isfinite(v) for v in stats):
                raise SpecError(f"{where}.{attr}", "must hold finite numbers", stats)
            object.__setattr__(self, attr, tuple(float(v) for v in stats))
        if (self.mean is None) != (self.variance is None):
            raise SpecError(f"{where}.variance", "must be given together with mean", self.variance)
        if self.variance is not None and min(self.variance) < 0:
            raise SpecError(f"{where}.variance", "must be >= 0", self.variance)

    @property
    def kind(self) -> Literal["image", "vector"]:
        return "image" if len(self.shape) == 3 else "vector"


@dataclass(frozen=True)
class TaskSpec:
    """What one task predicts and how it is scored.

    ``num_classes``: classes (classification, multi-class segmentation), labels
    (multilabel); 1 for binary and binary masks; unused (left at 1) for regression.
    ``output_dim``: regression targets; unused (left at 1) for every other kind.
    ``name`` may not start with ``backbone`` (reserved for the shared trunk's layers).
    ``activation``: regression output, ``linear`` or ``sigmoid`` (targets in [0, 1]).
    ``metrics``: the first is the task's score in objectives and tables.
    ``spatial``: the label says where something is in the image (a position, a distance, which side), so a
    geometric augmentation, which moves the image but not the label, would make it wrong and is refused.
    """

    name: str
    kind: TaskKind
    num_classes: int = 1
    output_dim: int = 1
    activation: Activation = "linear"
    loss: str | None = None
    metrics: tuple[str, ...] = ()
    input: str | None = None  # segmentation: the image input the mask belongs to
    class_names: tuple[str, ...] = ()  # what each class index means, in order; () when the data names none
    spatial: bool = False

    def __post_init__(self) -> None:
        check_name("tasks.name", self.name)
        if self.name.startswith(RESERVED_TASK_PREFIX):
            raise SpecError("tasks.name", f"must not start with {RESERVED_TASK_PREFIX!r} (reserved for the shared "
                            "trunk's layers)", self.name)
        where = f"tasks[{self.name}]"
        check_choice(f"{where}.kind", self.kind, TASK_KINDS)
        check_bool(f"{where}.spatial", self.spatial)
        check_int(f"{where}.num_classes", self.num_classes, 1, MAX_CLASSES)
        check_int(f"{where}.output_dim", self.output_dim, 1)
        if self.kind == "classification" and self.num_classes < 2:
            raise SpecError(f"{where}.num_classes", "must be >= 2 for a classification task", self.num_classes)
        if self.kind == "binary" and self.num_classes != 1:
            raise SpecError(f"{where}.num_classes", "must be 1 for a binary task (use multilabel)", self.num_classes)
        if self.kind == "regression" and self.num_classes != 1:
            raise SpecError(f"{where}.num_classes", "is not used by a regression task; set output_dim instead",
                            self.num_classes)
        if self.kind != "regression" and self.output_dim != 1:
            raise SpecError(f"{where}.output_dim", f"is only for regression tasks; a {self.kind} task takes its "
                            "output size from num_classes", self.output_dim)
        check_choice(f"{where}.activation", self.activation, ACTIVATIONS)
        if self.activation != "linear" and self.kind != "regression":
            raise SpecError(f"{where}.activation", f"is fixed by the kind for a {self.kind} task; leave it unset",
                            self.activation)
        if self.input is not None:
            if self.kind != "segmentation":
                raise SpecError(f"{where}.input", "is only for segmentation tasks", self.input)
            check_name(f"{where}.input", self.input)
        if self.kind == "regression":
            object.__setattr__(self, "loss", self.loss or "mse")
            check_choice(f"{where}.loss", self.loss, REGRESSION_LOSSES)
        elif self.loss is not None:
            raise SpecError(f"{where}.loss", f"is fixed by the kind for a {self.kind} task; leave it unset", self.loss)
        metrics = as_tuple(self.metrics) or KIND_METRICS[self.kind][:1]
        if not isinstance(metrics, tuple):
            raise SpecError(f"{where}.metrics", "must be a list of metric names", metrics)
        for metric in metrics:
            check_choice(f"{where}.metrics", metric, KIND_METRICS[self.kind])
        object.__setattr__(self, "metrics", metrics)
        self._check_class_names(where)

    def _check_class_names(self, where: str) -> None:
        names = as_tuple(self.class_names)
        if not isinstance(names, tuple) or not all(isinstance(n, str) and n for n in names):
            raise SpecError(f"{where}.class_names", "must be a list of non-empty strings", self.class_names)
        if names:
            expected = 2 if self.kind == "binary" else self.num_classes
            if self.kind not in ("classification", "binary", "multilabel"):
                raise SpecError(f"{where}.class_names", f"is only for class tasks, not {self.kind}", names)
            if len(names) != expected:
                raise SpecError(f"{where}.class_names", f"must name {expected} classes (a binary task: the "
                                "negative, then the positive)", names)
            if len(set(names)) != len(names):
                raise SpecError(f"{where}.class_names", "must be distinct", names)
        object.__setattr__(self, "class_names", names)

    @property
    def score_metric(self) -> str:
        """The metric that scores this task (the first of ``metrics``)."""
        return self.metrics[0]


@dataclass(frozen=True)
class HeadSpec:
    """One task's head: a hidden layer, dropout, gradient isolation and transfer edges.

    ``units=0`` means no hidden layer (the output sits on the shared features).
    ``transfer_from`` names heads whose hidden features are concatenated into this
    head's input ("semantic transfer"). ``stop_gradient`` keeps this head's loss from
    reaching any shared weight. ``dropout`` follows the hidden layer (the decoder on a
    segmentation head), so it needs ``units > 0``. ``loss_weight`` scales the task's loss
    under ``loss_weighting="fixed"`` and is ignored under ``"uncertainty"``, where the
    weight is learned.
    """

    task: TaskSpec
    units: int = 64
    dropout: float = 0.0
    stop_gradient: bool = False
    transfer_from: tuple[str, ...] = ()
    loss_weight: float = 1.0

    def __post_init__(self) -> None:
        check_type("heads.task", self.task, TaskSpec)
        where = f"heads[{self.task.name}]"
        object.__setattr__(self, "transfer_from", as_tuple(self.transfer_from))
        check_int(f"{where}.units", self.units, 0, MAX_WIDTH)
        check_rate(f"{where}.dropout", self.dropout)
        if self.dropout and self.units == 0 and self.task.kind != "segmentation":
            raise SpecError(f"{where}.dropout", "acts on the hidden layer, and units=0 means there is none; "
                            "set units > 0 or leave dropout at 0", self.dropout)
        if not isinstance(self.stop_gradient, bool):
            raise SpecError(f"{where}.stop_gradient", "must be true or false", self.stop_gradient)
        if not isinstance(self.transfer_from, tuple) or not all(isinstance(t, str) for t in self.transfer_from):
            raise SpecError(f"{where}.transfer_from", "must be a list of task names", self.transfer_from)
        if not is_number(self.loss_weight) or not (
            math.isfinite(self.loss_weight) and self.loss_weight >= 0
        ):
            raise SpecError(f"{where}.loss_weight", "must be a finite float >= 0", self.loss_weight)
        object.__setattr__(self, "loss_weight", float(self.loss_weight))
        if self.task.kind == "segmentation" and self.units < 1:
            raise SpecError(f"{where}.units", "must be >= 1 for a segmentation head (decoder filters)", self.units)

    @property
    def name(self) -> str:
        return self.task.name
