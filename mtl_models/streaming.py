"""Feeding a data set to Keras: arrays as they are, images and masks on disk through a ``tf.data`` pipeline.

``feed(data, batch_size, shuffle=...)`` gives the keyword arguments of ``fit``/``evaluate``/``predict``
for either kind, so a training loop is written once. The pipeline reads and decodes files in parallel,
keeps the decoded images and masks (uint8) in a cache when asked (in memory when they fit in
:data:`MEMORY_CACHE_BYTES`, else in a local folder removed with the pipeline), shuffles file names (and,
after a cache, images within a window of :data:`SHUFFLE_BYTES`), batches, converts to float32 and
prefetches. A trial's memory then grows with the cache, not with the number of images.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from math import prod
from typing import Any

from mtl_models.data.dataset import Dataset
from mtl_models.data.image_files import ImageFiles, MaskFiles

__all__ = ["MEMORY_CACHE_BYTES", "SHUFFLE_BYTES", "decode_failure", "decode_image", "decode_mask", "feed",
           "is_streamed", "pipeline", "validation"]

MEMORY_CACHE_BYTES = 1 << 30  # decoded pixels (uint8) a trial may keep in memory under cache: auto
SHUFFLE_BYTES = 32 << 20  # decoded images (uint8) shuffled together once they come from a cache
CACHE_DIR_ENV = "MTL_IMAGE_CACHE_DIR"  # where cache: disk writes (default: the system's temporary folder)

_pipelines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # data set -> {(batch, shuffle, ...): pipeline}


def is_streamed(data: Dataset) -> bool:
    """True when an input or a target of ``data`` is read from files."""
    return any(isinstance(a, (ImageFiles, MaskFiles)) for a in (*data.inputs.values(), *data.targets.values()))


def feed(data: Dataset, batch_size: int, *, shuffle: bool = False, seed: int | None = None,
         targets: bool = True, tasks: tuple[str, ...] | None = None, per_epoch: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``model.fit``/``evaluate``/``predict``: ``x``, ``y``, ``batch_size`` for arrays;
    ``x`` (a ``tf.data.Dataset``) for images on disk. ``tasks`` limits the targets to those tasks.

    ``per_epoch``: the caller calls ``fit`` once an epoch (a search trial). Arrays then come as a pipeline too,
    built once for the data set, and the pipeline runs without tf.data's autotuning: its model thread is
    stopped as each ``fit`` call ends, which held the call up ~1.1 s in one epoch of five (1.4-s epochs of
    shapes' fixed model, one thread; bench/throughput.py), while one ``fit`` over many epochs pays it once.
    The pipeline holds a copy of the arrays (Keras makes one for the length of each ``fit`` call)."""
    names = tuple(data.targets) if tasks is None else tasks
    if not is_streamed(data) and not per_epoch:
        arguments: dict[str, Any] = {"x": dict(data.inputs), "batch_size": batch_size}
        if targets:
            arguments["y"] = {k: data.targets[k] for k in names}
        return arguments
    key = (batch_size, shuffle, seed, targets, names, per_epoch)
    built = _pipelines.setdefault(data, {})
    if key not in built:
        if per_epoch:  # one such pipeline per data set: a trial worker's next trial may batch differently
            for stale in [k for k in built if k[-1]]:  # a key ends with its per_epoch
                del built[stale]
        labels = {k: data.targets[k] for k in names} if targets else None
        built[key] = pipeline(data.inputs, labels, batch_size, shuffle=shuffle, seed=seed, owner=data,
                              autotune=not per_epoch)
    return {"x": built[key]}


def validation(data: Dataset, batch_size: int, *, tasks: tuple[str, ...] | None = None) -> Any:
    """``validation_data`` for ``fit``: an ``(x, y)`` pair of arrays, or a pipeline."""
    arguments = feed(data, batch_size, tasks=tasks)
    return arguments["x"] if "y" not in arguments else (arguments["x"], arguments["y"])


def decode_image(contents, image_shape: tuple[int, int, int]):
    """The pixels of one encoded image (PNG, JPEG, BMP or GIF bytes, a scalar string tensor): uint8
    ``(H, W, C)``, resized (bilinear, with antialiasing) when the file has another height or width. The one
    decoding rule: training, prediction and the exported model's encoded-bytes signature all use it, so a
    served JPEG is seen as training saw it."""
    import tensorflow as tf

    height, width, channels = image_shape
    image = tf.io.decode_image(contents, channels=channels, expand_animations=False, dtype=tf.uint8)
    size = tf.shape(image)[:2]
    resized = tf.cond(
        tf.reduce_all(tf.equal(size, [height, width])),
        lambda: image,
        lambda: tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, (height, width), antialias=True)), 0, 255),
                        tf.uint8),
    )
    return tf.ensure_shape(resized, image_shape)


def decode_mask(contents, image_hw: tuple[int, int], num_classes: int):
    """The values of one encoded mask (PNG or BMP bytes): uint8 ``(H, W, 1)``, resized by nearest neighbour when
    the file has another height or width; an ``InvalidArgumentError`` when a value of a mask of several
    classes is not a class index."""
    import tensorflow as tf

    mask = tf.io.decode_image(contents, channels=1, expand_animations=False, dtype=tf.uint8)
    size = tf.shape(mask)[:2]
    mask = tf.cond(tf.reduce_all(tf.equal(size, image_hw)), lambda: mask,
                   lambda: tf.cast(tf.image.resize(mask, image_hw, method="nearest"), tf.uint8))
    if num_classes > 1:
        tf.debugging.assert_less(tf.reduce_max(mask), tf.cast(num_classes, tf.uint8),
                                 message=f"a mask value is not a class index below {num_classes}")
    return tf.ensure_shape(mask, (*image_hw, 1))


