"""A model directory's card, as people read it: ``model_card.md``, and ``README.md`` in the form of a Hugging Face
Hub model card (YAML front matter with a ``model-index`` of the test metrics, then the text).

Both are rendered from ``model_card.json``'s dict alone, so a migrated or fine-tuned card renders the same way.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Mapping

import yaml

from search.winner.formats import IMAGES_SIGNATURE, LITERT_FILE, ONNX_FILE

__all__ = ["render_card", "render_hub_card", "use_lines"]


def render_card(card: Mapping[str, Any]) -> str:
    """The model card as Markdown."""
    lines = [f"# Model card: {card['name']}", "", card.get("summary", ""), "", "## Test metrics", "",
             f"On the test split ({card['data']['test_size']} samples), which the search never saw. "
             f"Mean ± std over seeds {', '.join(map(str, card.get('seeds', [])))}; "
             f"the exported model is seed {card['exported_model']['seed']}.", "",
             "| metric | mean ± std over seeds | exported model |", "| --- | ---: | ---: |"]
    own = card["exported_model"]["test_metrics"]
    for key, stats in card["test_metrics"].items():
        lines.append(f"| {key} | {_fmt(stats['mean'])} ± {_fmt(stats['std'])} | {_fmt(own.get(key, ''))} |")
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
    lines += [f"- `{k}` = {_fmt(v)}" for k, v in card["params"].items()]
    lines += ["", "The full model spec is under `spec` in model_card.json.", "", "## Use", "", *use_lines(card),
              "## Software", ""]
    lines += [f"- {k} {v}" for k, v in card["software"].items()]
    return "\n".join(lines) + "\n"


def use_lines(card: Mapping[str, Any]) -> list[str]:
    """How to load and call each format the directory holds (an older card without ``files``: model.keras and
    the SavedModel at ``saved_model/``, where those exports put it)."""
    files = card.get("files") or {"keras": "model.keras", "savedmodel": "saved_model"}
    inputs = ", ".join(f"'{i['name']}': ..." for i in card["inputs"])
    lines = ["```", "mtl-search predict DIR inputs.npz --out predictions.npz", "mtl-search evaluate DIR", "```", "",
             "```python", "import keras  # Keras' own layers only: mtl_models is not needed to load it",
             "model = keras.models.load_model('DIR/model.keras', safe_mode=True)",
             "outputs = model.predict({" + inputs + "})  # raw inputs by name; a dict of outputs by task"]
    if "savedmodel" in files:
        lines += ["", "import tensorflow as tf  # or without Keras: the SavedModel, raw inputs by name",
                  f"served = tf.saved_model.load('DIR/{files['savedmodel']}')",
                  "outputs = served.serve({" + inputs + "})", *_images_example(card)]
    if "onnx" in files:
        lines += ["", "import onnxruntime  # no TensorFlow needed",
                  f"session = onnxruntime.InferenceSession('DIR/{ONNX_FILE}')",
                  "outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {" + inputs
                  + "})))  # float32 arrays"]
    if "litert" in files:
        lines += ["", "from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert",
                  f"runner = Interpreter('DIR/{LITERT_FILE}').get_signature_runner('serving_default')",
                  "outputs = runner(" + ", ".join(f"{i['name']}=..." for i in card["inputs"]) + ")  # float32 arrays"]
        needed = (card.get("litert") or {}).get("tensorflow_ops")
        if needed:
            lines += [f"# model.tflite needs TensorFlow ops ({', '.join(needed)}): run it with the Flex delegate"]
    lines += ["```", ""]
    if "savedmodel" in files and str(files["savedmodel"]).startswith("serving/"):
        base, name = str(files["savedmodel"]).split("/")[:2]
        lines += [f"TensorFlow Serving serves `{base}/` as it is (model `{name}`, version 1):", "", "```",
                  f'docker run -p 8501:8501 -v "$PWD/DIR/{base}:/models" -e MODEL_NAME={name} tensorflow/serving',
                  f"curl -d @request.json http://localhost:8501/v1/models/{name}:predict", "```", ""]
    return lines


def _images_example(card: Mapping[str, Any]) -> list[str]:
    """The card's line on the encoded-images signature; none when the SavedModel has none."""
    if IMAGES_SIGNATURE not in card.get("saved_model_signatures", ()):
        return []
    values = ", ".join(f"'{i['name']}': " + ("tf.constant([open('a.jpg', 'rb').read()])" if len(i["shape"]) == 3
                                            else "...") for i in card["inputs"])
    return [f"outputs = served.serve_images({{{values}}})  # encoded JPEG/PNG bytes (signature '{IMAGES_SIGNATURE}')"]


_HUB_METRICS = {"auc": "roc_auc", "iou": "mean_iou"}  # the Hub's names where ours differ


