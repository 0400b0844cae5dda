"""A model directory: what `export` and `finetune` write and `predict` / `evaluate` read.

Files: ``model.keras`` (the network with Keras' own layers only, uncompiled: it loads with
``safe_mode=True`` in any Python with Keras, ``mtl_models`` not needed), ``saved_model/``
(a TensorFlow SavedModel that serves raw inputs, normalisation included), ``experiment.yaml``
(the data set and split, so the test split can be rebuilt), ``model_card.json`` and
``model_card.md``.

A directory is written to a temporary sibling first and moved into place at the end, so
an existing directory (replaced only with ``force``) is never left half-written.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from search.errors import ConfigError
from search.rundir.directory import FORMAT, MODEL_FILE, check_writable, migrate_command

__all__ = ["CARD_JSON", "CARD_MD", "EXPERIMENT", "SAVED_MODEL", "check_out_dir", "load_model", "read_card",
           "render_card", "software_versions", "write_model_dir"]

SAVED_MODEL = "saved_model"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
EXPERIMENT = "experiment.yaml"


def check_out_dir(out: Path, *, force: bool, field: str = "--out") -> None:
    """Refuse an existing output directory unless ``force``; check that it can be written."""
    if out.exists() and not force:
        raise ConfigError(field, "already exists; choose another directory or pass --force to replace it", str(out))
    if out.exists() and not out.is_dir():
        raise ConfigError(field, "must be a directory, but a file is there", str(out))
    check_writable(out.parent if out.parent != Path("") else Path("."), field=field)


def write_model_dir(out: Path, model, card: Mapping[str, Any], experiment_text: str, *, force: bool) -> Path:
    """Write the model directory ``out`` (see the module docstring); returns it."""
    check_out_dir(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    from mtl_models import plain_model

    model = plain_model(model)
    try:
        model.save(staging / MODEL_FILE)
        model.export(str(staging / SAVED_MODEL), format="tf_saved_model", verbose=False)
        (staging / EXPERIMENT).write_text(experiment_text, encoding="utf-8")
        (staging / CARD_JSON).write_text(json.dumps(card, indent=1, default=float) + "\n")
        (staging / CARD_MD).write_text(render_card(card))
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


def render_card(card: Mapping[str, Any]) -> str:
    """The model card as Markdown."""
    fmt: Callable[[Any], str] = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"# Model card: {card['name']}", "", card.get("summary", ""), "", "## Test metrics", "",
             f"On the test split ({card['data']['test_size']} samples), which the search never saw. "
             f"Mean ± std over seeds {', '.join(map(str, card.get('seeds', [])))}; "
             f"the exported model is seed {card['exported_model']['seed']}.", "",
             "| metric | mean ± std over seeds | exported model |", "| --- | ---: | ---: |"]
    own = card["exported_model"]["test_metrics"]
    for key, stats in card["test_metrics"].items():
        lines.append(f"| {key} | {fmt(stats['mean'])} ± {fmt(stats['std'])} | {fmt(own.get(key, ''))} |")
    if card.get("delta_m_percent") is not None:
        lines += ["", f"Δm% against single-task baselines: **{card['delta_m_percent']:+.2f}%** (positive: sharing "
                      "helped)."]
    if card.get("finetuned"):
        ft = card["finetuned"]
        lines += ["", "## Fine-tuning", "", f"Fine-tuned from `{ft['from']}`: task `{ft['task']}` with the "
                  f"{ft['freeze']} frozen, {ft['epochs']} epochs at learning rate {ft['learning_rate']:g}"
                  + ("." if ft.get("improved", True) else "; no epoch improved the validation metric, so the "
                     "original weights were kept.")]
    lines += ["", "## Inputs and outputs", ""]
    lines += [f"- input `{i['name']}`: shape {tuple(i['shape'])} raw values (normalisation is inside the model)"
              for i in card["inputs"]]
    lines += [f"- output `{t['name']}`: {t['kind']}" + (f", {t['num_classes']} classes" if t["kind"] in
              ("classification", "multilabel") else "") for t in card["tasks"]]
    data = card["data"]
    lines += ["", "## Data", "", f"Data set `{data['dataset']}` with options `{json.dumps(data['options'])}`; split "
              f"val {data['val_fraction']}, test {data['test_fraction']}, seed {data['split_seed']}, stratified by "
              f"{data['stratify']}.", "", "## Configuration", "",
              f"Search `{card['experiment']}`, trial `{card['config_id']}`; sampled parameters:", ""]
    lines += [f"- `{k}` = {fmt(v)}" for k, v in card["params"].items()]
    lines += ["", "The full model spec is under `spec` in model_card.json.", "", "## Use", "",
              "```", "mtl-search predict DIR inputs.npz --out predictions.npz", "mtl-search evaluate DIR", "```", "",
              "```python", "import keras  # Keras' own layers only: mtl_models is not needed to load it",
              "model = keras.models.load_model('DIR/model.keras', safe_mode=True)", "",
              "import tensorflow as tf  # or without Keras: the SavedModel, raw inputs by name",
              "served = tf.saved_model.load('DIR/saved_model')",
              "outputs = served.serve({" + ", ".join(f"'{i['name']}': ..." for i in card["inputs"]) + "})", "```", "",
              "## Software", ""]
    lines += [f"- {k} {v}" for k, v in card["software"].items()]
    return "\n".join(lines) + "\n"
