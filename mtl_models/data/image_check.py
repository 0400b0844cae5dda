"""What can be known about image and mask files before training, without TensorFlow (the search's driver never
imports it): each file's format, size and channels from its header, whether it ends as its format must, the
training split's pixel statistics, and whether a sample of masks holds only declared classes.

The checks read a file's header and its last bytes, not its pixels: about 0.1 ms a file (bench/images.py
measures it). A file damaged in its middle passes them; it fails the trial that reads it, with its name.
"""

from __future__ import annotations

import warnings

import numpy as np

from mtl_models.data.image_files import ImageFiles, MaskFiles, read_mask, read_pixels
from mtl_models.errors import DataError

__all__ = ["FORMATS", "MASK_FORMATS", "STATS_SAMPLE", "image_problem", "image_stats", "mask_problem",
           "mask_value_problem"]

FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # what tf.io.decode_image reads
MASK_FORMATS = ("PNG", "BMP")  # lossless, and read as stored: JPEG blurs class indices, GIF is a palette
# Channels a file holds, by Pillow's mode; a palette image decodes to RGB.
_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "P": 3, "RGB": 3, "YCbCr": 3, "PA": 4, "RGBA": 4,
             "CMYK": 4}
# How a complete file of the format ends (PNG: the IEND chunk and its CRC; JPEG: the end-of-image marker).
_ENDINGS = {"PNG": b"IEND\xaeB`\x82", "JPEG": b"\xff\xd9"}
STATS_SAMPLE = 2000  # images the normalisation statistics are taken from; a seeded sample when there are more


def image_problem(path: str, channels: int) -> str | None:
    """Why the file at ``path`` cannot be an image of ``channels`` channels; None when it can."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of huge images; the size is not its concern here
            with Image.open(path) as image:
                kind, mode = image.format, image.mode
    except FileNotFoundError:
        return "the file does not exist"
    except UnidentifiedImageError:
        return "the file is not an image (or not one of the formats PNG, JPEG, BMP, GIF)"
    except OSError as exc:
        return f"the file cannot be read ({exc.strerror or exc})"
    if kind not in FORMATS:
        return f"the file is a {kind} image; the formats read are {', '.join(FORMATS)}"
    found = _CHANNELS.get(mode)
    if found is not None and found != channels:
        return f"the image has {found} channel(s) (mode {mode}), but image_shape declares {channels}"
    ending = _ENDINGS.get(kind)
    if ending and not _tail(path).rstrip(b"\0").endswith(ending):
        return f"the {kind} file is truncated (it does not end as a complete {kind} file does)"
    return None


def mask_problem(path: str) -> str | None:
    """Why the file at ``path`` cannot be a mask (one channel of class indices, PNG or BMP); None when it can."""
    from PIL import Image

    if problem := image_problem(path, 1):
        if "channel" not in problem:
            return problem
    with Image.open(path) as image:
        kind, mode = image.format, image.mode
    if kind not in MASK_FORMATS:
        return f"a mask must be a {' or '.join(MASK_FORMATS)} file (lossless, values as stored), but this is {kind}"
    if mode not in ("1", "L"):
        hint = " (a palette image: save its indices as a grayscale PNG)" if mode in ("P", "PA") else ""
        return f"a mask must have one 8-bit channel of class indices (mode L or 1), but this is mode {mode}{hint}"
    return None


def mask_value_problem(masks: MaskFiles, *, sample: int = STATS_SAMPLE, seed: int = 0) -> tuple[int, str] | None:
    """The table row and the reason when a mask of a seeded sample of ``masks`` holds a value that is not a class
    index below ``num_classes`` (a one-class mask may hold any value: above 0 is the object); None when all
    hold class indices. Masks outside the sample are checked as training reads them."""
    if masks.num_classes == 1:
        return None
    chosen = np.arange(len(masks))
    if len(chosen) > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(len(chosen), sample, replace=False))
    for i in chosen:
        highest = int(read_mask(masks.paths[i], masks.image_hw).max())
        if highest >= masks.num_classes:
            return int(masks.rows[i]), (f"the mask holds the value {highest}, but its values must be class indices "
                                        f"below the task's {masks.num_classes} classes: {masks.paths[i]}")
    return None


def _tail(path: str, size: int = 64) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - size))
        return f.read()


def image_stats(files: ImageFiles, *, sample: int = STATS_SAMPLE, seed: int = 0) -> tuple[tuple[float, ...],
                                                                                         tuple[float, ...]]:
    """Per-channel mean and variance of the pixels of ``files`` (0-255 units), read one image at a time from a
    seeded sample of at most ``sample`` files, so memory does not grow with the data set."""
    from mtl_models.data.split import MIN_VARIANCE

    channels = files.image_shape[2]
    chosen = files.paths
    if len(chosen) > sample:
        chosen = chosen[np.sort(np.random.default_rng(seed).choice(len(chosen), sample, replace=False))]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    rows = dict(zip(files.paths, files.rows))
    for path in chosen:
        try:
            pixels = read_pixels(path, files.image_shape).reshape(-1, channels)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for damaged pixel data
            raise DataError(f"Image file {path} (row {rows[path]} of the label table) cannot be decoded, found "
                            f"while taking the normalisation statistics: {exc}.") from None
        total += pixels.mean(axis=0)
        squares += (pixels**2).mean(axis=0)
    mean = total / len(chosen)
    variance = np.maximum(squares / len(chosen) - mean**2, MIN_VARIANCE)
    return tuple(float(m) for m in mean), tuple(float(v) for v in variance)
