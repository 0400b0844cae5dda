"""Frozen, validated specs: what a multi-task model is, independent of how it is built.

A spec is the one typed value that crosses the boundary between a user's file (or a
search engine's sample) and the factory. Every field is checked in ``__post_init__``;
an invalid value raises :class:`SpecError` naming the field, the rule and the value.

The per-input and per-task parts (inputs, tasks, heads) are in task_spec.py, the backbone in
backbone_spec.py, the augmentation in augmentation_spec.py, the rules every field is checked by in
spec_rules.py; this module holds the optimizer and the model, and names them all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mtl_models.augmentation_spec import AugmentationSpec, check_augmented_tasks
from mtl_models.backbone_spec import BackboneSpec, check_backbone_input
from mtl_models.errors import SpecError
from mtl_models.spec_rules import (ACTIVATIONS, GLOBAL_POOLINGS, LOSS_WEIGHTINGS, OPTIMIZERS, POOLINGS, SHARINGS,
                                   TASK_KINDS, LossWeighting, OptimizerName, Sharing, as_tuple, check_bool,
                                   check_choice, check_name, check_tuple_of, check_type, is_number)
from mtl_models.task_spec import HeadSpec, InputSpec, TaskSpec

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
    "AugmentationSpec",
    "BackboneSpec",
    "OptimizerSpec",
    "ModelSpec",
]


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer by name and its learning rate."""

    name: OptimizerName = "adam"
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        check_choice("optimizer.name", self.name, OPTIMIZERS)
        lr = self.learning_rate
        if not is_number(lr) or not (0 < lr <= 10):
            raise SpecError("optimizer.learning_rate", "must be a float in (0, 10]", lr)
        object.__setattr__(self, "learning_rate", float(lr))


@dataclass(frozen=True)
class ModelSpec:
    """A whole multi-task network: inputs, shared backbone, one head per task, training set-up.

    ``sharing="separate"`` gives every head its own copy of the backbone (the baseline
    that hard sharing is compared against). ``freeze_backbone`` makes the shared
    weights untrainable (fine-tuning). Task names must differ from input names and
    from ``<input>_norm`` and ``<input>_augment`` (the layers that normalise and augment an
    input), as every one names a layer.
    """

    inputs: tuple[InputSpec, ...]
    heads: tuple[HeadSpec, ...]
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    loss_weighting: LossWeighting = "fixed"
    sharing: Sharing = "hard"
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    freeze_backbone: bool = False
    augmentation: AugmentationSpec = field(default_factory=AugmentationSpec)
    name: str = "mtl_model"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", as_tuple(self.inputs))
        object.__setattr__(self, "heads", as_tuple(self.heads))
        check_tuple_of("inputs", self.inputs, InputSpec)
        check_tuple_of("heads", self.heads, HeadSpec)
        check_type("backbone", self.backbone, BackboneSpec)
        check_type("optimizer", self.optimizer, OptimizerSpec)
        check_type("augmentation", self.augmentation, AugmentationSpec)
        check_name("name", self.name)
        check_choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        check_choice("sharing", self.sharing, SHARINGS)
        check_bool("freeze_backbone", self.freeze_backbone)
        if not self.inputs:
            raise SpecError("inputs", "must declare at least one input", [])
        if not self.heads:
            raise SpecError("heads", "must declare at least one head", [])
        _unique("inputs.name", [i.name for i in self.inputs])
        _unique("heads.task.name", [h.name for h in self.heads])
        # Inputs, their normalisation and augmentation layers and task outputs are layers of one model: their
        # names must not clash.
        input_layers = {f"{i.name}_{part}": i.name for i in self.inputs for part in ("norm", "augment")}
        for spec in self.inputs:
            if spec.name in input_layers:
                raise SpecError("inputs.name", "must not be <input>_norm or <input>_augment for another input (that "
                                f"names a layer of input {input_layers[spec.name]!r})", spec.name)
        input_names = {i.name for i in self.inputs}
        for head in self.heads:
            if head.name in input_names:
                raise SpecError("heads.task.name", "must differ from every input name", head.name)
            if head.name in input_layers:
                raise SpecError("heads.task.name", "must not be <input>_norm or <input>_augment for an input (that "
                                f"names a layer of input {input_layers[head.name]!r})", head.name)
        images = [i for i in self.inputs if i.kind == "image"]
        if len(images) > 1:
            raise SpecError("inputs", "may hold at most one image input", [i.name for i in images])
        check_backbone_input(self.backbone, images, self.tasks)
        check_augmented_tasks(self.augmentation, self.tasks, bool(images))
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
    (ModelSpec, "augmentation"): AugmentationSpec,
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
