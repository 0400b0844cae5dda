"""Per-task predictions of an exported model for the inputs in an NPZ file.

The NPZ must hold one array per model input, named as the input (an NPZ with a single
array is taken as the input of a single-input model, whatever its name), with the shapes
the model card lists and raw values. It is read with ``allow_pickle=False``. Output, per
task: ``<task>_class`` and ``<task>_probability`` (classification and binary; plus
``<task>_probabilities``), ``<task>_labels`` and ``<task>_probabilities`` (multilabel),
``<task>`` (regression values), ``<task>_mask`` and ``<task>_probabilities`` (segmentation).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from search.errors import ConfigError
from search.model_dir import load_model, read_card

__all__ = ["predict", "read_inputs", "decode"]


def read_inputs(path: Path, card: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The model's inputs from an NPZ file, checked against the card (ConfigError naming the array)."""
    if not path.is_file():
        raise ConfigError("inputs", "must be an existing .npz file", str(path))
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            arrays = {name: npz[name] for name in names}
    except ValueError as exc:
        raise ConfigError("inputs", f"holds an array that cannot be read without pickle ({exc}); save plain numeric "
                          "arrays with numpy.savez", str(path)) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError("inputs", f"is not a readable .npz file ({exc})", str(path)) from None
    wanted = card["inputs"]
    if len(wanted) == 1 and len(arrays) == 1 and wanted[0]["name"] not in arrays:
        arrays = {wanted[0]["name"]: next(iter(arrays.values()))}
    out, length = {}, None
    for spec in wanted:
        name, shape = spec["name"], tuple(spec["shape"])
        if name not in arrays:
            raise ConfigError(f"inputs[{name}]", f"is missing; the model takes arrays {[w['name'] for w in wanted]} "
                              f"and the file has {names}", str(path))
        array = arrays[name]
        if array.dtype.kind not in "biuf":
            raise ConfigError(f"inputs[{name}]", "must be numeric", str(array.dtype))
        if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
            raise ConfigError(f"inputs[{name}]", f"must have shape (N, {', '.join(map(str, shape))})",
                              tuple(array.shape))
        if not np.isfinite(array).all():
            raise ConfigError(f"inputs[{name}]", "must hold finite values (no NaN or inf)", "non-finite values")
        if length is not None and len(array) != length:
            raise ConfigError(f"inputs[{name}]", f"must have as many rows as the other inputs ({length})", len(array))
        length = len(array)
        out[name] = array.astype(np.float32, copy=False)
    if not length:
        raise ConfigError("inputs", "holds no samples (N = 0)", str(path))
    return out


def decode(raw: Mapping[str, np.ndarray], tasks: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Turn the model's raw outputs into per-task predictions (see the module docstring)."""
    out = {}
    for task in tasks:
        name, kind, y = task["name"], task["kind"], np.asarray(raw[task["name"]])
        if kind == "classification":
            out[f"{name}_class"] = y.argmax(-1).astype(np.int32)
            out[f"{name}_probability"] = y.max(-1)
            out[f"{name}_probabilities"] = y
        elif kind == "binary":
            out[f"{name}_class"] = (y[:, 0] >= 0.5).astype(np.int32)
            out[f"{name}_probability"] = y[:, 0]
        elif kind == "multilabel":
            out[f"{name}_labels"] = (y >= 0.5).astype(np.int32)
            out[f"{name}_probabilities"] = y
        elif kind == "regression":
            out[name] = y
        else:  # segmentation
            out[f"{name}_mask"] = ((y[..., 0] >= 0.5) if y.shape[-1] == 1 else y.argmax(-1)).astype(np.int32)
            out[f"{name}_probabilities"] = y
    return out


def predict(model_dir: str | Path, inputs: str | Path, out: str | Path, *, force: bool = False,
            batch_size: int = 256) -> dict[str, np.ndarray]:
    """Predict every task for the inputs in ``inputs`` (NPZ) and write them to ``out`` (NPZ)."""
    model_dir, inputs, out = Path(model_dir), Path(inputs), Path(out)
    card = read_card(model_dir)
    if out.exists() and not force:
        raise ConfigError("--out", "already exists; choose another file or pass --force to replace it", str(out))
    arrays = read_inputs(inputs, card)
    raw = load_model(model_dir).predict(arrays, batch_size=batch_size, verbose=0)
    predictions = decode(raw, card["tasks"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    np.savez_compressed(tmp, **predictions)
    os.replace(tmp, out)
    return predictions
