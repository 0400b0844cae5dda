"""Argument checks and small generators shared by the loaders (private)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtl_models.errors import DataError

__all__ = ["MAX_GENERATED_BYTES", "balanced_labels", "check_int", "check_samples", "check_seed", "in_chunks",
           "pixel_grid"]

MAX_GENERATED_BYTES = 4 << 30  # a generated data set's images; every trial holds them in memory


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int after checking ``low <= value (<= high)``; a :class:`DataError` otherwise."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if ok and (value < low or (high is not None and value > high)):
        ok = False
    if not ok:
        rule = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise DataError(f"`{name}` must be {rule}, but got {name}={value!r}.")
    return int(value)


def check_samples(n_samples: object, image_size: int, channels: int) -> int:
    """``n_samples`` as an int, after checking that its float32 images (``image_size``² x ``channels``) fit
    :data:`MAX_GENERATED_BYTES`; a :class:`DataError` otherwise."""
    most = MAX_GENERATED_BYTES // (image_size * image_size * channels * 4)
    n = check_int("n_samples", n_samples, 1)
    if n > most:
        raise DataError(f"`n_samples` must be at most {most:,} at image_size {image_size} (the generated images are held "
                        f"in memory, {MAX_GENERATED_BYTES >> 30} GiB at most), but got n_samples={n}.")
    return n


def check_seed(seed: object) -> int:
    """The seed as an int; a :class:`DataError` unless it is an integer in ``[0, 2**32)``."""
    return check_int("seed", seed, 0, 2**32 - 1)


def balanced_labels(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    """``n`` int32 labels in ``[0, num_classes)``, each class within one of ``n / num_classes``, shuffled."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int32)


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)``, each ``(1, size, size)`` float32, for broadcasting over samples."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    y, x = np.meshgrid(centres, centres, indexing="ij")
    return y[None], x[None]


def in_chunks(draw: Callable[..., tuple[np.ndarray, ...]], chunk: int, *labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """``draw(*labels)`` over consecutive slices of ``chunk`` samples (to bound memory), its outputs concatenated."""
    parts = [draw(*(a[start:start + chunk] for a in labels)) for start in range(0, len(labels[0]), chunk)]
    return tuple(np.concatenate(outputs) for outputs in zip(*parts))
