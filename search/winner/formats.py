"""The formats a model directory can hold besides ``model.keras``: what each is called, where it goes, how it is
written, and what it needs.

* ``keras``: ``model.keras``, always written (``predict``, ``evaluate`` and ``finetune`` read it).
* ``savedmodel``: a TensorFlow SavedModel in TensorFlow Serving's layout, ``serving/<name>/1/``: signature
  ``serving_default`` takes the raw inputs by name and returns one output per task, named by the task; a
  model with one image input also has ``serving_images`` (encoded PNG/JPEG/BMP/GIF bytes).
* ``onnx``: ``model.onnx``, by Keras' own ``model.export(format="onnx")`` (tf2onnx); inputs and outputs
  named as the model's.
* ``litert``: ``model.tflite``, by Keras' own ``model.export(format="litert")`` (TensorFlow's converter),
  signature ``serving_default``; LiteRT's own kernels only where the network allows, else with TensorFlow
  ops (the Flex delegate), which the card says.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from pathlib import Path
from typing import Iterator, Mapping

from search.errors import ConfigError

__all__ = ["DEFAULT_FORMATS", "FORMATS", "check_formats", "format_files", "parse_formats", "serving_dir",
           "write_litert", "write_onnx", "write_saved_model"]

FORMATS = ("keras", "savedmodel", "onnx", "litert")
DEFAULT_FORMATS = ("keras", "savedmodel")
IMAGES_SIGNATURE = "serving_images"  # the SavedModel's signature on encoded images (its endpoint: `serve_images`)
ONNX_FILE = "model.onnx"
LITERT_FILE = "model.tflite"
SERVING_DIR = "serving"
SERVING_VERSION = "1"


def parse_formats(text: str) -> tuple[str, ...]:
    """``--format keras,onnx`` as a tuple in :data:`FORMATS` order, ``keras`` always first."""
    asked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [f for f in asked if f not in FORMATS]
    if unknown or not asked:
        raise ConfigError("--format", f"must be a comma-separated list of {', '.join(FORMATS)}", text)
    return tuple(f for f in FORMATS if f in asked or f == "keras")


def check_formats(formats: tuple[str, ...]) -> None:
    """Refuse, before anything is written, a format the installed packages cannot write."""
    if "onnx" in formats:
        missing = [name for name in ("tf2onnx", "onnx") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError("--format", f"onnx needs the packages {' and '.join(missing)} (Keras exports ONNX "
                              "through tf2onnx); install them with: python -m pip install 'mtl-search[onnx]'", "onnx")
    if "litert" in formats:
        import keras

        if _version(keras.__version__) < (3, 12):
            raise ConfigError("--format", f"litert needs Keras >= 3.12 (model.export(format='litert')); this one is "
                              f"Keras {keras.__version__}: python -m pip install 'keras>=3.12'", "litert")


def serving_dir(name: str) -> str:
    """The SavedModel's place in a model directory: TensorFlow Serving's ``<base>/<model name>/<version>``."""
    return f"{SERVING_DIR}/{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}/{SERVING_VERSION}"


def format_files(formats: tuple[str, ...], name: str) -> dict[str, str]:
    """Each written format's file or directory, relative to the model directory."""
    files = {"keras": "model.keras", "savedmodel": serving_dir(name), "onnx": ONNX_FILE, "litert": LITERT_FILE}
    return {f: files[f] for f in formats}


