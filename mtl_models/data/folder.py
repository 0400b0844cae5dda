"""Writing a data set as an image folder with a label table: the layout ``data.dataset: images`` reads.

``write_image_folder(data, out)`` writes ``out/images/<row>.png`` and ``out/labels.csv`` (a ``file`` column,
then one column per task: class names where the task names its classes, else indices; one column per
output of a regression; a segmentation task's mask file, ``out/masks/<task>/<row>.png``; one column per
feature of a vector input) and returns the ``data.options`` that read it back. ``digits_with_centre`` is the
real-MNIST example: the digit, the colour it is painted, and the ink's centre (a position target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mtl_models.data.dataset import Dataset
from mtl_models.data.digits import load_digits
from mtl_models.errors import DataError
from mtl_models.spec import TaskSpec

__all__ = ["digits_with_centre", "write_image_folder"]

TABLE = "labels.csv"


def write_image_folder(data: Dataset, out: str | Path, *, image_input: str = "image") -> dict[str, Any]:
    """Write ``data`` (images in [0, 1] or 0-255) under the empty or new folder ``out``; return the
    ``data.options`` of an experiment that reads it (``path`` relative to ``out``'s parent)."""
    import pandas as pd
    from PIL import Image

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"The folder {str(out)!r} already exists and is not empty; choose a new one, so that "
                        "nothing in it is overwritten.")
    if image_input not in data.inputs or np.asarray(data.inputs[image_input]).ndim != 4:
        raise DataError(f"Data set {data.name!r} has no image input {image_input!r}.")
    others = [k for k, a in data.inputs.items() if k != image_input and np.asarray(a).ndim != 2]
    if others:
        raise DataError(f"Data set {data.name!r}: a folder holds one image input; {others} cannot be written.")
    images = np.asarray(data.inputs[image_input], dtype=np.float32)
    scale = 255.0 if images.max() <= 1.0 else 1.0
    pixels = np.clip(np.round(images * scale), 0, 255).astype(np.uint8)
    (out / "images").mkdir(parents=True)
    width = len(str(len(pixels) - 1))
    columns: dict[str, Any] = {"file": [f"images/{i:0{width}d}.png" for i in range(len(pixels))]}
    for path, image in zip(columns["file"], pixels):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out / path)
    vectors = {}
    for name, array in data.inputs.items():
        if name != image_input:
            vectors[name] = [f"{name}_{i}" for i in range(array.shape[1])]
            columns.update({column: array[:, i] for i, column in enumerate(vectors[name])})
    declared = []
    for task in data.tasks:
        if task.kind == "segmentation":
            declared.append(_masks(task, data.targets[task.name], out, width, columns))
        else:
            declared.append(_columns(task, data.targets[task.name], columns))
    pd.DataFrame(columns).to_csv(out / TABLE, index=False)
    options = {"path": f"{out.name}/{TABLE}", "image_shape": list(images.shape[1:]), "tasks": declared}
    return {**options, "inputs": vectors} if vectors else options


def _masks(task: TaskSpec, target: np.ndarray, out: Path, width: int, columns: dict[str, Any]) -> dict[str, Any]:
    """Write ``task``'s masks as grayscale PNGs (one class: 0 and 255, to be seen; else class indices) and add
    their column; return the task's declaration."""
    from PIL import Image

    masks = np.asarray(target)
    values = (masks[..., 0] * 255 if task.num_classes == 1 else masks).astype(np.uint8)
    (out / "masks" / task.name).mkdir(parents=True)
    columns[task.name] = [f"masks/{task.name}/{i:0{width}d}.png" for i in range(len(values))]
    for path, mask in zip(columns[task.name], values):
        Image.fromarray(mask).save(out / path)
    return {"name": task.name, "kind": task.kind, "classes": task.num_classes}


def _columns(task: TaskSpec, target: np.ndarray, columns: dict[str, Any]) -> dict[str, Any]:
    """Add ``task``'s label columns; return its declaration as the images data set reads it."""
    declared: dict[str, Any] = {"name": task.name, "kind": task.kind}
    if task.kind in ("classification", "binary"):
        labels = np.asarray(target).reshape(-1).astype(int)
        if task.class_names:
            columns[task.name] = [task.class_names[i] for i in labels]
            declared["classes"] = list(task.class_names)
        else:
            columns[task.name] = labels
            if task.kind == "classification":
                declared["classes"] = task.num_classes
    elif task.kind == "regression" and task.output_dim == 1:
        columns[task.name] = np.asarray(target)[:, 0]
    elif task.kind == "regression":
        names = [f"{task.name}_{i}" for i in range(task.output_dim)]
        for i, name in enumerate(names):
            columns[name] = np.asarray(target)[:, i]
        declared["columns"] = names
    else:
        raise DataError(f"Task {task.name!r}: a {task.kind} task cannot be written to a label table yet.")
    if task.kind == "regression":
        declared.update(activation=task.activation, loss=task.loss, metrics=list(task.metrics))
    if task.spatial:
        declared["spatial"] = True
    return declared


def digits_with_centre(*, n_samples: int = 5000, seed: int = 0) -> Dataset:
    """The coloured MNIST digits (:func:`~mtl_models.data.digits.load_digits`), 28x28 RGB, with the colour
    named and a third task: ``centre``, the ink's centre of mass as (x, y) in [0, 1] of the image."""
    digits = load_digits(n_samples=n_samples, seed=seed)
    image = digits.inputs["image"]
    ink = image.max(axis=-1)
    height, width = ink.shape[1:]
    total = ink.sum(axis=(1, 2))
    x = (ink.sum(axis=1) * (np.arange(width) + 0.5)).sum(axis=1) / total / width
    y = (ink.sum(axis=2) * (np.arange(height) + 0.5)).sum(axis=1) / total / height
    centre = TaskSpec(name="centre", kind="regression", output_dim=2, activation="sigmoid", loss="mae", spatial=True)
    return Dataset(name="digits", inputs={"image": image},
                   targets={**digits.targets, "centre": np.stack([x, y], axis=1).astype(np.float32)},
                   tasks=(*digits.tasks, centre))
