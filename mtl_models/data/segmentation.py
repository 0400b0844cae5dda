"""Three inputs, three kinds of answer: a label, a pixel mask and a number (reference network (c)).

Each sample has 10 tabular features (``tabular_a``), a 3-channel image holding one circle
or square, and 5 more tabular features (``tabular_b``). The tasks are chosen so that
each needs a different input:

- ``label`` (binary): 1 when ``1.5 * s + tabular_a @ LABEL_WEIGHTS > 0``, where ``s`` is
  +1 for a circle and -1 for a square. It needs both the image and ``tabular_a``; the
  other seven features of ``tabular_a`` are distractors. Positives are about half.
- ``mask`` (segmentation, 1 class): the object's pixels.
- ``value`` (linear regression): ``z(tabular_b) @ VALUE_WEIGHTS + 2 * area`` plus
  N(0, 0.05) noise, where ``z`` standardises ``tabular_b`` by its generating offsets
  and scales and ``area`` is the object's share of the image.
"""

from __future__ import annotations

import numpy as np

from mtl_models.data._common import balanced_labels, check_int, check_samples, check_seed
from mtl_models.data.dataset import Dataset
from mtl_models.data.shapes import shape_masks
from mtl_models.spec import TaskSpec

__all__ = ["LABEL_WEIGHTS", "VALUE_WEIGHTS", "load_segmentation"]

LABEL_WEIGHTS: tuple[float, ...] = (1.0, -0.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
VALUE_WEIGHTS: tuple[float, ...] = (0.5, -1.0, 0.25, 0.8, -0.3)
_IMAGE_WEIGHT = 1.5  # how much the shape moves the label's logit; comparable to tabular_a's share
_AREA_WEIGHT = 2.0
_VALUE_NOISE = 0.05
# tabular_b is drawn on different scales, so the model's normalisation layer has work to do.
_B_OFFSET = (0.0, 3.0, -2.0, 1.0, 20.0)
_B_SCALE = (1.0, 2.0, 5.0, 0.5, 10.0)
_SIZE_RANGE = (0.25, 0.5)  # the object's side as a fraction of the image side
_CIRCLE, _SQUARE = 0, 1  # indices into shapes.SHAPE_NAMES


def load_segmentation(*, n_samples: int = 1000, image_size: int = 32, seed: int = 0) -> Dataset:
    """Generate the "segmentation" data set (network (c)); see the module docstring for the rules.

    Inputs: ``tabular_a`` ``(N, 10)``, ``image`` ``(N, S, S, 3)`` in [0, 1], ``tabular_b``
    ``(N, 5)``, all float32. Targets: ``label`` float32 ``(N, 1)``, ``mask`` float32
    ``(N, S, S, 1)`` in {0, 1}, ``value`` float32 ``(N, 1)``. The same arguments give the
    same data.
    """
    size = check_int("image_size", image_size, 8, 512)
    n = check_samples(n_samples, size, 4)  # the image and its mask
    rng = np.random.default_rng(check_seed(seed))

    kind = np.where(balanced_labels(rng, n, 2) == 0, _CIRCLE, _SQUARE)
    half = rng.uniform(*_SIZE_RANGE, size=n).astype(np.float32) * size / 2
    cy = rng.uniform(half, size - half).astype(np.float32)
    cx = rng.uniform(half, size - half).astype(np.float32)
    mask = shape_masks(kind, cy, cx, half, size)[..., None]
    colour = rng.uniform(0.5, 1.0, size=(n, 1, 1, 3)).astype(np.float32)
    image = np.where(mask, colour, np.float32(0.1))
    image += 0.05 * rng.standard_normal(size=image.shape, dtype=np.float32)
    image = np.clip(image, 0.0, 1.0)

    tabular_a = rng.standard_normal(size=(n, 10), dtype=np.float32)
    logit = _IMAGE_WEIGHT * np.where(kind == _CIRCLE, 1.0, -1.0) + tabular_a @ np.asarray(LABEL_WEIGHTS)
    label = (logit > 0).astype(np.float32)[:, None]

    standard_b = rng.standard_normal(size=(n, 5), dtype=np.float32)
    tabular_b = standard_b * np.float32(_B_SCALE) + np.float32(_B_OFFSET)
    area = mask.reshape(n, -1).mean(axis=1)
    value = standard_b @ np.asarray(VALUE_WEIGHTS) + _AREA_WEIGHT * area + _VALUE_NOISE * rng.standard_normal(n)

    tasks = (
        TaskSpec(name="label", kind="binary"),
        TaskSpec(name="mask", kind="segmentation", num_classes=1, input="image"),
        TaskSpec(name="value", kind="regression", output_dim=1, loss="mse", metrics=("mae",)),
    )
    return Dataset(
        name="segmentation",
        inputs={"tabular_a": tabular_a, "image": image.astype(np.float32, copy=False),
                "tabular_b": tabular_b.astype(np.float32, copy=False)},
        targets={"label": label, "mask": mask.astype(np.float32), "value": value.astype(np.float32)[:, None]},
        tasks=tasks,
    )
