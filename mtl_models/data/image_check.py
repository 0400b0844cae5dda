"""What can be known about image files before training, without TensorFlow (the search's driver never imports
it): each file's format, size and channels from its header, whether it ends as its format must, and the
training split's pixel statistics.

The checks read a file's header and its last bytes, not its pixels: about 0.1 ms a file (bench/images.py
measures it). A file damaged in its middle passes them; it fails the trial that reads it, with its name.
"""

from __future__ import annotations

import warnings

import numpy as np

from mtl_models.data.image_files import ImageFiles, read_pixels
from mtl_models.errors import DataError

__all__ = ["FORMATS", "STATS_SAMPLE", "image_problem", "image_stats"]

FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # what tf.io.decode_image reads
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
