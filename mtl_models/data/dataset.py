"""The one in-memory form every data source produces: named inputs, one target per task.

A :class:`Dataset` is what the trainer, the splitter and the model factory agree on.
Its arrays follow fixed conventions (checked on construction) so that a target can be
handed to the loss the factory builds for its task without any reshaping:

- inputs are float32, an image ``(N, H, W, C)`` in raw units or a vector ``(N, D)``;
- classification: int32 ``(N,)`` in ``[0, num_classes)``;
- binary: float32 ``(N, 1)`` in ``{0, 1}``;
- multilabel: float32 ``(N, num_classes)`` in ``{0, 1}``;
- regression: float32 ``(N, output_dim)``, in ``[0, 1]`` when the activation is sigmoid;
- segmentation: float32 ``(N, H, W, 1)`` in ``{0, 1}`` when ``num_classes == 1``, else
  int32 ``(N, H, W)`` in ``[0, num_classes)``; ``H, W`` are those of the image input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mtl_models.data.image_files import ImageFiles, MaskFiles
from mtl_models.errors import DataError, shown
from mtl_models.spec import InputSpec, TaskSpec

__all__ = ["Dataset", "target_shape"]


def target_shape(task: TaskSpec, image_hw: tuple[int, int] | None = None) -> tuple[int, ...]:
    """The per-sample shape a target of ``task`` must have (without the leading N).

    ``image_hw`` is the (height, width) of the image input; needed for segmentation only.
    """
    if task.kind == "classification":
        return ()
    if task.kind == "binary":
        return (1,)
    if task.kind == "multilabel":
        return (task.num_classes,)
    if task.kind == "regression":
        return (task.output_dim,)
    if image_hw is None:
        raise DataError(f"Task {task.name!r}: a segmentation task needs an image input, but the data set has none.")
    return (*image_hw, 1) if task.num_classes == 1 else tuple(image_hw)


def _target_dtype(task: TaskSpec) -> np.dtype:
    integer = task.kind == "classification" or (task.kind == "segmentation" and task.num_classes > 1)
    return np.dtype(np.int32 if integer else np.float32)


# eq=False: arrays have no single truth value, so data sets compare by identity; repr summarises shapes.
@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Named input arrays and one target array per task, all of the same length N.

    ``inputs`` and ``targets`` are stored as fresh dicts (the arrays themselves are not copied). An image
    input may be :class:`ImageFiles` and a segmentation target :class:`MaskFiles`, read from disk when fed.
    ``assigned``, when given, says which split each row belongs to (``"train"``, ``"val"`` or ``"test"``: a
    data set's own split column), and :func:`~mtl_models.data.split.split` keeps it. Construction raises
    :class:`DataError` when any convention in the module docstring is broken, naming the array and the
    offending value.
    """

    name: str
    inputs: Mapping[str, np.ndarray]
    targets: Mapping[str, np.ndarray]
    tasks: tuple[TaskSpec, ...]
    assigned: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"A data set's `name` must be a non-empty string, but got name={self.name!r}.")
        if not isinstance(self.inputs, Mapping) or not isinstance(self.targets, Mapping):
            raise DataError(f"Data set {self.name!r}: `inputs` and `targets` must be mappings of name -> array.")
        # Plain dict copies (not MappingProxyType): a data set must pickle to reach Ray workers.
        object.__setattr__(self, "inputs", dict(self.inputs))
        object.__setattr__(self, "targets", dict(self.targets))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not self.inputs:
            raise DataError(f"Data set {self.name!r}: at least one input is required, but `inputs` is empty.")
        if not all(isinstance(t, TaskSpec) for t in self.tasks) or not self.tasks:
            raise DataError(f"Data set {self.name!r}: `tasks` must be a non-empty sequence of TaskSpec, "
                            f"but got {self.tasks!r}.")
        self._check_names()
        for name, array in self.inputs.items():
            self._check_input(name, array)
        self._check_lengths()
        for task in self.tasks:
            self._check_target(task)
        if self.assigned is not None:
            assigned = np.asarray(self.assigned, dtype=str)
            unknown = sorted(set(assigned.tolist()) - {"train", "val", "test"})
            if assigned.shape != (len(self),) or unknown:
                raise DataError(f"Data set {self.name!r}: `assigned` must give each row 'train', 'val' or 'test', "
                                f"but got {unknown or assigned.shape}.")
            object.__setattr__(self, "assigned", assigned)

    # -- validation ---------------------------------------------------------------------------

    def _check_names(self) -> None:
        task_names = [t.name for t in self.tasks]
        if len(set(task_names)) != len(task_names):
            raise DataError(f"Data set {self.name!r}: task names must be unique, but got {task_names}.")
        missing = [n for n in task_names if n not in self.targets]
        extra = [n for n in self.targets if n not in task_names]
        if missing or extra:
            raise DataError(f"Data set {self.name!r}: there must be exactly one target per task {task_names}, "
                            f"but targets are missing for {missing} and present without a task for {extra}.")

    def _check_lengths(self) -> None:
        for key, value in self.targets.items():
            if not isinstance(value, (np.ndarray, MaskFiles)) or value.ndim == 0:
                raise DataError(f"Data set {self.name!r}, target {key!r}: must be a numpy array with a leading "
                                f"sample axis, but got {_describe(value)}.")
        lengths = {f"inputs[{k!r}]": _length(v) for k, v in self.inputs.items()}
        lengths.update({f"targets[{k!r}]": _length(v) for k, v in self.targets.items()})
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise DataError(f"Data set {self.name!r}: every array must have the same length, but got {{{listed}}}.")

    def _check_input(self, name: str, array: object) -> None:
        where = f"Data set {self.name!r}, input {name!r}"
        if isinstance(array, ImageFiles):
            return  # checked file by file where it was read (images.py); pixels are 0-255 by construction
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            raise DataError(f"{where}: must be a float32 numpy array, but got {_describe(array)}.")
        if array.ndim not in (2, 4) or 0 in array.shape[1:]:
            raise DataError(f"{where}: must have shape (N, H, W, C) (image) or (N, D) (vector), "
                            f"but got shape {array.shape}.")
        if not np.isfinite(array).all():
            raise DataError(f"{where}: must hold finite values, but it holds NaN or inf.")

    def _check_target(self, task: TaskSpec) -> None:
        array = self.targets[task.name]
        where = f"Data set {self.name!r}, target {task.name!r} ({task.kind})"
        dtype = _target_dtype(task)
        image_hw = self._image_hw(task)
        expected = target_shape(task, image_hw)
        if isinstance(array, MaskFiles) and task.kind == "segmentation":
            if array.shape[1:] != expected or array.dtype != dtype:
                raise DataError(f"{where}: mask files must read as {dtype} {_shape_text(expected)}, but read as "
                                f"{array.dtype} {array.shape}.")
            return  # values checked where the files were read (images.py) and as training reads them
        if not isinstance(array, np.ndarray) or array.dtype != dtype:
            raise DataError(f"{where}: must be a {dtype} numpy array, but got {_describe(array)}.")
        if array.shape[1:] != expected:
            raise DataError(f"{where}: must have shape {_shape_text(expected)}, but got {array.shape}.")
        if array.size == 0:
            return
        if dtype == np.int32:
            low, high = int(array.min()), int(array.max())
            if low < 0 or high >= task.num_classes:
                bad = low if low < 0 else high
                raise DataError(f"{where}: labels must lie in [0, {task.num_classes}), but got {bad}.")
            return
        if not np.isfinite(array).all():
            raise DataError(f"{where}: must hold finite values, but it holds NaN or inf.")
        if task.kind in ("binary", "multilabel", "segmentation"):
            bad_values = array[(array != 0) & (array != 1)]
            if bad_values.size:
                raise DataError(f"{where}: values must be 0 or 1, but got {float(bad_values[0])}.")
        elif task.activation == "sigmoid" and (array.min() < 0 or array.max() > 1):
            bad = float(array.min()) if array.min() < 0 else float(array.max())
            raise DataError(f"{where}: a sigmoid regression target must lie in [0, 1], but got {bad}.")

    def _image_hw(self, task: TaskSpec) -> tuple[int, int] | None:
        if task.kind != "segmentation":
            return None
        images = {k: v for k, v in self.inputs.items() if isinstance(v, (np.ndarray, ImageFiles)) and v.ndim == 4}
        if task.input is not None:
            if task.input not in images:
                raise DataError(f"Data set {self.name!r}, target {task.name!r}: `input` must name an image input "
                                f"{sorted(images)}, but got input={task.input!r}.")
            return tuple(images[task.input].shape[1:3])
        if len(images) != 1:
            raise DataError(f"Data set {self.name!r}, target {task.name!r}: a segmentation task needs exactly one "
                            f"image input (or `input` naming one), but the image inputs are {sorted(images)}.")
        return tuple(next(iter(images.values())).shape[1:3])

    # -- use ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        def shapes(arrays: Mapping[str, np.ndarray]) -> str:
            return ", ".join(f"{k}: {a.dtype}{list(a.shape)}" for k, a in arrays.items())

        return (f"Dataset(name={self.name!r}, n={len(self)}, inputs={{{shapes(self.inputs)}}}, "
                f"targets={{{shapes(self.targets)}}}, tasks={[f'{t.name}:{t.kind}' for t in self.tasks]})")

    def __len__(self) -> int:
        return _length(next(iter(self.inputs.values())))

    def input_specs(self) -> tuple[InputSpec, ...]:
        """One :class:`InputSpec` per input, in order: shapes only, no normalisation statistics."""
        return tuple(InputSpec(name=name, shape=tuple(int(d) for d in a.shape[1:])) for name, a in self.inputs.items())

    def task(self, name: str) -> TaskSpec:
        """The task called ``name``; a :class:`DataError` listing the task names when there is none."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise DataError(f"Data set {self.name!r}: a task name must be one of {[t.name for t in self.tasks]}, "
                        f"but got {shown(name)}.")

    def subset(self, indices: object) -> Dataset:
        """A new data set of the rows at ``indices`` (integer positions or a boolean mask of length N)."""
        index = np.asarray(indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise DataError(f"Data set {self.name!r}: a boolean mask must have shape ({len(self)},), "
                                f"but got {index.shape}.")
        elif index.size == 0:
            index = index.astype(np.intp)
        elif index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise DataError(f"Data set {self.name!r}: indices must be a 1-D array of integers or booleans, "
                            f"but got {_describe(index)}.")
        elif index.min() < -len(self) or index.max() >= len(self):
            raise DataError(f"Data set {self.name!r}: indices must lie in [0, {len(self)}), "
                            f"but got {int(index.min())}..{int(index.max())}.")
        return Dataset(
            name=self.name,
            inputs={k: v[index] for k, v in self.inputs.items()},
            targets={k: v[index] for k, v in self.targets.items()},
            tasks=self.tasks,
            assigned=None if self.assigned is None else self.assigned[index],
        )


def _length(array: np.ndarray) -> int:
    return int(array.shape[0])


def _shape_text(per_sample: tuple[int, ...]) -> str:
    return "(N,)" if not per_sample else f"(N, {', '.join(map(str, per_sample))})"


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"a {type(value).__name__}"
