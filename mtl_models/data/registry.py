"""Data sets by name, so that an experiment file can say ``data: {name: shapes, n_samples: 2000}``.

Each name maps to a loader whose keyword-only parameters are its options; an unknown
name or option is a :class:`DataError` listing the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mtl_models.data.dataset import Dataset
from mtl_models.data.digits import load_digits
from mtl_models.data.glyphs import load_glyphs
from mtl_models.data.images import load_images, source_from_options
from mtl_models.data.npz import NpzSource, NpzTask, load_npz
from mtl_models.data.segmentation import load_segmentation
from mtl_models.data.shapes import load_shapes
from mtl_models.errors import DataError, shown

__all__ = ["DATASETS", "dataset_options", "load_dataset"]


def _npz(
    *,
    source: NpzSource | Mapping[str, Any] | None = None,
    path: str | None = None,
    tasks: Sequence[NpzTask | Mapping[str, Any]] | None = None,
    inputs: Mapping[str, str] | None = None,
    image_shape: Sequence[int] | None = None,
) -> Dataset:
    """Load an NPZ from ``source`` alone, or from the fields of :class:`NpzSource` given one by one."""
    fields = {"path": path, "tasks": tasks, "inputs": inputs, "image_shape": image_shape}
    given = {k: v for k, v in fields.items() if v is not None}
    if source is not None:
        if given:
            raise DataError(f"The npz data set takes either `source` or the fields {sorted(fields)}, not both; "
                            f"got source and {sorted(given)}.")
        return load_npz(source if isinstance(source, NpzSource) else NpzSource.from_dict(source))
    missing = [k for k in ("path", "tasks") if k not in given]
    if missing:
        raise DataError(f"The npz data set needs `source`, or `path` and `tasks`; missing {missing}.")
    return load_npz(NpzSource.from_dict(given))


def _images(
    *,
    path: str | None = None,
    tasks: Sequence[Mapping[str, Any]] | None = None,
    image_shape: Sequence[int] | None = None,
    image_column: str = "file",
    image_input: str = "image",
    inputs: Mapping[str, Sequence[str]] | None = None,
    split_column: str | None = None,
    cache: str = "auto",
) -> Dataset:
    """A folder of images and its label table (see :mod:`mtl_models.data.images`)."""
    options = {"path": path, "tasks": tasks, "image_shape": image_shape, "image_column": image_column,
               "image_input": image_input, "inputs": inputs or {}, "split_column": split_column, "cache": cache}
    return load_images(source_from_options(**{k: v for k, v in options.items() if v is not None}))


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "shapes": load_shapes,
    "digits": load_digits,
    "segmentation": load_segmentation,
    "glyphs": load_glyphs,
    "npz": _npz,
    "images": _images,
}
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def dataset_options(name: str) -> tuple[str, ...]:
    """The option names ``load_dataset(name, ...)`` accepts (its loader's keyword-only parameters)."""
    if name not in _LOADERS:
        raise DataError(f"A data set name must be one of {list(DATASETS)}, but got {shown(name)}.")
    parameters = inspect.signature(_LOADERS[name]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load the data set called ``name`` (one of :data:`DATASETS`) with its loader's options.

    - ``shapes``: ``n_samples``, ``image_size``, ``seed`` (see :func:`load_shapes`);
    - ``digits``: ``n_samples``, ``colour_task``, ``seed`` (see :func:`load_digits`);
    - ``segmentation``: ``n_samples``, ``image_size``, ``seed`` (see :func:`load_segmentation`);
    - ``glyphs``: ``n_samples``, ``image_size``, ``seed`` (see :func:`load_glyphs`);
    - ``npz``: either ``source`` (an :class:`NpzSource` or a mapping of its fields), or
      ``path`` and ``tasks`` (each an :class:`NpzTask` or a mapping such as
      ``{"task": {"name": "A", "kind": "classification", "num_classes": 10}, "column": 0}``)
      with optional ``inputs`` and ``image_shape``;
    - ``images``: ``path`` (the label table), ``tasks``, ``image_shape``, and optionally
      ``image_column``, ``image_input``, ``inputs``, ``split_column``, ``cache`` (see :func:`load_images`).
    """
    valid = dataset_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DataError(f"Options of data set {name!r} must be among {list(valid)}, but got unknown option(s) "
                        f"{unknown}.")
    return _LOADERS[name](**options)
