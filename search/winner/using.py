"""Using an exported model: predict every task, evaluate it again on its test split, fine-tune one head.

``predict(model_dir, inputs, out)``: the NPZ must hold one array per model input, named as the
input (an NPZ with a single array is taken as the input of a single-input model, whatever its
name), with the shapes the model card lists and raw values. It is read with ``allow_pickle=False``. Output, per
task: ``<task>_class`` and ``<task>_probability`` (classification and binary; plus
``<task>_probabilities``), ``<task>_labels`` and ``<task>_probabilities`` (multilabel),
``<task>`` (regression values), ``<task>_mask`` and ``<task>_probabilities`` (segmentation).

``evaluate(model_dir)`` rebuilds the test split from the card's data set and split seeds and
recomputes the metrics; ``finetune(model_dir, task)`` is network (e)'s step: freeze the backbone,
train one head, write a new model directory.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from mtl_models.data.npz import array_size_problem
from mtl_models.streaming import feed, validation
from search.errors import ConfigError
from search.experiment.config import load_experiment
from search.experiment.metrics import metric_key, mode
from search.experiment.prepared import Prepared, prepare
from search.winner.evaluation import split_metrics
from search.winner.folder_predictions import predict_folder
from search.winner.formats import DEFAULT_FORMATS
from search.winner.model_dir import EXPERIMENT, check_out_dir, load_model, read_card, software_versions, write_model_dir

__all__ = ["decode", "evaluate", "finetune", "predict", "read_inputs"]


def read_inputs(path: Path, card: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The model's inputs from an NPZ file, checked against the card (ConfigError naming the array)."""
    if not path.is_file():
        raise ConfigError("inputs", "must be an existing .npz file (or a folder of images)", str(path))
    wanted = card["inputs"]
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if len(wanted) == 1 and len(names) == 1 and wanted[0]["name"] not in names:
                stored = {wanted[0]["name"]: names[0]}  # one array under another name: the model's one input
            else:
                stored = {w["name"]: w["name"] for w in wanted if w["name"] in names}  # only what the model takes
            for name, key in stored.items():
                if problem := array_size_problem(npz, key):
                    raise ConfigError(f"inputs[{name}]", problem, str(path))
            arrays = {name: npz[key] for name, key in stored.items()}
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError("inputs", f"holds an array that cannot be read without pickle ({exc}); save plain numeric "
                          "arrays with numpy.savez", str(path)) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError("inputs", f"is not a readable .npz file ({exc})", str(path)) from None
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
    """Predict every task for the inputs in ``inputs`` (NPZ) and write them to ``out`` (NPZ); for a folder of
    images, write a CSV with class names (folder_predictions.py)."""
    model_dir, inputs, out = Path(model_dir), Path(inputs), Path(out)
    card = read_card(model_dir)
    if out.exists() and not out.is_file():
        raise ConfigError("--out", "must be a file to write; this is a directory, which --force does not replace",
                          str(out))
    if out.exists() and not force:
        raise ConfigError("--out", "already exists; choose another file or pass --force to replace it", str(out))
    if inputs.is_dir():
        return predict_folder(load_model(model_dir), card, inputs, out, batch_size=batch_size)
    arrays = read_inputs(inputs, card)
    raw = load_model(model_dir).predict(arrays, batch_size=batch_size, verbose=0)
    predictions = decode(raw, card["tasks"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    np.savez_compressed(tmp, **predictions)
    os.replace(tmp, out)
    return predictions


def _prepared_for(model_dir: Path) -> Prepared:
    return prepare(load_experiment(model_dir / EXPERIMENT))


def evaluate(model_dir: str | Path) -> pd.DataFrame:
    """Recompute the test metrics of an exported model; one row per metric beside the card's values."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    prepared = _prepared_for(model_dir)
    now = split_metrics(load_model(model_dir), prepared.splits.test, prepared.tasks, prepared.objective, split="test")
    own = card["exported_model"]["test_metrics"]
    rows = [{"metric": key, "now": value, "card": own.get(key),
             "difference": value - own[key] if key in own else None,
             "mean_over_seeds": card["test_metrics"].get(key, {}).get("mean"),
             "std_over_seeds": card["test_metrics"].get(key, {}).get("std")}
            for key, value in now.items()]
    return pd.DataFrame(rows)


def finetune(model_dir: str | Path, task: str, *, out: str | Path | None = None, freeze: str = "backbone",
             epochs: int | None = None, learning_rate: float | None = None, force: bool = False,
             progress: Callable[[str], None] = print) -> Path:
    """Freeze the backbone, fine-tune ``task``'s head, and write the result as a new model directory."""
    import keras

    from mtl_models.factory import freeze_for_finetune
    from mtl_models.spec import ModelSpec

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    names = [t["name"] for t in card["tasks"]]
    if task not in names:
        raise ConfigError("--task", f"must name a task of the model {names}", task)
    if freeze != "backbone":
        raise ConfigError("--freeze", "must be 'backbone' (the only part that can be frozen)", freeze)
    out = Path(out) if out else model_dir.with_name(f"{model_dir.name}-finetuned-{task}")
    check_out_dir(out, force=force)
    prepared = _prepared_for(model_dir)
    spec = ModelSpec.from_dict(card["spec"])
    # Default: the search's epoch cap, or (without one) as many epochs as the exported model was trained.
    epochs = epochs or prepared.experiment.budget.max_epochs or card["exported_model"]["epochs"]
    learning_rate = learning_rate or spec.optimizer.learning_rate / 10
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError("--epochs", "must be an integer >= 1", epochs)
    if not isinstance(learning_rate, (int, float)) or not 0 < learning_rate < 1:
        raise ConfigError("--learning-rate", "must be a number in (0, 1)", learning_rate)
    model = load_model(model_dir)
    before = split_metrics(model, prepared.splits.test, prepared.tasks, prepared.objective, split="test")
    freeze_for_finetune(model, spec, task, learning_rate=learning_rate)
    score = next(t for t in prepared.tasks if t.name == task).score_metric
    key, direction = metric_key(task, score, "val"), mode(score)  # Keras logs the val key as we spell it
    train, val = prepared.splits.train, prepared.splits.val
    keras.utils.set_random_seed(card["exported_model"]["seed"])
    progress(f"Fine-tuning {task!r} on frozen features for up to {epochs} epochs (learning rate {learning_rate:g}).")
    original, val_before = model.get_weights(), split_metrics(model, val, prepared.tasks, split="val")[key]
    stopping = keras.callbacks.EarlyStopping(monitor=key, mode=direction, patience=max(3, epochs // 5),
                                             restore_best_weights=True)
    batch_size = card.get("batch_size", prepared.experiment.batch_size)
    history = model.fit(**feed(train, batch_size, shuffle=True, seed=card["exported_model"]["seed"]),
                        validation_data=validation(val, batch_size), epochs=epochs, verbose=0, callbacks=[stopping])
    val_after = split_metrics(model, val, prepared.tasks, split="val")[key]
    improved = val_after < val_before if direction == "min" else val_after > val_before
    if not improved:  # fine-tuning must not make the model worse on the data it is judged by
        model.set_weights(original)
        progress(f"No epoch improved val {key} ({val_before:.6g}); the original head is kept.")
    else:
        progress(f"Val {key}: {val_before:.6g} -> {val_after:.6g}.")
    after = split_metrics(model, prepared.splits.test, prepared.tasks, prepared.objective, split="test")
    card = dict(card)
    card["name"] = f"{card['name']}-finetuned-{task}"
    card["finetuned"] = {"from": str(model_dir), "task": task, "freeze": freeze, "learning_rate": learning_rate,
                         "epochs": len(history.history["loss"]), "improved": bool(improved),
                         "val_before": val_before, "val_after": val_after if improved else val_before,
                         "test_metrics_before": before}
    card["exported_model"] = {**card["exported_model"], "test_metrics": after}
    card["test_metrics"] = {k: {"mean": v, "std": 0.0, "seeds": 1} for k, v in after.items()}
    card["software"] = software_versions()
    experiment_text = (model_dir / EXPERIMENT).read_text(encoding="utf-8")
    formats = tuple(card.get("files") or DEFAULT_FORMATS)  # the formats the model it came from was written in
    return write_model_dir(out, model, card, experiment_text, force=force, formats=formats)
