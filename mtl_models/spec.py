"""Frozen, validated specs: what a multi-task model is, independent of how it is built.

A spec is the one typed value that crosses the boundary between a user's file (or a
search engine's sample) and the factory. Every field is checked in ``__post_init__``;
an invalid value raises :class:`SpecError` naming the field, the rule and the value.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mtl_models.errors import SpecError

__all__ = [
    "ACTIVATIONS",
    "GLOBAL_POOLINGS",
    "LOSS_WEIGHTINGS",
    "OPTIMIZERS",
    "POOLINGS",
    "SHARINGS",
    "TASK_KINDS",
    "InputSpec",
    "TaskSpec",
    "HeadSpec",
    "BackboneSpec",
    "OptimizerSpec",
    "ModelSpec",
]

# Each set of allowed values is written once, as the Literal a field is typed with; the tuple a
# check reads is derived from it.
TaskKind = Literal["classification", "binary", "multilabel", "regression", "segmentation"]
Activation = Literal["linear", "sigmoid"]
Pooling = Literal["max", "avg", "none"]
GlobalPooling = Literal["avg", "flatten"]
OptimizerName = Literal["adam", "adamw", "sgd", "rmsprop"]  # Keras' own names: keras.optimizers.get(name)
LossWeighting = Literal["fixed", "uncertainty"]
Sharing = Literal["hard", "separate"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
POOLINGS: tuple[str, ...] = get_args(Pooling)
GLOBAL_POOLINGS: tuple[str, ...] = get_args(GlobalPooling)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
LOSS_WEIGHTINGS: tuple[str, ...] = get_args(LossWeighting)
SHARINGS: tuple[str, ...] = get_args(Sharing)

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


def _check_name(field_name: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value) or "__" in value:
        raise SpecError(
            field_name,
            "must be a letter followed by letters, digits or single underscores",
            value,
        )


MAX_WIDTH = 16_384  # units or filters of one layer: 8x ResNet-50's widest; wider fails on memory, not on a rule
MAX_CLASSES = 1_000_000  # classes (or labels) of one task: 46x ImageNet-21k's; more fails on memory, not on a rule


def _check_int(field_name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        rule = f"must be an integer >= {low}" if high is None else f"must be an integer in [{low}, {high}]"
        raise SpecError(field_name, rule, value)


def _check_rate(field_name: str, value: object) -> None:
    if not _is_number(value) or not 0.0 <= float(value) < 1.0:
        raise SpecError(field_name, "must be a float in [0, 1)", value)


def _check_choice(field_name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(field_name, f"must be one of {list(choices)}", value)


def _check_type(field_name: str, value: object, cls: type) -> None:
    if not isinstance(value, cls):
        raise SpecError(field_name, f"must be a {cls.__name__}", value)


def _check_tuple_of(field_name: str, values: object, cls: type) -> None:
    if not isinstance(values, tuple) or not all(isinstance(v, cls) for v in values):
        raise SpecError(field_name, f"must be a list of {cls.__name__}", values)


def _as_tuple(value: object) -> object:
    if isinstance(value, list) or type(value).__name__ == "ndarray":
        return tuple(value.tolist() if hasattr(value, "tolist") else value)
    return value


def _is_number(value: object) -> bool:
    """A real number that is not a bool (NumPy scalars included)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


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
        _check_name("inputs.name", self.name)
        for attr in ("shape", "mean", "variance"):
            object.__setattr__(self, attr, _as_tuple(getattr(self, attr)))
        where = f"inputs[{self.name}]"
        if not isinstance(self.shape, tuple) or len(self.shape) not in (1, 3):
            raise SpecError(f"{where}.shape", "must be (height, width, channels) or (features,)", self.shape)
        for dim in self.shape:
            _check_int(f"{where}.shape", dim, 1)
        size = self.shape[-1]
        for attr in ("mean", "variance"):
            stats = getattr(self, attr)
            if stats is None:
                continue
            if not isinstance(stats, tuple) or len(stats) != size:
                raise SpecError(f"{where}.{attr}", f"must hold one value per channel/feature ({size})", stats)
            if not all(_is_number(v) and math.isfinite(v) for v in stats):
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
    """

    name: str
    kind: TaskKind
    num_classes: int = 1
    output_dim: int = 1
    activation: Activation = "linear"
    loss: str | None = None
    metrics: tuple[str, ...] = ()
    input: str | None = None  # segmentation: the image input the mask belongs to

    def __post_init__(self) -> None:
        _check_name("tasks.name", self.name)
        if self.name.startswith(RESERVED_TASK_PREFIX):
            raise SpecError("tasks.name", f"must not start with {RESERVED_TASK_PREFIX!r} (reserved for the shared "
                            "trunk's layers)", self.name)
        where = f"tasks[{self.name}]"
        _check_choice(f"{where}.kind", self.kind, TASK_KINDS)
        _check_int(f"{where}.num_classes", self.num_classes, 1, MAX_CLASSES)
        _check_int(f"{where}.output_dim", self.output_dim, 1)
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
        _check_choice(f"{where}.activation", self.activation, ACTIVATIONS)
        if self.activation != "linear" and self.kind != "regression":
            raise SpecError(f"{where}.activation", f"is fixed by the kind for a {self.kind} task; leave it unset",
                            self.activation)
        if self.input is not None:
            if self.kind != "segmentation":
                raise SpecError(f"{where}.input", "is only for segmentation tasks", self.input)
            _check_name(f"{where}.input", self.input)
        if self.kind == "regression":
            object.__setattr__(self, "loss", self.loss or "mse")
            _check_choice(f"{where}.loss", self.loss, REGRESSION_LOSSES)
        elif self.loss is not None:
            raise SpecError(f"{where}.loss", f"is fixed by the kind for a {self.kind} task; leave it unset", self.loss)
        metrics = _as_tuple(self.metrics) or KIND_METRICS[self.kind][:1]
        if not isinstance(metrics, tuple):
            raise SpecError(f"{where}.metrics", "must be a list of metric names", metrics)
        for metric in metrics:
            _check_choice(f"{where}.metrics", metric, KIND_METRICS[self.kind])
        object.__setattr__(self, "metrics", metrics)

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
        _check_type("heads.task", self.task, TaskSpec)
        where = f"heads[{self.task.name}]"
        object.__setattr__(self, "transfer_from", _as_tuple(self.transfer_from))
        _check_int(f"{where}.units", self.units, 0, MAX_WIDTH)
        _check_rate(f"{where}.dropout", self.dropout)
        if self.dropout and self.units == 0 and self.task.kind != "segmentation":
            raise SpecError(f"{where}.dropout", "acts on the hidden layer, and units=0 means there is none; "
                            "set units > 0 or leave dropout at 0", self.dropout)
        if not isinstance(self.stop_gradient, bool):
            raise SpecError(f"{where}.stop_gradient", "must be true or false", self.stop_gradient)
        if not isinstance(self.transfer_from, tuple) or not all(isinstance(t, str) for t in self.transfer_from):
            raise SpecError(f"{where}.transfer_from", "must be a list of task names", self.transfer_from)
        if not _is_number(self.loss_weight) or not (
            math.isfinite(self.loss_weight) and self.loss_weight >= 0
        ):
            raise SpecError(f"{where}.loss_weight", "must be a finite float >= 0", self.loss_weight)
        object.__setattr__(self, "loss_weight", float(self.loss_weight))
        if self.task.kind == "segmentation" and self.units < 1:
            raise SpecError(f"{where}.units", "must be >= 1 for a segmentation head (decoder filters)", self.units)

    @property
    def name(self) -> str:
        return self.task.name


@dataclass(frozen=True)
class BackboneSpec:
    """The shared trunk: conv blocks on the image, dense embeddings of vector inputs.

    Each block is Conv-BN-ReLU (two convs and an Add skip when ``residual``), then
    pooling and dropout. ``filters`` is one int for every block or one per block.
    """

    blocks: int = 2
    filters: tuple[int, ...] | int = 32
    kernel_size: int = 3
    batch_norm: bool = True
    dropout: float = 0.0
    pooling: Pooling = "max"
    residual: bool = False
    global_pooling: GlobalPooling = "avg"  # flatten keeps position, avg is smaller
    dense_units: int = 0  # a shared dense layer after pooling; 0 for none
    vector_units: int = 32  # width of each vector input's embedding

    def __post_init__(self) -> None:
        _check_int("backbone.blocks", self.blocks, 0, 8)
        filters = _as_tuple(self.filters)
        if isinstance(filters, int) and not isinstance(filters, bool):
            filters = (filters,) * self.blocks
        if not isinstance(filters, tuple) or len(filters) != self.blocks:
            raise SpecError("backbone.filters", f"must be one integer or a list of {self.blocks} (one per block)", self.filters)
        for f in filters:
            _check_int("backbone.filters", f, 1, MAX_WIDTH)
        object.__setattr__(self, "filters", filters)
        _check_int("backbone.kernel_size", self.kernel_size, 1, 15)
        _check_rate("backbone.dropout", self.dropout)
        _check_choice("backbone.pooling", self.pooling, POOLINGS)
        _check_choice("backbone.global_pooling", self.global_pooling, GLOBAL_POOLINGS)
        for flag in ("batch_norm", "residual"):
            if not isinstance(getattr(self, flag), bool):
                raise SpecError(f"backbone.{flag}", "must be true or false", getattr(self, flag))
        _check_int("backbone.dense_units", self.dense_units, 0, MAX_WIDTH)
        _check_int("backbone.vector_units", self.vector_units, 1, MAX_WIDTH)


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer by name and its learning rate."""

    name: OptimizerName = "adam"
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        _check_choice("optimizer.name", self.name, OPTIMIZERS)
        lr = self.learning_rate
        if not _is_number(lr) or not (0 < lr <= 10):
            raise SpecError("optimizer.learning_rate", "must be a float in (0, 10]", lr)
        object.__setattr__(self, "learning_rate", float(lr))