def write_saved_model(model, path: Path, pixel_max: Mapping[str, float] | None = None) -> list[str]:
    """Write the SavedModel of ``model`` (a functional model on a dict of named inputs) to ``path``; returns
    its signatures' names, which the card records.

    Endpoint ``serve`` (also signature ``serving_default``, as ``model.export`` names it) takes the raw
    inputs and returns a dict keyed by task. A model with exactly one image input also gets
    ``serve_images`` (signature :data:`IMAGES_SIGNATURE`): the same inputs, but the image as a 1-D string
    tensor of encoded files (PNG, JPEG, BMP or GIF), each decoded and resized by
    :func:`mtl_models.streaming.decode_image`, the rule training used, so a served JPEG is seen as training
    saw it; its bytes (0-255) are scaled to the input's ``pixel_max`` (1.0 for a model trained on images in
    [0, 1]; default 255.0, as the pixels of image files are).
    """
    import keras
    import tensorflow as tf

    from mtl_models.streaming import decode_image

    raw = {name: tf.TensorSpec(x.shape, x.dtype, name=name) for name, x in model.input.items()}
    archive = keras.export.ExportArchive()
    serve = archive.track_and_add_endpoint("serve", model, [raw])  # the first endpoint is serving_default
    names = ["serve", "serving_default"]  # every endpoint is a signature of its own name
    images = [name for name, spec in raw.items() if spec.shape.rank == 4]
    if len(images) == 1:
        image, shape = images[0], tuple(raw[images[0]].shape[1:])
        scale = (pixel_max or {}).get(image, 255.0) / 255.0

        def serve_images(inputs):
            pixels = tf.map_fn(lambda contents: decode_image(contents, shape), inputs[image],
                               fn_output_signature=tf.TensorSpec(shape, tf.uint8))
            values = tf.cast(pixels, raw[image].dtype)
            return serve({**inputs, image: values * scale if scale != 1.0 else values})

        encoded = {**raw, image: tf.TensorSpec((None,), tf.string, name=image)}
        endpoint = archive.add_endpoint("serve_images", serve_images, [encoded])
        archive.add_endpoint(IMAGES_SIGNATURE, endpoint)
        names += ["serve_images", IMAGES_SIGNATURE]
    archive.write_out(str(path), verbose=False)
    return names


def write_onnx(model, path: Path) -> None:
    """``model.export(path, format="onnx")``, checked: its only graph inputs are the model's own."""
    import onnx

    with _constants_as_variables(model), _quiet_tf2onnx():
        model.export(str(path), format="onnx", verbose=False)
    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name for i in graph.input} - {i.name for i in graph.initializer}
    if inputs != set(model.input):
        path.unlink()
        raise RuntimeError(f"the ONNX export asks for inputs {sorted(inputs)} besides the model's {sorted(model.input)}"
                           "; tf2onnx left a constant of the network as a graph input")


def write_litert(model, path: Path) -> dict[str, object]:
    """``model.export(path, format="litert")`` with LiteRT's own kernels; where the network needs TensorFlow
    ops, Keras' default (LiteRT kernels and TensorFlow ops, run by the Flex delegate). Returns what the card
    records: the operator sets and the TensorFlow ops it needs."""
    import tensorflow as tf

    from search.engines.worker import stderr_silenced

    try:  # the converter's C++ lines (graph warnings, MLIR diagnostics) would reach the terminal
        with stderr_silenced():
            model.export(str(path), format="litert", verbose=False,
                         target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
        return {"ops": "litert builtins", "tensorflow_ops": []}
    except Exception as exc:  # tf's ConverterError: the message lists the ops LiteRT has no kernel for
        needed = re.search(r"TF Select ops: ([^\n]+)", str(exc))
        if needed is None:
            raise
    with stderr_silenced():
        model.export(str(path), format="litert", verbose=False)
    return {"ops": "litert builtins + tensorflow (Flex delegate)",
            "tensorflow_ops": [op.strip() for op in needed.group(1).split(",")]}


@contextlib.contextmanager
def _constants_as_variables(model) -> Iterator[None]:
    """Keras' Normalization layers hold their mean and variance as constant tensors; tf2onnx
    (``convert.from_function``) makes every non-variable tensor a function captures a graph input, so the
    exported ONNX would ask for the mean and variance at inference. As variables they are frozen into the graph
    instead; the layers get their tensors back afterwards."""
    import keras
    import tensorflow as tf

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Normalization)]
    saved = [(layer, layer.mean, layer.variance) for layer in layers]
    try:
        for layer, mean, variance in saved:  # past Keras' attribute tracking: these are not new weights
            object.__setattr__(layer, "mean", tf.Variable(mean, trainable=False))
            object.__setattr__(layer, "variance", tf.Variable(variance, trainable=False))
        yield
    finally:
        for layer, mean, variance in saved:
            object.__setattr__(layer, "mean", mean)
            object.__setattr__(layer, "variance", variance)


@contextlib.contextmanager
def _quiet_tf2onnx() -> Iterator[None]:
    """tf2onnx logs each step at INFO and warns about NumPy 2 (Keras patches that): kept out of the terminal."""
    import logging
    import warnings

    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])