def render_hub_card(card: Mapping[str, Any]) -> str:
    """``README.md`` as a Hugging Face Hub model card: front matter (library, tags, data set, metrics and a
    ``model-index`` with each task's test metrics as mean and std over the retrain seeds), then intended use,
    data and split seeds, per-task results, Δm% where computed, limitations and how to load each format."""
    data, seeds = card["data"], card.get("seeds", [])
    dataset = _dataset_name(data)
    over = f"over seeds {', '.join(map(str, seeds))}"
    results, metric_types = [], []
    for task in card["tasks"]:
        metrics = []
        for metric in task.get("metrics", ()):
            stats = card["test_metrics"].get(f"test_{task['name']}_{metric}")
            if stats is None:
                continue
            kind = _HUB_METRICS.get(metric, metric)
            metric_types.append(kind)
            metrics += [{"type": kind, "value": _number(stats["mean"]), "name": f"test {metric}, mean {over}"},
                        {"type": f"{kind}_std", "value": _number(stats["std"]), "name": f"test {metric}, std {over}"}]
        if metrics:
            results.append({"task": {"type": _task_type(task, card["inputs"]),
                                     "name": f"{task['name']} ({_describe(task)})"},
                            "dataset": {"name": dataset, "type": dataset, "split": "test"}, "metrics": metrics})
    front = {"library_name": "keras", "tags": ["keras", "tensorflow", "multi-task-learning", "mtl-search",
                                               *sorted({_task_type(t, card["inputs"]) for t in card["tasks"]})],
             "datasets": [dataset], "metrics": sorted(set(metric_types)),
             "model-index": [{"name": card["name"], "results": results}]}
    tasks = ", ".join(f"`{t['name']}` ({_describe(t)})" for t in card["tasks"])
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {card['name']}", "", card.get("summary", ""), "", "## Intended use", "",
             f"One network answers {len(card['tasks'])} questions about the same input: {tasks}. It was found by "
             f"a hyperparameter search (mtl-search, search `{card['experiment']}`) and retrained {over}. It is "
             "meant for inputs like its training data: "
             + "; ".join(f"`{i['name']}` of shape {tuple(i['shape'])}, raw values" for i in card["inputs"])
             + " (the normalisation is inside the model).", "", "## Data", "",
             f"Data set `{data['dataset']}` (options `{json.dumps(data['options'])}`): {data['train_size']} training, "
             f"{data['val_size']} validation and {data['test_size']} test samples; split seed {data['split_seed']}, "
             f"stratified by {data['stratify']}; the search never saw the test split.", "", "## Results", "",
             f"Test split, mean ± std {over}; the exported model is seed {card['exported_model']['seed']}.", "",
             "| metric | mean ± std | exported model |", "| --- | ---: | ---: |"]
    own = card["exported_model"]["test_metrics"]
    lines += [f"| {key} | {_fmt(s['mean'])} ± {_fmt(s['std'])} | {_fmt(own.get(key, ''))} |"
              for key, s in card["test_metrics"].items()]
    if card.get("delta_m_percent") is not None:
        lines += ["", f"Δm% against single-task baselines with the same network: **{card['delta_m_percent']:+.2f}%** "
                      "(positive: sharing helped)."]
    lines += ["", "## Limitations", "", f"- Judged on {data['test_size']} test samples drawn like the training data; "
              "nothing is claimed for data from elsewhere."]
    if str(card.get("selected_by", "")).startswith("test_"):
        lines += [f"- The retrained configurations were ranked by their mean `{card['selected_by']}`, on this same "
                  "test split, so the winner's test figures are slightly optimistic."]
    lines += ["- Class indices follow the order of each task's `class_names` in model_card.json.", "",
              "## How to load it", "", *use_lines(card), "## Software", ""]
    lines += [f"- {k} {v}" for k, v in card["software"].items()]
    return "\n".join(lines) + "\n"


def _dataset_name(data: Mapping[str, Any]) -> str:
    """The built-in data set's name, or for an image folder the folder its label table is in."""
    folder = PurePosixPath(str(data["options"].get("path", ""))).parent.name
    return folder if data["dataset"] == "images" and folder else data["dataset"]


def _task_type(task: Mapping[str, Any], inputs) -> str:
    """The Hub's task type closest to a task of ours."""
    image = any(len(i["shape"]) == 3 for i in inputs)
    if task["kind"] == "segmentation":
        return "image-segmentation"
    if task["kind"] == "regression":
        return "image-regression" if image else "tabular-regression"
    return "image-classification" if image else "tabular-classification"


def _describe(task: Mapping[str, Any]) -> str:
    classes = f", {task['num_classes']} classes" if task["kind"] in ("classification", "multilabel") else ""
    return f"{task['kind']}{classes}"


def _number(value: Any) -> Any:
    return round(float(value), 6) if isinstance(value, (int, float)) else value


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