@dataclass(frozen=True)
class ModelSpec:
    """A whole multi-task network: inputs, shared backbone, one head per task, training set-up.

    ``sharing="separate"`` gives every head its own copy of the backbone (the baseline
    that hard sharing is compared against). ``freeze_backbone`` makes the shared
    weights untrainable (fine-tuning). Task names must differ from input names and
    from ``<input>_norm`` (the layer that normalises an input), as every one names a layer.
    """

    inputs: tuple[InputSpec, ...]
    heads: tuple[HeadSpec, ...]
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    loss_weighting: LossWeighting = "fixed"
    sharing: Sharing = "hard"
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    freeze_backbone: bool = False
    name: str = "mtl_model"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _as_tuple(self.inputs))
        object.__setattr__(self, "heads", _as_tuple(self.heads))
        _check_tuple_of("inputs", self.inputs, InputSpec)
        _check_tuple_of("heads", self.heads, HeadSpec)
        _check_type("backbone", self.backbone, BackboneSpec)
        _check_type("optimizer", self.optimizer, OptimizerSpec)
        _check_name("name", self.name)
        _check_choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        _check_choice("sharing", self.sharing, SHARINGS)
        if not isinstance(self.freeze_backbone, bool):
            raise SpecError("freeze_backbone", "must be true or false", self.freeze_backbone)
        if not self.inputs:
            raise SpecError("inputs", "must declare at least one input", [])
        if not self.heads:
            raise SpecError("heads", "must declare at least one head", [])
        _unique("inputs.name", [i.name for i in self.inputs])
        _unique("heads.task.name", [h.name for h in self.heads])
        # Inputs, their normalisation layers and task outputs are layers of one model: their names must not clash.
        norm_layers = {f"{i.name}_norm": i.name for i in self.inputs}
        for spec in self.inputs:
            if spec.name in norm_layers:
                raise SpecError("inputs.name", "must not be <input>_norm for another input (that names the layer "
                                f"normalising input {norm_layers[spec.name]!r})", spec.name)
        input_names = {i.name for i in self.inputs}
        for head in self.heads:
            if head.name in input_names:
                raise SpecError("heads.task.name", "must differ from every input name", head.name)
            if head.name in norm_layers:
                raise SpecError("heads.task.name", "must not be <input>_norm for an input (that names the layer "
                                f"normalising input {norm_layers[head.name]!r})", head.name)
        images = [i for i in self.inputs if i.kind == "image"]
        if len(images) > 1:
            raise SpecError("inputs", "may hold at most one image input", [i.name for i in images])
        if self.backbone.blocks and self.backbone.pooling != "none" and images:
            height, width = images[0].shape[:2]
            factor = 2**self.backbone.blocks
            if height % factor or width % factor:
                raise SpecError(
                    "backbone.blocks",
                    f"pooling halves the image once per block, so height and width ({height}x{width}) "
                    f"must be divisible by 2**blocks={factor}",
                    self.backbone.blocks,
                )
        self._check_heads(images)

    def _check_heads(self, images: list[InputSpec]) -> None:
        by_name = {h.name: h for h in self.heads}
        for head in self.heads:
            where = f"heads[{head.name}]"
            if head.task.kind == "segmentation":
                if not images:
                    raise SpecError(f"{where}.task.kind", "segmentation needs an image input, and the spec has none",
                                    head.task.kind)
                if head.task.input not in (None, images[0].name):
                    raise SpecError(f"{where}.task.input", f"must name the image input {images[0].name!r}",
                                    head.task.input)
            for source in head.transfer_from:
                if source not in by_name:
                    raise SpecError(f"{where}.transfer_from", f"must name existing tasks {sorted(by_name)}", source)
                if source == head.name:
                    raise SpecError(f"{where}.transfer_from", "cannot name the head itself", source)
                if head.task.kind == "segmentation":
                    raise SpecError(f"{where}.transfer_from", "is not supported on a segmentation head", source)
                if by_name[source].units == 0 or by_name[source].task.kind == "segmentation":
                    raise SpecError(f"{where}.transfer_from",
                                    "must name a non-segmentation head with a hidden layer (units > 0)", source)
        self.head_order()  # raises on a cycle

    def head_order(self) -> tuple[HeadSpec, ...]:
        """Heads in an order where every transfer source comes before its target."""
        done: dict[str, HeadSpec] = {}
        pending = list(self.heads)
        while pending:
            ready = [h for h in pending if all(s in done for s in h.transfer_from)]
            if not ready:
                raise SpecError("heads.transfer_from", "transfer edges must not form a cycle",
                                {h.name: list(h.transfer_from) for h in pending})
            for head in ready:
                done[head.name] = head
                pending.remove(head)
        return tuple(done.values())

    @property
    def tasks(self) -> tuple[TaskSpec, ...]:
        return tuple(h.task for h in self.heads)

    def head(self, name: str) -> HeadSpec:
        for head in self.heads:
            if head.name == name:
                return head
        raise SpecError("task", f"must name one of {[h.name for h in self.heads]}", name)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some top-level fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-ready dict that :meth:`from_dict` turns back into an equal spec."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        """Build a spec from plain data (YAML, JSON); unknown keys are errors."""
        return _from_dict(cls, data, "model")


def _unique(field_name: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise SpecError(field_name, "must be unique", name)
        seen.add(name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


_NESTED: dict[tuple[type, str], type] = {
    (ModelSpec, "backbone"): BackboneSpec,
    (ModelSpec, "optimizer"): OptimizerSpec,
    (HeadSpec, "task"): TaskSpec,
}
_NESTED_LISTS: dict[tuple[type, str], type] = {
    (ModelSpec, "inputs"): InputSpec,
    (ModelSpec, "heads"): HeadSpec,
}


def _from_dict(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise SpecError(path, "must be a mapping", data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(f"{path}.{unknown[0]}", f"is not a known key; known keys are {sorted(names)}", data[unknown[0]])
    kwargs = {}
    for key, value in data.items():
        if (cls, key) in _NESTED:
            value = _from_dict(_NESTED[(cls, key)], value, f"{path}.{key}")
        elif (cls, key) in _NESTED_LISTS:
            if not isinstance(value, list):
                raise SpecError(f"{path}.{key}", "must be a list", value)
            value = tuple(_from_dict(_NESTED_LISTS[(cls, key)], v, f"{path}.{key}[{i}]") for i, v in enumerate(value))
        kwargs[key] = value
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for name in required:
        if name not in kwargs:
            raise SpecError(f"{path}.{name}", "is required", None)
    return cls(**kwargs)
