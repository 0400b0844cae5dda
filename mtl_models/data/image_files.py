"""Columns that stay on disk: image files that read as ``(N, H, W, C)`` float32 pixels when fed, and mask
files that read as a segmentation target.

:class:`ImageFiles` stands where a :class:`~mtl_models.data.dataset.Dataset` would hold an image array, and
:class:`MaskFiles` where it would hold a segmentation target. Each has the array's shape, dtype, length and row
selection, so splitting and every shape check work unchanged; the files are read by the ``tf.data`` pipeline
(mtl_models/streaming.py) or, for a few rows, by ``numpy.asarray``.

Pixels are in raw units, 0-255, as the files hold them; the model's normalisation layer scales them. A mask
is a one-channel PNG or BMP whose values are class indices; for a one-class mask every value above 0 is the
object (0/1 and 0/255 both read as 0/1). A mask whose size differs from the image's is resized by nearest
neighbour, so that its values stay class indices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["CACHES", "ImageFiles", "MaskFiles", "read_mask", "read_pixels"]

CACHES = ("auto", "memory", "disk", "none")  # where decoded images are kept between epochs (streaming.py)


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """``paths`` (absolute, one per row) of images decoded and resized to ``image_shape`` (H, W, C).

    ``rows`` are the rows of the label table the files came from (1-based, as a spreadsheet shows them),
    so that an image that fails to decode during training can be named with its row. ``cache`` is one of
    :data:`CACHES`.
    """

    paths: np.ndarray
    image_shape: tuple[int, int, int]
    rows: np.ndarray
    cache: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", np.asarray(self.paths, dtype=str))
        object.__setattr__(self, "rows", np.asarray(self.rows, dtype=np.int64))
        object.__setattr__(self, "image_shape", tuple(int(d) for d in self.image_shape))
        if self.paths.ndim != 1 or self.rows.shape != self.paths.shape:
            raise ValueError(f"ImageFiles needs one row number per path, got {self.paths.shape} and {self.rows.shape}")
        if self.cache not in CACHES:
            raise ValueError(f"ImageFiles.cache must be one of {CACHES}, got {self.cache!r}")

    # What the data set's checks and the splitter read: an array's surface.
    dtype = np.dtype(np.float32)
    ndim = 4

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), *self.image_shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: object) -> ImageFiles:
        if isinstance(index, (int, np.integer)):
            raise TypeError("ImageFiles selects rows with an array of indices or a mask; read pixels with np.asarray")
        return ImageFiles(self.paths[index], self.image_shape, self.rows[index], self.cache)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """Every image decoded: for a handful of rows (a report's sample pictures), not for training."""
        pixels = np.zeros(self.shape, np.float32)
        for i, path in enumerate(self.paths):
            pixels[i] = read_pixels(path, self.image_shape)
        return pixels if dtype is None else pixels.astype(dtype)

    def __repr__(self) -> str:
        return f"ImageFiles(n={len(self)}, image_shape={self.image_shape}, cache={self.cache!r})"

    @property
    def nbytes(self) -> int:
        """Bytes the decoded images take as stored in a cache (one byte a pixel channel)."""
        return int(np.prod(self.shape))

    @property
    def folder(self) -> str:
        """The deepest folder holding every file (what a cluster's nodes must all see)."""
        return os.path.commonpath(list(self.paths)) if len(self.paths) else ""


def read_pixels(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One file's pixels as float64 ``(H, W, C)``, 0-255, read with Pillow (resized bilinearly when its size
    differs). For statistics and pictures; training reads files with TensorFlow (mtl_models/streaming.py)."""
    from PIL import Image

    height, width, channels = image_shape
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGBA" if channels == 4 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float64).reshape(height, width, channels)


@dataclass(frozen=True, eq=False)
class MaskFiles:
    """``paths`` (absolute, one per row) of segmentation masks read at ``image_hw`` (H, W) as the target of a
    task with ``num_classes``: float32 ``(N, H, W, 1)`` in {0, 1} for one class, else int32 ``(N, H, W)``.
    ``rows`` as for :class:`ImageFiles`."""

    paths: np.ndarray
    image_hw: tuple[int, int]
    num_classes: int
    rows: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", np.asarray(self.paths, dtype=str))
        object.__setattr__(self, "rows", np.asarray(self.rows, dtype=np.int64))
        object.__setattr__(self, "image_hw", tuple(int(d) for d in self.image_hw))
        if self.paths.ndim != 1 or self.rows.shape != self.paths.shape:
            raise ValueError(f"MaskFiles needs one row number per path, got {self.paths.shape} and {self.rows.shape}")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32 if self.num_classes == 1 else np.int32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.image_hw, *((1,) if self.num_classes == 1 else ()))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: object) -> MaskFiles:
        if isinstance(index, (int, np.integer)):
            raise TypeError("MaskFiles selects rows with an array of indices or a mask; read masks with np.asarray")
        return MaskFiles(self.paths[index], self.image_hw, self.num_classes, self.rows[index])

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """Every mask read, as the target array: for a test split's report, not for training."""
        masks = np.zeros(self.shape, self.dtype)
        for i, path in enumerate(self.paths):
            values = read_mask(path, self.image_hw)
            masks[i] = (values > 0)[..., None] if self.num_classes == 1 else values
        return masks if dtype is None else masks.astype(dtype)

    def __repr__(self) -> str:
        return f"MaskFiles(n={len(self)}, image_hw={self.image_hw}, num_classes={self.num_classes})"

    @property
    def nbytes(self) -> int:
        """Bytes the masks take as stored in a cache (one byte a pixel)."""
        return int(np.prod(self.shape))


def read_mask(path: str, image_hw: tuple[int, int]) -> np.ndarray:
    """One mask file's values as uint8 ``(H, W)``, read with Pillow (resized by nearest neighbour when its size
    differs). A bilevel (mode 1) file reads as 0/255, as TensorFlow's decoder reads it."""
    from PIL import Image

    height, width = image_hw
    with Image.open(path) as mask:
        mask = mask.convert("L") if mask.mode == "1" else mask
        if mask.size != (width, height):
            mask = mask.resize((width, height), Image.Resampling.NEAREST)
        return np.asarray(mask, dtype=np.uint8)
