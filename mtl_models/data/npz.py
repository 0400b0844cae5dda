"""A user's own data from an NPZ file, described by :class:`NpzSource` and checked array by array.

Nothing in the file is trusted: pickled object arrays are refused, and every way the
arrays can disagree with the declared tasks (missing, wrong length, NaN or inf, a label
outside its classes, a wrong image shape, a mask that does not fit its image) is a
:class:`DataError` that names the array and the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_models.data._npz_targets import as_input, as_target, first_row
from mtl_models.data.dataset import Dataset
from mtl_models.errors import DataError, shown
from mtl_models.spec import TaskSpec

__all__ = ["NpzSource", "NpzTask", "array_size_problem", "load_npz"]


@dataclass(frozen=True)
class NpzTask:
    """One task's target in the file: an array, and optionally one column of it."""

    task: TaskSpec
    array: str = "y"  # the array's name in the file
    column: int | None = None  # a column of a 2-D array, or None for the whole array

    def __post_init__(self) -> None:
        if not isinstance(self.task, TaskSpec):
            raise DataError(f"NpzTask.task must be a TaskSpec, but got task={self.task!r}.")
        if not isinstance(self.array, str) or not self.array:
            raise DataError(f"NpzTask.array must name an array in the file, but got array={self.array!r}.")
        column = self.column
        if column is not None and (isinstance(column, bool) or not isinstance(column, int) or column < 0):
            raise DataError(f"NpzTask.column must be None or an integer >= 0, but got column={column!r}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NpzTask:
        """Build from plain data, e.g. ``{"task": {"name": "A", "kind": "binary"}, "array": "y", "column": 0}``."""
        values = _known_keys("NpzTask", data, cls)
        task = values.get("task")
        if isinstance(task, Mapping):
            values["task"] = TaskSpec(**_known_keys("NpzTask.task", task, TaskSpec))
        return cls(**values)


@dataclass(frozen=True)
class NpzSource:
    """Where the file is, which arrays are inputs, and which arrays (or columns) are targets.

    ``inputs`` maps an input name to an array name. An array of ndim 2 is a vector input
    ``(N, D)``; ndim 3 is a one-channel image ``(N, H, W)`` (given a channel axis); ndim 4
    is an image ``(N, H, W, C)``. ``image_shape``, when given, is the ``(H, W, C)`` (or
    ``(H, W)``) every image input must have.
    """

    path: str
    tasks: tuple[NpzTask, ...]
    inputs: Mapping[str, str] = field(default_factory=lambda: {"image": "X"})
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)) or not str(self.path) or "\0" in str(self.path):
            raise DataError(f"NpzSource.path must be a file path, but got path={self.path!r}.")
        object.__setattr__(self, "path", os.fspath(self.path))
        tasks = tuple(self.tasks) if isinstance(self.tasks, (list, tuple)) else self.tasks
        if not isinstance(tasks, tuple) or not tasks or not all(isinstance(t, NpzTask) for t in tasks):
            raise DataError(f"NpzSource.tasks must be a non-empty sequence of NpzTask, but got tasks={self.tasks!r}.")
        names = [t.task.name for t in tasks]
        if len(set(names)) != len(names):
            raise DataError(f"NpzSource.tasks must have unique task names, but got {names}.")
        object.__setattr__(self, "tasks", tasks)
        inputs = self.inputs
        if not isinstance(inputs, Mapping) or not inputs or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in inputs.items()
        ):
            raise DataError(f"NpzSource.inputs must map input names to array names, but got inputs={inputs!r}.")
        object.__setattr__(self, "inputs", dict(inputs))
        shape = tuple(self.image_shape) if isinstance(self.image_shape, list) else self.image_shape
        if shape is not None and (
            not isinstance(shape, tuple) or len(shape) not in (2, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise DataError(f"NpzSource.image_shape must be None or (height, width[, channels]) of positive "
                            f"integers, but got image_shape={self.image_shape!r}.")
        object.__setattr__(self, "image_shape", shape)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NpzSource:
        """Build from plain data (YAML, JSON); tasks may be :class:`NpzTask` or mappings; unknown keys are errors."""
        values = _known_keys("NpzSource", data, cls)
        if isinstance(values.get("tasks"), (list, tuple)):
            values["tasks"] = tuple(t if isinstance(t, NpzTask) else NpzTask.from_dict(t) for t in values["tasks"])
        return cls(**values)


def _known_keys(what: str, data: object, cls: type) -> dict[str, Any]:
    """``data`` as keyword arguments of dataclass ``cls``: every key one of its fields, every field without a
    default given."""
    if not isinstance(data, Mapping):
        raise DataError(f"{what} must be a mapping, but got {shown(data)}.")
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise DataError(f"{what} keys must be among {known}, but got unknown key(s) {shown(unknown)}.")
    missing = [f.name for f in fields if f.name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise DataError(f"{what} must give {missing}, but got only {sorted(map(str, data))}.")
    return dict(data)


def load_npz(source: NpzSource) -> Dataset:
    """Read ``source.path`` and return a :class:`Dataset` named after the file (its stem).

    Raises :class:`DataError` naming the file and the array when the file is missing or
    unreadable, holds pickled objects, lacks an array, or an array breaks a rule of its
    input or task.
    """
    if not isinstance(source, NpzSource):
        raise DataError(f"load_npz needs an NpzSource, but got {type(source).__name__}.")
    path = Path(source.path)
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name too long, say
        raise DataError(f"NPZ file {shown(str(path))} cannot be opened ({exc.strerror}).") from None
    if not is_file:
        raise DataError(f"NPZ file {shown(str(path))} does not exist (or is not a file).")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"'{path}' is not a readable NPZ file ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"'{path}' is not a readable NPZ file: it holds one bare array (.npy), not named arrays.")
    with archive:
        names = {*source.inputs.values(), *(t.array for t in source.tasks)}
        arrays = {name: _read(archive, name, path) for name in sorted(names)}
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"Every array used from '{path}' must have the same length, but got {lengths}.")

    inputs = {name: as_input(arrays[array], array, name, path) for name, array in source.inputs.items()}
    _check_image_shape(source, inputs, path)
    targets = {}
    for spec in source.tasks:
        values = arrays[spec.array]
        where = f"Array '{spec.array}'"
        if spec.column is not None:
            if values.ndim != 2:
                raise DataError(f"{where} in '{path}': `column` for task {spec.task.name!r} needs a 2-D array, "
                                f"but the array has shape {values.shape} (got column={spec.column}).")
            if spec.column >= values.shape[1]:
                raise DataError(f"{where} in '{path}': `column` for task {spec.task.name!r} must be in "
                                f"[0, {values.shape[1]}) (shape {values.shape}), but got column={spec.column}.")
            values = values[:, spec.column]
            where += f" column {spec.column}"
        where += f" in '{path}' (task {spec.task.name!r})"
        if spec.task.kind == "segmentation":
            _check_mask_size(spec.task, values, inputs, where)
        targets[spec.task.name] = as_target(values, spec.task, where)
    return Dataset(name=path.stem or "npz", inputs=inputs, targets=targets, tasks=tuple(t.task for t in source.tasks))


def array_size_problem(archive: np.lib.npyio.NpzFile, name: str) -> str | None:
    """Why array ``name`` cannot be what its header says, from the header and the archive's index alone; None if
    it can be (or if the reader will say what is wrong). A damaged or hostile file can claim a terabyte array in a
    few bytes, and reading it would fail on memory before any check."""
    member = f"{name}.npy"
    if member not in archive.zip.namelist():
        return None
    try:
        with archive.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                return None
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            header = f.tell()
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    if dtype.hasobject:
        return None  # refused as a pickle by the reader
    claimed, stored = math.prod(shape) * dtype.itemsize, archive.zip.getinfo(member).file_size - header
    if claimed == stored:
        return None
    return (f"its header claims shape {shape} of {dtype} ({claimed:,} bytes), but the file holds {stored:,} bytes "
            "for it: the file is damaged")


def _read(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    where = f"Array '{name}' in '{path}'"
    problem = array_size_problem(archive, name)
    if problem:
        raise DataError(f"{where}: {problem}.")
    try:
        array = archive[name]
    except KeyError:
        raise DataError(f"{where} is missing; the file holds the arrays {sorted(archive.files)}.") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{where} holds a pickled object array, which is refused for safety.") from None
        raise DataError(f"{where} cannot be read ({exc}).") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{where} cannot be read ({type(exc).__name__}: {exc}).") from exc
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where} must hold numbers (bool, int or float), but has dtype {array.dtype}.")
    if array.ndim == 0 or len(array) == 0:
        raise DataError(f"{where} must hold at least one sample along its first axis, but has shape {array.shape}.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        row = first_row(~np.isfinite(array))
        raise DataError(f"{where} must hold finite numbers, but holds {nan} NaN and {inf} inf value(s) "
                        f"(first at row {row}).")
    return array


def _check_image_shape(source: NpzSource, inputs: dict[str, np.ndarray], path: Path) -> None:
    if source.image_shape is None:
        return
    images = {name: a for name, a in inputs.items() if a.ndim == 4}
    if not images:
        raise DataError(f"`image_shape` {source.image_shape} was given, but no input from '{path}' is an image: "
                        f"{ {source.inputs[k]: a.shape for k, a in inputs.items()} }.")
    for name, image in images.items():
        actual = image.shape[1 : 1 + len(source.image_shape)]
        if actual != source.image_shape:
            raise DataError(f"Array '{source.inputs[name]}' in '{path}' (input {name!r}) must hold images of shape "
                            f"{source.image_shape}, but holds {image.shape[1:]} (array shape {image.shape}).")


def _check_mask_size(task: TaskSpec, mask: np.ndarray, inputs: dict[str, np.ndarray], where: str) -> None:
    """A segmentation mask must cover its image pixel for pixel; checked here so the error names the file."""
    images = {name: a for name, a in inputs.items() if a.ndim == 4}
    if task.input is not None:
        if task.input not in images:
            raise DataError(f"{where}: `input` must name an image input {sorted(images)}, but got "
                            f"input={task.input!r}.")
        image = task.input
    elif len(images) == 1:
        image = next(iter(images))
    else:
        raise DataError(f"{where}: a segmentation mask needs exactly one image input (or `input` naming one), "
                        f"but the image inputs are {sorted(images)}.")
    if mask.ndim not in (3, 4):
        return  # a wrong rank: as_target names the shapes it accepts
    height, width = images[image].shape[1:3]
    if mask.shape[1:3] != (height, width):
        raise DataError(f"{where}: a segmentation mask must have the height and width of image input {image!r}, "
                        f"shape (N, {height}, {width}) or (N, {height}, {width}, 1), but has shape {mask.shape}.")
