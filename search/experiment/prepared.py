"""An experiment made concrete: its data loaded and split, its space and objective checked.

``prepare(experiment)`` does every check that needs the data (task names, metrics,
search keys, every corner of the space giving a valid model) so that bad input stops
before Ray starts. ``Prepared.spec_for(params)`` turns one trial's sampled values into
the :class:`ModelSpec` and batch size it trains with.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping

from mtl_models.data import DATASETS, Splits, load_dataset, normalized_inputs, split
from mtl_models.errors import DataError, SpecError
from mtl_models.spec import AugmentationSpec, BackboneSpec, HeadSpec, InputSpec, ModelSpec, OptimizerSpec, TaskSpec
from search.errors import ConfigError
from search.experiment.config import Experiment
from search.experiment.objective import Objective, build_objective
from search.experiment.space import MODEL_KEYS, Param

__all__ = ["Prepared", "prepare"]

_HEAD_FIELDS = {f.name for f in dataclasses.fields(HeadSpec)} - {"task"}
# Spec sections whose fields a search key names one level down (backbone.filters, optimizer.learning_rate).
_SECTIONS = {"backbone": BackboneSpec, "optimizer": OptimizerSpec, "augmentation": AugmentationSpec}


@dataclass(frozen=True)
class Prepared:
    """An experiment with its data split, normalised inputs, tasks and objective."""

    experiment: Experiment
    splits: Splits
    inputs: tuple[InputSpec, ...]
    tasks: tuple[TaskSpec, ...]
    objective: Objective

    def spec_for(self, params: Mapping[str, Any]) -> tuple[ModelSpec, int]:
        """The model spec and batch size for one trial's sampled parameters."""
        model = copy.deepcopy(dict(self.experiment.model))
        batch_size = self.experiment.batch_size
        for key, value in params.items():
            if key == "batch_size":
                batch_size = value
                continue
            _set_path(model, key.split("."), value)
        heads = model.pop("heads", None) or {}
        spec_dict = {
            "name": model.pop("name", "mtl_model"),
            **model,
            "inputs": [dataclasses.asdict(i) for i in self.inputs],
            "heads": [_head_dict(task, heads.get(task.name) or {}) for task in self.tasks],
        }
        spec = ModelSpec.from_dict(spec_dict)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError("batch_size", "must be an integer >= 1", batch_size)
        return spec, batch_size

    def data_files(self, sample: int = 16) -> list[str]:
        """Files the trials read from disk: the label table and a spread of the images and masks (every node of
        a cluster must see them); empty for data held in memory."""
        from mtl_models.data.image_files import ImageFiles, MaskFiles

        files = [f for part in (self.splits.train, self.splits.val, self.splits.test)
                 for f in (*part.inputs.values(), *part.targets.values())
                 if isinstance(f, (ImageFiles, MaskFiles)) and len(f)]
        if not files:
            return []
        paths = [str(p) for f in files for p in f.paths[:: max(1, len(f) // sample)][:sample]]
        table = self.experiment.data.options.get("path")
        return ([str(table)] if table else []) + paths

    def fixed_point(self) -> dict[str, Any]:
        """The experiment's fixed model as a point of its space: each searched key's value in the fixed model
        (the model section, or the spec's default), where the key's domain holds it. A search tries it first:
        the model the user would have trained without searching."""
        spec, batch_size = self.spec_for({})
        point: dict[str, Any] = {}
        for param in self.experiment.space:
            parts = param.name.split(".")
            value = batch_size if param.name == "batch_size" else _get_path(self.experiment.model, parts, spec)
            if param.applies(point) and param.holds(value):
                point[param.name] = value
        return point


def prepare(experiment: Experiment) -> Prepared:
    """Load and split the data, then check the model section, space and objective against it."""
    options = dict(experiment.data.options)  # a relative data path is already resolved (config.DataConfig)
    field = "data.dataset" if experiment.data.dataset not in DATASETS else "data.options"
    try:
        data = load_dataset(experiment.data.dataset, **options)
        field = "data.split"
        splits = split(data, val_fraction=experiment.data.val_fraction, test_fraction=experiment.data.test_fraction,
                       seed=experiment.data.split_seed, stratify=experiment.data.stratify)
    except DataError as exc:
        raise ConfigError(field, str(exc).rstrip("."), experiment.data.dataset, show_value=False) from None
    tasks = tuple(data.tasks)
    _check_model_section(experiment.model, tasks)
    prepared = Prepared(experiment, splits, tuple(normalized_inputs(splits.train)), tasks,
                        build_objective(experiment.objective, tasks, splits))
    _check_spec(prepared, {}, "model")
    for param in experiment.space:
        _check_key(param, tasks)
        for value in param.corners():
            _check_spec(prepared, {param.name: value}, f"space.{param.name}")
    return prepared


def _check_model_section(model: Mapping[str, Any], tasks: tuple[TaskSpec, ...]) -> None:
    unknown = sorted(set(model) - set(MODEL_KEYS))
    if unknown:
        raise ConfigError(f"model.{unknown[0]}", f"is not a known key; known keys are {sorted(MODEL_KEYS)}",
                          model[unknown[0]])
    heads = model.get("heads") or {}
    if not isinstance(heads, dict):
        raise ConfigError("model.heads", "must map task names to head settings", heads)
    names = [t.name for t in tasks]
    for name, head in heads.items():
        if name not in names:
            raise ConfigError(f"model.heads.{name}", f"must name a task of the data set {names}", head)
        if head is not None and not isinstance(head, dict):
            raise ConfigError(f"model.heads.{name}", "must map head settings (units, dropout, ...) to values", head)
        task = (head or {}).get("task")
        if task is not None and not isinstance(task, dict):
            raise ConfigError(f"model.heads.{name}.task", "must map task settings (loss, metrics, ...) to values",
                              task)


def _check_key(param: Param, tasks: tuple[TaskSpec, ...]) -> None:
    root, *rest = param.name.split(".")
    ok = False
    if root in _SECTIONS:
        ok = len(rest) == 1 and rest[0] in {f.name for f in dataclasses.fields(_SECTIONS[root])}
    elif root == "heads" and len(rest) >= 2:
        if rest[0] not in {t.name for t in tasks}:
            raise ConfigError(f"space.{param.name}", f"must name a task of the data set {[t.name for t in tasks]}",
                              rest[0])
        ok = (len(rest) == 2 and rest[1] in _HEAD_FIELDS) or rest[1:] == ["task", "loss"]
    elif root != "heads":  # a plain field (loss_weighting, sharing, batch_size): parse_space checked the root
        ok = not rest
    if not ok:
        raise ConfigError(f"space.{param.name}", "must name a field of the model spec (e.g. backbone.filters, "
                          "heads.<task>.units, heads.<task>.task.loss, optimizer.learning_rate, batch_size)",
                          param.name)


def _check_spec(prepared: Prepared, params: Mapping[str, Any], field: str) -> None:
    try:
        prepared.spec_for(params)
    except (SpecError, ConfigError) as exc:
        located = _model_field(exc.field, prepared.tasks) if isinstance(exc, SpecError) and not params else None
        if located:  # a fixed model field: name it where the experiment file has it
            raise ConfigError(located, exc.rule, exc.value) from None
        if not params:
            raise ConfigError(field, f"gives an invalid model: {exc}", None, show_value=False) from None
        value = next(iter(params.values()))
        raise ConfigError(field, f"the value {value!r} gives an invalid model: {exc}", value,
                          show_value=False) from None


_SPEC_HEAD = re.compile(r"^(?:model\.)?heads\[(\w+)\](.*)$")  # heads[<task or index>]..., as the spec names it
_SPEC_TASK = re.compile(r"^tasks\[(\w+)\](.*)$")


def _model_field(field: str, tasks: tuple[TaskSpec, ...]) -> str | None:
    """Where a spec field sits in the experiment's ``model`` section, or None if it is not one of its fields.

    The spec names heads by task (``heads[shape].units``) or by position (``model.heads[0].unit``);
    the file keys them by task name (``model.heads.shape.units``).
    """
    if match := _SPEC_HEAD.match(field):
        name = tasks[int(match[1])].name if match[1].isdigit() else match[1]
        return f"model.heads.{name}{match[2]}"
    if match := _SPEC_TASK.match(field):
        return f"model.heads.{match[1]}.task{match[2]}"
    root = field.removeprefix("model.").split(".", 1)[0]
    if root in MODEL_KEYS and root != "heads":
        return f"model.{field.removeprefix('model.')}"
    return None


def _head_dict(task: TaskSpec, head: Mapping[str, Any]) -> dict[str, Any]:
    head = dict(head)
    overrides = head.pop("task", None) or {}
    task_dict = {**dataclasses.asdict(task), **overrides}
    return {**head, "task": task_dict}


def _get_path(model: Mapping[str, Any], parts: list[str], spec: ModelSpec) -> Any:
    """The value a search key names in the model section as written, else in the spec built from it (its
    defaults; ``heads.<task>.<field>`` reads that task's head); None where neither has one."""
    node: Any = model
    for part in parts:
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is not None:
        return node
    node = spec
    if parts[0] == "heads" and len(parts) == 3:
        node, parts = next((h for h in spec.heads if h.name == parts[1]), None), parts[2:]
    for part in parts:
        node = getattr(node, part, None)
    return node


def _set_path(tree: dict, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        node = tree.get(part)
        if node is None:
            node = tree[part] = {}
        if not isinstance(node, dict):
            raise ConfigError(".".join(parts), f"cannot set inside {part!r}, which is not a mapping", node)
        tree = node
    tree[parts[-1]] = value
