"""A model directory: what `export` and `finetune` write and `predict` / `evaluate` read.

Files: ``model.keras`` (the network with Keras' own layers only, uncompiled: it loads with
``safe_mode=True`` in any Python with Keras, ``mtl_models`` not needed), ``saved_model/``
(a TensorFlow SavedModel that serves raw inputs, normalisation included, and, for a model with one
image input, encoded image bytes as a serving client sends them), ``experiment.yaml``
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

__all__ = ["CARD_JSON", "CARD_MD", "EXPERIMENT", "IMAGES_SIGNATURE", "SAVED_MODEL", "check_out_dir", "load_model",
           "read_card", "render_card", "software_versions", "write_model_dir"]

SAVED_MODEL = "saved_model"
IMAGES_SIGNATURE = "serving_images"  # the SavedModel's signature on encoded images (its endpoint: `serve_images`)
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
        card = {**card, "saved_model_signatures": _export_saved_model(model, staging / SAVED_MODEL)}
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


def _export_saved_model(model, path: Path) -> list[str]:
    """Write the SavedModel of ``model`` (a functional model on a dict of named inputs) to ``path``; returns
    its signatures' names, which the card records (an older export, migrated, lists none).

    Endpoint ``serve`` (also signature ``serving_default``, as ``model.export`` names it) takes the raw
    inputs. A model with exactly one image input also gets ``serve_images`` (signature
    :data:`IMAGES_SIGNATURE`): the same inputs, but the image as a 1-D string tensor of encoded files (PNG,
    JPEG, BMP or GIF), each decoded and resized by :func:`mtl_models.streaming.decode_image`, the rule
    training used, so a served JPEG is seen as training saw it.
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

        def serve_images(inputs):
            pixels = tf.map_fn(lambda contents: decode_image(contents, shape), inputs[image],
                               fn_output_signature=tf.TensorSpec(shape, tf.uint8))
            return serve({**inputs, image: tf.cast(pixels, raw[image].dtype)})

        encoded = {**raw, image: tf.TensorSpec((None,), tf.string, name=image)}
        endpoint = archive.add_endpoint("serve_images", serve_images, [encoded])
        archive.add_endpoint(IMAGES_SIGNATURE, endpoint)
        names += ["serve_images", IMAGES_SIGNATURE]
    archive.write_out(str(path), verbose=False)
    return names


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
              "outputs = served.serve({" + ", ".join(f"'{i['name']}': ..." for i in card["inputs"]) + "})",
              *_images_example(card), "```", "",
              "## Software", ""]
    lines += [f"- {k} {v}" for k, v in card["software"].items()]
    return "\n".join(lines) + "\n"


def _images_example(card: Mapping[str, Any]) -> list[str]:
    """The card's line on the encoded-images signature; none when the SavedModel has none."""
    if IMAGES_SIGNATURE not in card.get("saved_model_signatures", ()):
        return []
    values = ", ".join(f"'{i['name']}': " + ("tf.constant([open('a.jpg', 'rb').read()])" if len(i["shape"]) == 3
                                            else "...") for i in card["inputs"])
    return [f"outputs = served.serve_images({{{values}}})  # encoded JPEG/PNG bytes (signature '{IMAGES_SIGNATURE}')"]
