"""Generated coloured shapes: what shape, what colour, and where (reference network (e)).

Each image holds one shape on a dark, slightly noisy background. The three tasks ask for
its kind (:data:`SHAPE_NAMES`), its colour (:data:`COLOUR_NAMES`, jittered per sample so
the answer is not a single pixel value) and its midpoint as fractions of the image side.
Everything is vectorised; 10,000 images of 32x32 take well under a second.
"""

from __future__ import annotations

import numpy as np

from mtl_models.data._common import balanced_labels, check_int, check_samples, check_seed, in_chunks, pixel_grid
from mtl_models.data.dataset import Dataset
from mtl_models.spec import TaskSpec

__all__ = ["COLOURS", "COLOUR_NAMES", "SHAPE_NAMES", "load_shapes", "shape_masks"]

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLOUR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta")
# RGB of each colour name, far enough apart that the jitter below never makes two meet.
COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.15, 0.15), (0.15, 0.80, 0.20), (0.20, 0.35, 0.95), (0.95, 0.90, 0.15), (0.85, 0.20, 0.85),
)
_COLOUR_JITTER = 0.07  # per channel, uniform +-; the closest colours differ by >= 0.6 in some channel
_SIZE_RANGE = (0.2, 0.4)  # the shape's bounding-box side, as a fraction of the image side
_NOISE = 0.03  # pixel noise standard deviation
_CHUNK = 1024  # samples drawn at once, to bound memory at N x S x S


def shape_masks(kinds: np.ndarray, cy: np.ndarray, cx: np.ndarray, half: np.ndarray, size: int) -> np.ndarray:
    """Boolean pixel masks ``(n, size, size)`` of shapes given per sample.

    ``kinds`` indexes :data:`SHAPE_NAMES`; ``(cy, cx)`` is the centre of the shape's
    bounding box and ``half`` half its side, all in pixels. The triangle points up.
    """
    y, x = pixel_grid(size)
    cy, cx, half = (np.asarray(v, dtype=np.float32)[:, None, None] for v in (cy, cx, half))
    kinds = np.asarray(kinds)[:, None, None]
    dy, dx = np.abs(y - cy), np.abs(x - cx)
    inside_box = (dy <= half) & (dx <= half)
    circle = dy**2 + dx**2 <= half**2
    triangle = inside_box & (dx <= (y - (cy - half)) / 2)
    arm = np.maximum(half / 3, 0.75)
    cross = inside_box & ((dy <= arm) | (dx <= arm))
    return np.select([kinds == 0, kinds == 1, kinds == 2], [circle, inside_box, triangle], default=cross)


def _draw(rng: np.random.Generator, shape: np.ndarray, colour: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    n = len(shape)
    half = rng.uniform(*_SIZE_RANGE, size=n).astype(np.float32) * size / 2
    cy = rng.uniform(half, size - half).astype(np.float32)
    cx = rng.uniform(half, size - half).astype(np.float32)
    rgb = np.asarray(COLOURS, dtype=np.float32)[colour] + rng.uniform(-_COLOUR_JITTER, _COLOUR_JITTER, size=(n, 3)).astype(np.float32)
    background = rng.uniform(0.0, 0.12, size=(n, 1, 1, 1)).astype(np.float32)
    mask = shape_masks(shape, cy, cx, half, size)[..., None]
    image = np.where(mask, rgb[:, None, None, :], background)
    image += _NOISE * rng.standard_normal(size=image.shape, dtype=np.float32)
    midpoint = np.stack([cx, cy], axis=1) / size
    return np.clip(image, 0.0, 1.0), midpoint.astype(np.float32)


def load_shapes(*, n_samples: int = 3000, image_size: int = 32, seed: int = 0) -> Dataset:
    """Generate the "shapes" data set: input ``image`` ``(N, S, S, 3)`` float32 in [0, 1].

    Tasks: ``shape`` (classification over :data:`SHAPE_NAMES`), ``colour``
    (classification over :data:`COLOUR_NAMES`), ``midpoint`` (regression: the bounding
    box centre ``(x, y)`` divided by the side; sigmoid; trained and judged by MAE, as in
    network (e), which localises better here than MSE; also logged: ``within_5pct``, the
    fraction of predictions within 0.05 of the truth). The shape's side is 20-40 % of the
    image's and the shape lies fully inside. Classes are
    balanced to within one sample. The same arguments give the same data.
    """
    size = check_int("image_size", image_size, 8, 512)
    n = check_samples(n_samples, size, 3)
    rng = np.random.default_rng(check_seed(seed))
    shape = balanced_labels(rng, n, len(SHAPE_NAMES))
    colour = balanced_labels(rng, n, len(COLOUR_NAMES))
    images, midpoints = in_chunks(lambda s, c: _draw(rng, s, c, size), _CHUNK, shape, colour)
    tasks = (
        TaskSpec(name="shape", kind="classification", num_classes=len(SHAPE_NAMES), class_names=SHAPE_NAMES),
        TaskSpec(name="colour", kind="classification", num_classes=len(COLOUR_NAMES), class_names=COLOUR_NAMES),
        TaskSpec(name="midpoint", kind="regression", output_dim=2, activation="sigmoid", loss="mae",
                 metrics=("mae", "within_5pct"), spatial=True),
    )
    return Dataset(
        name="shapes",
        inputs={"image": images.astype(np.float32, copy=False)},
        targets={"shape": shape, "colour": colour, "midpoint": midpoints},
        tasks=tasks,
    )