def _mask_target(masks, num_classes: int):
    """A batch of decoded masks as the target the task's loss takes (dataset.py's conventions)."""
    import tensorflow as tf

    return tf.cast(masks > 0, tf.float32) if num_classes == 1 else tf.cast(tf.squeeze(masks, -1), tf.int32)


def pipeline(inputs: Mapping[str, Any], labels: Mapping[str, Any] | None, batch_size: int, *, shuffle: bool = False,
             seed: int | None = None, owner: object = None, autotune: bool = True):
    """A ``tf.data.Dataset`` of batches of ``inputs`` (arrays or :class:`ImageFiles`) and, when given, ``labels``.
    A disk cache lives as long as ``owner`` (required for one). Without ``autotune``, files are decoded on as
    many threads as the process may use and one batch is prefetched."""
    import tensorflow as tf

    images = {k: a for k, a in inputs.items() if isinstance(a, ImageFiles)}
    masks = {k: a for k, a in (labels or {}).items() if isinstance(a, MaskFiles)}
    slices = {k: (a.paths if k in images else a) for k, a in inputs.items()}
    label_slices = {k: (a.paths if k in masks else a) for k, a in (labels or {}).items()}
    ds = tf.data.Dataset.from_tensor_slices((slices, label_slices) if labels is not None else slices)
    cache = _cache_target(owner, images, masks) if images or masks else None
    length = len(next(iter(inputs.values())))
    if shuffle:  # names shuffle for free: without a cache every epoch reads every file in a new order
        ds = ds.shuffle(length, seed=seed, reshuffle_each_iteration=True)

    parallel = tf.data.AUTOTUNE if autotune else max(1, tf.config.threading.get_intra_op_parallelism_threads()
                                                       or len(os.sched_getaffinity(0)))

    def decode(x: dict) -> dict:
        return {k: (decode_image(tf.io.read_file(v), images[k].image_shape) if k in images else v)
                for k, v in x.items()}

    def decode_masks(y: dict) -> dict:
        return {k: (decode_mask(tf.io.read_file(v), masks[k].image_hw, masks[k].num_classes) if k in masks else v)
                for k, v in y.items()}

    if images or masks:
        ds = ds.map((lambda x, y: (decode(x), decode_masks(y))) if labels is not None else decode,
                    num_parallel_calls=parallel, deterministic=not shuffle)
    if cache is not None:
        ds = ds.cache(cache)  # holds the first epoch's order, a random one; later epochs reshuffle within a window
        if shuffle:
            row_bytes = sum(prod(a.shape[1:]) for a in (*images.values(), *masks.values()))
            window = max(256, SHUFFLE_BYTES // row_bytes)  # bytes, not images: the same memory at any size
            ds = ds.shuffle(min(length, window), seed=seed, reshuffle_each_iteration=True)

    def to_float(x: dict) -> dict:
        return {k: (tf.cast(v, tf.float32) if k in images else v) for k, v in x.items()}

    def to_targets(y: dict) -> dict:
        return {k: (_mask_target(v, masks[k].num_classes) if k in masks else v) for k, v in y.items()}

    ds = ds.batch(batch_size)
    if images or masks:
        ds = ds.map((lambda x, y: (to_float(x), to_targets(y))) if labels is not None else to_float)
    if autotune:
        return ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(1).with_options(options)


def _cache_target(owner: object, images: dict[str, ImageFiles], masks: dict[str, MaskFiles]) -> str | None:
    """``""`` (memory), a file prefix in a fresh local folder (disk), or None (no cache). The images' ``cache``
    decides (masks come only with images)."""
    choice = next(iter(images.values())).cache if images else "auto"
    if choice == "auto":
        stored = sum(a.nbytes for a in (*images.values(), *masks.values()))
        choice = "memory" if stored <= MEMORY_CACHE_BYTES else "disk"
    if choice == "none":
        return None
    if choice == "memory":
        return ""
    folder = tempfile.mkdtemp(prefix="mtl-image-cache-", dir=os.environ.get(CACHE_DIR_ENV) or None)
    weakref.finalize(owner, shutil.rmtree, folder, True)
    return os.path.join(folder, "images")


def decode_failure(data: Dataset) -> str | None:
    """Which file of ``data`` cannot be decoded, and why, found by decoding each in turn; None if all can. For
    the message of a trial whose pipeline failed: the pipeline's own error does not name the file."""
    import tensorflow as tf

    columns = [(a, "image", lambda path, a=a: decode_image(tf.io.read_file(path), a.image_shape))
               for a in data.inputs.values() if isinstance(a, ImageFiles)]
    columns += [(a, "mask", lambda path, a=a: decode_mask(tf.io.read_file(path), a.image_hw, a.num_classes))
                for a in data.targets.values() if isinstance(a, MaskFiles)]
    for files, kind, read in columns:
        for path, row in zip(files.paths, files.rows):
            try:
                read(path)
            except (tf.errors.OpError, ValueError) as exc:
                message = getattr(exc, "message", str(exc)).strip().splitlines()[0]
                reason = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", message).strip()  # TensorFlow's wrapping
                return f"{kind} file {path} (row {row} of the label table) cannot be decoded: {reason}"
    return None
