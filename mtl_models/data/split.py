"""Train/validation/test splits and the z-score statistics taken from the training split.

The test split is what the search never sees: retraining and the final report use it.
Normalisation statistics come from the training split only and travel inside the model
(as :class:`InputSpec` mean/variance), so a saved model takes raw inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtl_models.data.dataset import Dataset
from mtl_models.data.image_check import image_stats
from mtl_models.data.image_files import ImageFiles
from mtl_models.errors import DataError
from mtl_models.spec import InputSpec

__all__ = ["MIN_VARIANCE", "Splits", "normalization_stats", "normalized_inputs", "split"]

MIN_VARIANCE = 1e-8  # floor so that a constant channel never divides by zero

Stats = dict[str, tuple[tuple[float, ...], tuple[float, ...]]]


@dataclass(frozen=True)
class Splits:
    """Three disjoint parts of one data set and how they were drawn.

    ``test`` is empty (zero rows, the right shapes) when the split was made with
    ``test_fraction=0``.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    seed: int
    stratify: str | None = None

    def __post_init__(self) -> None:
        for part in ("train", "val", "test"):
            if not isinstance(getattr(self, part), Dataset):
                raise DataError(f"Splits.{part} must be a Dataset, but got {type(getattr(self, part)).__name__}.")

    def sizes(self) -> dict[str, int]:
        """Rows in each part, e.g. ``{"train": 700, "val": 200, "test": 100}``."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split(
    dataset: Dataset,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 0,
    stratify: str | None = None,
) -> Splits:
    """Split ``dataset`` at random (seeded) into disjoint train, val and test parts.

    ``stratify`` names a classification or binary task whose class proportions every
    part keeps. A data set that assigns its rows itself (``Dataset.assigned``, a split column of the
    user's) is split as assigned, and the fractions are not used. Returns :class:`Splits`; raises :class:`DataError` for a fraction out of
    range, an unknown or unsuitable stratify task, or a data set too small to split.
    """
    _check_fraction("val_fraction", val_fraction, low_open=True)
    _check_fraction("test_fraction", test_fraction, low_open=False)
    if val_fraction + test_fraction >= 1:
        raise DataError(f"`val_fraction + test_fraction < 1` must hold (something must be left to train on), "
                        f"but got ({val_fraction=}, {test_fraction=}).")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise DataError(f"`seed` must be an integer in [0, 2**32), but got seed={seed!r}.")
    labels = _stratify_labels(dataset, stratify)
    if dataset.assigned is not None:
        return _as_assigned(dataset, seed, stratify)
    from sklearn.model_selection import train_test_split  # lazily: scikit-learn is slow to import

    index = np.arange(len(dataset))
    try:
        if test_fraction > 0:
            rest, test = train_test_split(index, test_size=test_fraction, random_state=int(seed), stratify=labels)
        else:
            rest, test = index, index[:0]
        rest_labels = None if labels is None else labels[rest]
        train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), random_state=int(seed),
                                      stratify=rest_labels)
    except ValueError as exc:  # too few rows, or a class with too few members to stratify
        raise DataError(f"Data set {dataset.name!r} ({len(dataset)} rows) cannot be split with "
                        f"({val_fraction=}, {test_fraction=}, {stratify=}): {exc}") from exc
    return Splits(train=dataset.subset(train), val=dataset.subset(val), test=dataset.subset(test),
                  seed=int(seed), stratify=stratify)


def _as_assigned(dataset: Dataset, seed: int, stratify: str | None) -> Splits:
    parts = {part: np.flatnonzero(dataset.assigned == part) for part in ("train", "val", "test")}
    empty = [part for part in ("train", "val") if not len(parts[part])]
    if empty:
        raise DataError(f"Data set {dataset.name!r}: its split column must give at least one row to 'train' and "
                        f"one to 'val', but none is assigned to {empty}.")
    return Splits(train=dataset.subset(parts["train"]), val=dataset.subset(parts["val"]),
                  test=dataset.subset(parts["test"]), seed=int(seed), stratify=stratify)


def _check_fraction(name: str, value: object, *, low_open: bool) -> None:
    valid = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if valid:
        valid = (0 < value < 1) if low_open else (0 <= value < 1)
    if not valid:
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise DataError(f"`{name}` must be a float in {interval}, but got {name}={value!r}.")


def _stratify_labels(dataset: Dataset, stratify: str | None) -> np.ndarray | None:
    if stratify is None:
        return None
    names = [t.name for t in dataset.tasks]
    if stratify not in names:
        raise DataError(f"`stratify` must name a task of data set {dataset.name!r} {names}, "
                        f"but got stratify={stratify!r}.")
    task = dataset.task(stratify)
    if task.kind not in ("classification", "binary"):
        raise DataError(f"`stratify` must name a classification or binary task, but got stratify={stratify!r} "
                        f"(a {task.kind} task).")
    return np.asarray(dataset.targets[stratify]).reshape(-1).astype(np.int64)


def normalization_stats(train: Dataset) -> Stats:
    """Per-input z-score statistics of ``train``: ``{input: (mean, variance)}``.

    One value per channel for an image (averaged over samples, height and width) or per
    feature for a vector; images on disk are streamed, from a seeded sample when there are many
    (:func:`~mtl_models.data.image_check.image_stats`). Variances are floored at :data:`MIN_VARIANCE`. Pass the
    training split only: statistics from validation or test data would leak.
    """
    if len(train) == 0:
        raise DataError(f"Normalisation statistics need at least one row, but data set {train.name!r} is empty.")
    stats: Stats = {}
    for name, array in train.inputs.items():
        if isinstance(array, ImageFiles):
            stats[name] = image_stats(array)
            continue
        axes = tuple(range(array.ndim - 1))
        mean = array.mean(axis=axes, dtype=np.float64)
        variance = np.maximum(array.var(axis=axes, dtype=np.float64), MIN_VARIANCE)
        stats[name] = (tuple(float(m) for m in mean), tuple(float(v) for v in variance))
    return stats


def normalized_inputs(train: Dataset) -> tuple[InputSpec, ...]:
    """``train``'s input specs with mean and variance filled from :func:`normalization_stats`."""
    stats = normalization_stats(train)
    return tuple(
        InputSpec(name=spec.name, shape=spec.shape, mean=stats[spec.name][0], variance=stats[spec.name][1])
        for spec in train.input_specs()
    )
