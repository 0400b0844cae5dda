"""Turning raw arrays from a file into inputs and targets that follow the Dataset conventions (private).

Each function checks one array against its task (shape, whole-number labels, class
range, {0, 1} values, [0, 1] for sigmoid regression) and returns it in the dtype and
shape :class:`~mtl_models.data.dataset.Dataset` expects. ``where`` names the array and
file in every error message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_models.errors import DataError
from mtl_models.spec import TaskSpec

__all__ = ["as_input", "as_target", "first_row"]


def first_row(bad: np.ndarray) -> int:
    """The first sample (index along axis 0) where the boolean array ``bad`` is true."""
    return int(np.argwhere(bad)[0][0])


def as_input(array: np.ndarray, array_name: str, input_name: str, path: Path) -> np.ndarray:
    """A float32 model input: ``(N, D)`` stays a vector, ``(N, H, W)`` gains a channel axis, ``(N, H, W, C)`` stays."""
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim not in (2, 4):
        raise DataError(f"Array '{array_name}' in '{path}' (input {input_name!r}) must be (N, D) for a vector or "
                        f"(N, H, W) / (N, H, W, C) for an image, but has shape {array.shape}.")
    converted = array.astype(np.float32)
    if not np.isfinite(converted).all():
        raise DataError(f"Array '{array_name}' in '{path}' (input {input_name!r}) must fit in float32, but holds "
                        f"values too large (row {first_row(~np.isfinite(converted))}).")
    return converted


def as_target(values: np.ndarray, task: TaskSpec, where: str) -> np.ndarray:
    """``values`` (already one column when the task names one) in the target convention of ``task``."""
    if task.kind == "classification":
        return _labels(_squeeze_last(values, 2, where, "(N,) or (N, 1)"), task.num_classes, where)
    if task.kind == "binary":
        flat = _squeeze_last(values, 2, where, "(N,) or (N, 1)")
        return _zero_one(flat, where)[:, None]
    if task.kind == "multilabel":
        if task.num_classes == 1 and values.ndim == 1:
            values = values[:, None]
        if values.shape[1:] != (task.num_classes,):
            raise DataError(f"{where}: a multilabel target must have shape (N, {task.num_classes}), "
                            f"but has {values.shape}.")
        return _zero_one(values, where)
    if task.kind == "regression":
        return _regression(values, task, where)
    masks = _squeeze_last(values, 4, where, "(N, H, W) or (N, H, W, 1)")
    if task.num_classes == 1:
        return _zero_one(masks, where)[..., None]
    return _labels(masks, task.num_classes, where)


def _squeeze_last(values: np.ndarray, ndim: int, where: str, expected: str) -> np.ndarray:
    """Drop a trailing axis of size 1 from an array of ``ndim`` dimensions; require ``ndim - 1`` after."""
    if values.ndim == ndim and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != ndim - 1:
        raise DataError(f"{where}: must have shape {expected}, but has {values.shape}.")
    return values


def _labels(values: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    if values.dtype.kind == "f":
        fractional = values != np.round(values)
        if fractional.any():
            row = first_row(fractional)
            raise DataError(f"{where}: class labels must be whole numbers, but got {_scalar(values[fractional][0])} "
                            f"(row {row}).")
    outside = (values < 0) | (values >= num_classes)
    if outside.any():
        raise DataError(f"{where}: class labels must lie in [0, {num_classes}) ({num_classes} declared classes), "
                        f"but got {_scalar(values[outside][0])} (row {first_row(outside)}).")
    return values.astype(np.int32)


def _zero_one(values: np.ndarray, where: str) -> np.ndarray:
    bad = (values != 0) & (values != 1)
    if bad.any():
        raise DataError(f"{where}: values must be 0 or 1, but got {_scalar(values[bad][0])} (row {first_row(bad)}).")
    return values.astype(np.float32)


def _regression(values: np.ndarray, task: TaskSpec, where: str) -> np.ndarray:
    if values.ndim == 1 and task.output_dim == 1:
        values = values[:, None]
    if values.shape[1:] != (task.output_dim,):
        raise DataError(f"{where}: a regression target with output_dim={task.output_dim} must have shape "
                        f"(N, {task.output_dim}), but has {values.shape}.")
    converted = values.astype(np.float32)
    if not np.isfinite(converted).all():
        raise DataError(f"{where}: values must fit in float32, but some are too large "
                        f"(row {first_row(~np.isfinite(converted))}).")
    if task.activation == "sigmoid":
        outside = (converted < 0) | (converted > 1)
        if outside.any():
            raise DataError(f"{where}: a sigmoid regression target must lie in [0, 1], but got "
                            f"{_scalar(converted[outside][0])} (row {first_row(outside)}).")
    return converted


def _scalar(value: np.generic) -> int | float:
    return value.item()
