"""A user's own images: a folder of image files and a label table (CSV or Parquet) with one row per image.

The table's ``file`` column (``image_column``) holds each image's path relative to the table; one column per
task holds its label (class names or indices, 0/1, numbers; several columns for a multi-value regression
or a multilabel task; a mask file's path, relative to the table, for segmentation); numeric columns may form
vector inputs; an optional column assigns each row to
``train``, ``val`` or ``test``. Labels are read into memory; the images and masks stay on disk
(:class:`ImageFiles`, :class:`MaskFiles`) and are streamed by ``tf.data`` when a model trains.

Every check that can be made without decoding pixels runs here, before any trial: each error names the
table, the row (counted from 1, the header not counted) and the column, or the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_models.data.dataset import Dataset
from mtl_models.data.image_check import image_problem, mask_problem, mask_value_problem
from mtl_models.data.image_files import CACHES, ImageFiles, MaskFiles
from mtl_models.data.table import Table, read_table
from mtl_models.errors import DataError, shown
from mtl_models.spec import TaskSpec

__all__ = ["ImagesSource", "ImagesTask", "load_images"]

_TABLE_KEYS = ("column", "columns", "classes")  # what a task declaration says about the table, not the model


@dataclass(frozen=True)
class ImagesTask:
    """One task and where the table holds its label: ``column`` (default: the task's name), or ``columns``
    for a regression with several outputs or a multilabel task. ``classes`` is a list of class names (the
    table holds names) or a count (the table holds indices); a binary task may name its two classes."""

    task: TaskSpec
    columns: tuple[str, ...]
    classes: tuple[str, ...] | None = None  # names, when the table holds names

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImagesTask:
        """From a flat declaration: ``{name: colour, kind: classification, classes: [red, green], column: c}``."""
        if not isinstance(data, Mapping):
            raise DataError(f"A task of the images data set must be a mapping (name, kind, ...), but got {shown(data)}.")
        spec = {k: v for k, v in data.items() if k not in _TABLE_KEYS}
        name = spec.get("name")
        column, columns, classes = data.get("column"), data.get("columns"), data.get("classes")
        if column is not None and columns is not None:
            raise DataError(f"Task {shown(name)}: give `column` or `columns`, not both.")
        columns = [column if column is not None else name] if columns is None else columns
        if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) and c for c in columns):
            raise DataError(f"Task {shown(name)}: `column` must name a column of the table (or `columns` list them), "
                            f"but got {shown(data.get('columns', column))}.")
        names = None
        if isinstance(classes, (list, tuple)):
            names = tuple(str(c) for c in classes)
            spec.setdefault("num_classes", 1 if spec.get("kind") == "binary" else len(names))
            spec.setdefault("class_names", names)
        elif classes is not None:
            if isinstance(classes, bool) or not isinstance(classes, int):
                raise DataError(f"Task {shown(name)}: `classes` must be a list of class names or a count, "
                                f"but got {shown(classes)}.")
            spec.setdefault("num_classes", classes)
        if spec.get("kind") == "regression" and len(columns) > 1:
            spec.setdefault("output_dim", len(columns))
        unknown = sorted(set(spec) - {f.name for f in dataclasses.fields(TaskSpec)}, key=str)
        if unknown:
            raise DataError(f"Task {shown(name)}: keys must be among {[*_TABLE_KEYS, *_task_fields()]}, but got "
                            f"unknown key(s) {shown(unknown)}.")
        return cls(task=TaskSpec(**spec), columns=tuple(columns), classes=names)


def _task_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(TaskSpec) if f.name != "class_names"]


@dataclass(frozen=True)
class ImagesSource:
    """The label table at ``path``, its tasks, and the images its ``image_column`` names."""

    path: str
    tasks: tuple[ImagesTask, ...]
    image_shape: tuple[int, int, int]
    image_column: str = "file"
    image_input: str = "image"
    inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # vector input -> numeric columns
    split_column: str | None = None
    cache: str = "auto"  # decoded images between epochs: in memory if they fit, else on local disk

    def __post_init__(self) -> None:
        shape = self.image_shape
        if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 8192 for d in shape) or shape[2] not in (
                1, 3, 4):
            raise DataError(f"`image_shape` must be [height, width, channels] (sizes 1..8192, channels 1, 3 or 4), "
                            f"but got {shown(shape)}.")
        object.__setattr__(self, "image_shape", tuple(shape))
        if self.cache not in CACHES:
            raise DataError(f"`cache` must be one of {list(CACHES)}, but got {shown(self.cache)}.")
        tasks = tuple(t if isinstance(t, ImagesTask) else ImagesTask.from_dict(t) for t in self.tasks)
        if not tasks:
            raise DataError("`tasks` must declare at least one task.")
        object.__setattr__(self, "tasks", tasks)
        if not isinstance(self.inputs, Mapping):
            raise DataError(f"`inputs` must map a vector input's name to its columns, but got {shown(self.inputs)}.")
        object.__setattr__(self, "inputs", {k: tuple(v) if isinstance(v, (list, tuple)) else (v,)
                                            for k, v in self.inputs.items()})


def load_images(source: ImagesSource) -> Dataset:
    """Read the table at ``source.path``, check it and every file it names, and return a :class:`Dataset`
    whose image input is an :class:`ImageFiles` (labels and vector inputs in memory)."""
    table = read_table(source.path)
    files = _image_files(table, source)
    inputs: dict[str, Any] = {source.image_input: files}
    for name, columns in source.inputs.items():
        inputs[name] = np.stack([table.numbers(c, where=f"input {name!r}") for c in columns], axis=1)
    targets = {t.task.name: _target(table, t, source.image_shape[:2]) for t in source.tasks}
    assigned = None
    if source.split_column is not None:
        assigned = table.choices(source.split_column, ("train", "val", "test"))
    return Dataset(name=Path(source.path).parent.name or "images", inputs=inputs, targets=targets,
                   tasks=tuple(t.task for t in source.tasks), assigned=assigned)


def _image_files(table: Table, source: ImagesSource) -> ImageFiles:
    channels = source.image_shape[2]
    paths = _checked_files(table, source.image_column, lambda path: image_problem(path, channels))
    return ImageFiles(paths, source.image_shape, np.arange(1, len(paths) + 1), source.cache)


def _mask_files(table: Table, declared: ImagesTask, image_hw: tuple[int, int]) -> MaskFiles:
    column = declared.columns[0]
    if len(declared.columns) != 1:
        raise DataError(f"Task {declared.task.name!r}: a segmentation task reads one column of mask files, but "
                        f"`columns` names {len(declared.columns)}.")
    paths = _checked_files(table, column, mask_problem)
    masks = MaskFiles(paths, image_hw, declared.task.num_classes, np.arange(1, len(paths) + 1))
    if found := mask_value_problem(masks):
        raise DataError(table.at(found[0], column, found[1]))
    return masks


def _checked_files(table: Table, column: str, problem_of: Any) -> np.ndarray:
    """The absolute paths of ``column``'s files, each inside the table's folder, named once, and without the
    problem ``problem_of(path)`` finds; a :class:`DataError` naming the row and the column otherwise."""
    relative = table.strings(column)
    folder = Path(table.path).resolve().parent
    paths = []
    for row, name in enumerate(relative, start=1):
        full = os.path.normpath(folder / name)
        if os.path.isabs(name) or not full.startswith(str(folder) + os.sep):
            raise DataError(table.at(row, column, f"the path {name!r} leaves the table's folder "
                                     f"{str(folder)!r}; give paths inside it, relative to the table"))
        paths.append(full)
    seen: dict[str, int] = {}
    for row, path in enumerate(paths, start=1):
        if path in seen:
            raise DataError(table.at(row, column, f"repeats the file of row {seen[path]} "
                                     f"({relative[row - 1]!r}); each file must have one row"))
        seen[path] = row
    with ThreadPoolExecutor(max_workers=8) as pool:  # file opens wait on the disk, not the interpreter
        for row, (path, problem) in enumerate(zip(paths, pool.map(problem_of, paths, chunksize=64)), start=1):
            if problem:
                raise DataError(table.at(row, column, f"{problem}: {path}"))
    return np.asarray(paths)


def _target(table: Table, declared: ImagesTask, image_hw: tuple[int, int]) -> np.ndarray | MaskFiles:
    task = declared.task
    columns = declared.columns
    if task.kind == "classification":
        if declared.classes is not None:
            return table.class_indices(columns[0], declared.classes)
        return table.integers(columns[0], 0, task.num_classes)
    if task.kind == "binary":
        values = (table.class_indices(columns[0], declared.classes) if declared.classes is not None
                  else table.integers(columns[0], 0, 2))
        return values.astype(np.float32)[:, None]
    if task.kind == "multilabel":
        if len(columns) != task.num_classes:
            raise DataError(f"Task {task.name!r}: a multilabel task needs one 0/1 column per label "
                            f"({task.num_classes}), but `columns` names {len(columns)}.")
        return np.stack([table.integers(c, 0, 2) for c in columns], axis=1).astype(np.float32)
    if task.kind == "regression":
        low, high = (0.0, 1.0) if task.activation == "sigmoid" else (None, None)
        return np.stack([table.numbers(c, where=f"task {task.name!r}", low=low, high=high) for c in columns], axis=1)
    return _mask_files(table, declared, image_hw)


def source_from_options(**options: Any) -> ImagesSource:
    """An :class:`ImagesSource` from an experiment's ``data.options`` (unknown keys are errors)."""
    known = [f.name for f in dataclasses.fields(ImagesSource)]
    unknown = sorted(set(options) - set(known), key=str)
    if unknown:
        raise DataError(f"Options of the images data set must be among {known}, but got {shown(unknown)}.")
    missing = [k for k in ("path", "tasks", "image_shape") if k not in options]
    if missing:
        raise DataError(f"The images data set needs {missing}: the label table, its tasks, and [height, width, "
                        "channels] of the images.")
    if not isinstance(options["tasks"], (list, tuple)):
        raise DataError(f"`tasks` must be a list of task declarations, but got {shown(options['tasks'])}.")
    return ImagesSource(**options)

