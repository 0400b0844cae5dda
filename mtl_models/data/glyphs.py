"""Generated glyph pairs with a task that learns late: which glyph is on the left, their sum, their gap.

Each image holds two of :data:`N_GLYPHS` fixed 5x5 glyphs (the same set for every seed),
one in each half, at random heights and positions, in random bright colours on a dark
noisy background. Three tasks:

- ``left``: which glyph is in the left half (classification); learnt within a few epochs.
- ``sum``: ``(left + right) mod N_GLYPHS`` (classification). Either glyph alone says
  nothing about it (each class is equally likely whatever one glyph is), so the task
  stays at chance until the network has learnt both glyphs and how they combine, and
  then climbs: the late learner an early-stopping scheduler misjudges.
- ``gap``: the horizontal distance between the glyphs' centres, as a fraction of the
  image side (regression, sigmoid, MAE).

Everything is vectorised; the same arguments give the same data.
"""

from __future__ import annotations

import numpy as np

from mtl_models.data._common import balanced_labels, check_int, check_samples, check_seed, in_chunks
from mtl_models.data.dataset import Dataset
from mtl_models.spec import TaskSpec

__all__ = ["GLYPH_SIDE", "N_GLYPHS", "glyph_set", "load_glyphs"]

N_GLYPHS = 8
GLYPH_SIDE = 5  # cells per side of a glyph, before scaling to the image
_GLYPH_SEED = 12345  # the glyph set is part of the data set's definition, not of a sample seed
_MIN_CELLS = 8  # cells set in a glyph
_MAX_OVERLAP = 0.7  # the fraction of cells two glyphs may share
_NOISE = 0.03
_CHUNK = 1024


def glyph_set() -> np.ndarray:
    """The :data:`N_GLYPHS` glyphs, ``(N_GLYPHS, GLYPH_SIDE, GLYPH_SIDE)`` float32 in {0, 1}, pairwise distinct."""
    rng = np.random.default_rng(_GLYPH_SEED)
    glyphs: list[np.ndarray] = []
    while len(glyphs) < N_GLYPHS:
        candidate = rng.random((GLYPH_SIDE, GLYPH_SIDE)) < 0.5
        if candidate.sum() >= _MIN_CELLS and all((candidate == g).mean() <= _MAX_OVERLAP for g in glyphs):
            glyphs.append(candidate)
    return np.stack(glyphs).astype(np.float32)


def _paint(image: np.ndarray, glyph: np.ndarray, colour: np.ndarray, y: np.ndarray, x: np.ndarray) -> None:
    """Paint one glyph per sample (``glyph`` ``(n, g, g)``) at top-left ``(y, x)`` in ``colour`` ``(n, 3)``."""
    side = glyph.shape[1]
    rows = y[:, None, None] + np.arange(side)[None, :, None]
    cols = x[:, None, None] + np.arange(side)[None, None, :]
    samples = np.arange(len(image))[:, None, None]
    patch = image[samples, rows, cols]
    image[samples, rows, cols] = np.where(glyph[..., None] > 0, colour[:, None, None, :], patch)


def _draw(rng: np.random.Generator, left: np.ndarray, right: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    n, scale = len(left), size // 16
    glyphs = np.kron(glyph_set(), np.ones((scale, scale), dtype=np.float32))
    side, half = glyphs.shape[1], size // 2
    background = rng.uniform(0.0, 0.1, size=(n, 1, 1, 1)).astype(np.float32)
    image = np.broadcast_to(background, (n, size, size, 3)).copy()
    x_left = rng.integers(0, half - side + 1, size=n)
    x_right = rng.integers(half, size - side + 1, size=n)
    for glyph, x in ((left, x_left), (right, x_right)):
        y = rng.integers(0, size - side + 1, size=n)
        colour = rng.uniform(0.5, 1.0, size=(n, 3)).astype(np.float32)
        _paint(image, glyphs[glyph], colour, y, x)
    image += _NOISE * rng.standard_normal(size=image.shape, dtype=np.float32)
    gap = ((x_right - x_left) / size).astype(np.float32)[:, None]
    return np.clip(image, 0.0, 1.0), gap


def load_glyphs(*, n_samples: int = 4000, image_size: int = 32, seed: int = 0) -> Dataset:
    """Generate the "glyphs" data set: input ``image`` ``(N, S, S, 3)`` float32 in [0, 1].

    Tasks ``left`` and ``sum`` (classification over :data:`N_GLYPHS` classes) and ``gap``
    (regression, one value in (0, 1)); see the module docstring. Glyphs are drawn at
    ``image_size // 16`` pixels per cell. ``left`` is balanced to within one sample; the
    right glyph is uniform, so ``sum`` is too in expectation.
    """
    size = check_int("image_size", image_size, 16, 512)
    n = check_samples(n_samples, size, 3)
    rng = np.random.default_rng(check_seed(seed))
    left = balanced_labels(rng, n, N_GLYPHS)
    right = rng.integers(0, N_GLYPHS, size=n).astype(np.int32)
    images, gaps = in_chunks(lambda a, b: _draw(rng, a, b, size), _CHUNK, left, right)
    tasks = (
        TaskSpec(name="left", kind="classification", num_classes=N_GLYPHS, spatial=True),  # a flip swaps the glyphs
        TaskSpec(name="sum", kind="classification", num_classes=N_GLYPHS),
        TaskSpec(name="gap", kind="regression", output_dim=1, activation="sigmoid", loss="mae", spatial=True),
    )
    return Dataset(
        name="glyphs",
        inputs={"image": images.astype(np.float32, copy=False)},
        targets={"left": left, "sum": ((left + right) % N_GLYPHS).astype(np.int32), "gap": gaps},
        tasks=tasks,
    )
