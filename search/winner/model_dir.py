"""A model directory: what `export` and `finetune` write and `predict` / `evaluate` read.

Files: ``model.keras`` (the network with Keras' own layers only, uncompiled: it loads with
``safe_mode=True`` in any Python with Keras, ``mtl_models`` not needed); the other formats asked for
(:mod:`search.winner.formats`: by default a SavedModel in TensorFlow Serving's layout,
``serving/<name>/1/``, that serves raw inputs, normalisation included, and, for a model with one image
input, encoded image bytes as a serving client sends them; ``model.onnx``; ``model.tflite``);
``experiment.yaml`` (the data set and split, so the test split can be rebuilt); ``model_card.json``,
``model_card.md`` and ``README.md``, the card in the Hugging Face Hub's form (:mod:`search.winner.cards`).

A directory is written to a temporary sibling first and moved into place at the end, so
an existing directory (replaced only with ``force``) is never left half-written.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from search.errors import ConfigError
from search.rundir.directory import FORMAT, MODEL_FILE, check_writable, migrate_command
from search.winner.cards import render_card, render_hub_card
from search.winner.formats import (DEFAULT_FORMATS, check_formats, format_files, write_litert, write_onnx,
                                   write_saved_model)

__all__ = ["CARD_JSON", "CARD_MD", "EXPERIMENT", "HUB_CARD", "check_out_dir", "load_model", "read_card",
           "software_versions", "write_model_dir"]

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
HUB_CARD = "README.md"
EXPERIMENT = "experiment.yaml"


def check_out_dir(out: Path, *, force: bool, field: str = "--out") -> None:
    """Refuse an existing output directory unless ``force``; check that it can be written."""
    if out.exists() and not force:
        raise ConfigError(field, "already exists; choose another directory or pass --force to replace it", str(out))
    if out.exists() and not out.is_dir():
        raise ConfigError(field, "must be a directory, but a file is there", str(out))
    check_writable(out.parent if out.parent != Path("") else Path("."), field=field)


def write_model_dir(out: Path, model, card: Mapping[str, Any], experiment_text: str, *, force: bool,
                    formats: tuple[str, ...] = DEFAULT_FORMATS) -> Path:
    """Write the model directory ``out`` (see the module docstring) with ``formats``; returns it."""
    check_out_dir(out, force=force)
    check_formats(formats)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    from mtl_models import plain_model

    model = plain_model(model)
    try:
        model.save(staging / MODEL_FILE)
        card = {**card, "files": format_files(formats, card["experiment"])}
        if "savedmodel" in formats:
            serving = staging / card["files"]["savedmodel"]
            serving.parent.mkdir(parents=True)
            pixel_max = {i["name"]: i["pixel_max"] for i in card["inputs"] if "pixel_max" in i}
            card["saved_model_signatures"] = write_saved_model(model, serving, pixel_max)
        if "onnx" in formats:
            write_onnx(model, staging / card["files"]["onnx"])
        if "litert" in formats:
            card["litert"] = write_litert(model, staging / card["files"]["litert"])
        (staging / EXPERIMENT).write_text(experiment_text, encoding="utf-8")
        (staging / CARD_JSON).write_text(json.dumps(card, indent=1, default=float) + "\n")
        (staging / CARD_MD).write_text(render_card(card))
        (staging / HUB_CARD).write_text(render_hub_card(card))
        if out.exists():
            old = out.with_name(f".{out.name}-replaced")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def read_card(model_dir: Path) -> dict[str, Any]:
    """The model card of a model directory (ConfigError naming the directory when it is not one)."""
    path = Path(model_dir) / CARD_JSON
    if not path.is_file() or not (Path(model_dir) / MODEL_FILE).is_file():
        raise ConfigError("model_dir", f"is not an exported model directory (it needs {CARD_JSON} and {MODEL_FILE}); "
                          "write one with `mtl-search export results/<name> --out DIR`", str(model_dir))
    try:
        card = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError("model_dir", f"holds a damaged {CARD_JSON} ({exc})", str(model_dir)) from None
    if card.get("format", 1) < FORMAT:
        raise ConfigError("model_dir", f"was exported by an earlier mtl-search (card format {card.get('format', 1)}; "
                          f"this one reads format {FORMAT}, where every metric key names its split); convert it "
                          f"once with `{migrate_command(Path(model_dir))}`", str(model_dir))
    return card


def load_model(model_dir: Path):
    """The directory's ``model.keras``, loaded in safe mode.

    An exported model is saved uncompiled (see :func:`mtl_models.plain_model`); it is compiled
    here from its card's spec, so it can be evaluated and fine-tuned. A retrain run's model
    (no card) comes compiled as it was trained.
    """
    import keras

    import mtl_models  # registers the custom layers and metrics (a retrain run's model, an older export)

    model = keras.models.load_model(Path(model_dir) / MODEL_FILE, safe_mode=True)
    if (Path(model_dir) / CARD_JSON).is_file():
        mtl_models.compile_model(model, mtl_models.ModelSpec.from_dict(read_card(model_dir)["spec"]))
    return model


def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("mtl-search", "tensorflow", "keras", "ray", "optuna", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
