"""Predictions of an exported model for a folder of images, written as a CSV with class names.

``predict_folder(model_dir, folder, out)`` reads every image file under ``folder`` (PNG, JPEG, BMP, GIF; sorted
by path), decodes and resizes it as training did (:func:`mtl_models.streaming.decode_image`), and writes
one row per file: its path relative to ``folder``, then per task the predicted class (by name where the data
named its classes) and its probability, the labels of a multilabel task (joined by ``;``), or the values of a
regression.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from search.errors import ConfigError

__all__ = ["IMAGE_SUFFIXES", "predict_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def predict_folder(model, card: Mapping[str, Any], folder: Path, out: Path, *,
                   batch_size: int = 256) -> dict[str, np.ndarray]:
    """Write ``out`` (CSV) for the images under ``folder``; return its columns."""
    import pandas as pd

    from mtl_models.data.image_check import image_problem
    from mtl_models.data.image_files import ImageFiles
    from mtl_models.streaming import pipeline

    inputs = card["inputs"]
    if len(inputs) != 1 or len(inputs[0]["shape"]) != 3:
        raise ConfigError("inputs", "a folder of images feeds a model whose one input is an image; this model takes "
                          f"{[i['name'] for i in inputs]}: pass an .npz", str(folder))
    if out.suffix.lower() != ".csv":
        raise ConfigError("--out", "must be a .csv file for predictions of a folder of images", str(out))
    masks = [t["name"] for t in card["tasks"] if t["kind"] == "segmentation"]
    if masks:
        raise ConfigError("inputs", f"a CSV cannot hold the masks of task(s) {masks}: pass an .npz", str(folder))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError("inputs", f"holds no image files ({', '.join(IMAGE_SUFFIXES)})", str(folder))
    shape = tuple(inputs[0]["shape"])
    for path in files:
        if problem := image_problem(str(path), shape[2]):
            raise ConfigError("inputs", f"{problem}: {path}", str(folder))
    images = ImageFiles(np.asarray([str(p) for p in files]), shape, np.arange(1, len(files) + 1), cache="none")
    raw = model.predict(pipeline({inputs[0]["name"]: images}, None, batch_size), verbose=0)
    columns: dict[str, Any] = {"file": [os.path.relpath(p, folder) for p in files]}
    for task in card["tasks"]:
        columns.update(_task_columns(task, np.asarray(raw[task["name"]])))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pd.DataFrame(columns).to_csv(tmp, index=False)
    os.replace(tmp, out)
    return {k: np.asarray(v) for k, v in columns.items()}


def _task_columns(task: Mapping[str, Any], y: np.ndarray) -> dict[str, Any]:
    name, kind, names = task["name"], task["kind"], task.get("class_names") or []
    if kind == "classification":
        index = y.argmax(-1)
        return {name: [names[i] for i in index] if names else index, f"{name}_probability": y.max(-1)}
    if kind == "binary":
        positive = (y[:, 0] >= 0.5).astype(int)
        return {name: [names[i] for i in positive] if names else positive, f"{name}_probability": y[:, 0]}
    if kind == "multilabel":
        labels = names or list(range(y.shape[1]))
        return {f"{name}_labels": [";".join(str(labels[j]) for j in np.flatnonzero(row >= 0.5)) for row in y]}
    return {name: y[:, 0]} if y.shape[1] == 1 else {f"{name}_{i}": y[:, i] for i in range(y.shape[1])}
