"""Every export format, loaded by its own runtime in a process that never imports TensorFlow or this package
(onnxruntime; LiteRT's interpreter), predicts what the Keras model predicts; the SavedModel sits in TensorFlow
Serving's layout with outputs named by task; README.md is a Hub model card whose front matter parses."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mtl_models import BackboneSpec, HeadSpec, InputSpec, ModelSpec, TaskSpec, build_model
from search.cli import main
from search.winner.model_dir import CARD_JSON, HUB_CARD, write_model_dir

IMAGE = InputSpec("image", (16, 16, 3), mean=(120.0, 110.0, 100.0), variance=(3000.0, 2500.0, 2000.0))
TABULAR = InputSpec("tabular", (4,), mean=(1.0, -1.0, 0.0, 2.0), variance=(1.0, 4.0, 0.5, 9.0))
HEADS = (HeadSpec(TaskSpec("kind", "classification", num_classes=3, class_names=("a", "b", "c")), units=8),
         HeadSpec(TaskSpec("value", "regression", output_dim=2), units=8))
MASK = HeadSpec(TaskSpec("mask", "segmentation", num_classes=1, input="image"), units=4)
TEST_METRICS = {"test_objective": {"mean": 0.8, "std": 0.01, "seeds": 3},
                "test_kind_accuracy": {"mean": 0.9, "std": 0.02, "seeds": 3},
                "test_value_mae": {"mean": 0.1, "std": 0.005, "seeds": 3}}

# Each runtime alone, in a fresh process: it must not import TensorFlow, Keras or this package.
RUNTIMES = {
    "onnx": """
import onnxruntime
session = onnxruntime.InferenceSession(f"{DIR}/model.onnx")
got = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
""",
    "litert": """
from ai_edge_litert.interpreter import Interpreter
got = Interpreter(f"{DIR}/model.tflite").get_signature_runner("serving_default")(**inputs)
""",
}
CLIENT = """
import json, sys, numpy as np
inputs = dict(np.load(INPUTS))
{runtime}
np.savez(OUT, **got)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "mtl_models", "search"))))
"""


def _card(heads):
    return {"name": "formats-c0", "experiment": "formats", "summary": "A test model.", "seeds": [42, 43, 44],
            "config_id": "c0", "params": {"heads.kind.units": 8}, "selected_by": "test_objective",
            "exported_model": {"seed": 42, "test_metrics": {k: v["mean"] for k, v in TEST_METRICS.items()}},
            "test_metrics": TEST_METRICS, "software": {"keras": "3"}, "delta_m_percent": 1.5,
            "data": {"dataset": "shapes", "options": {"n_samples": 100}, "val_fraction": 0.2, "test_fraction": 0.2,
                     "split_seed": 0, "stratify": "kind", "train_size": 60, "val_size": 20, "test_size": 20},
            "inputs": [{"name": i.name, "shape": list(i.shape)} for i in (IMAGE, TABULAR)],
            "tasks": [{"name": h.task.name, "kind": h.task.kind, "num_classes": h.task.num_classes,
                       "metrics": ["accuracy"] if h.task.kind == "classification" else ["mae"],
                       "class_names": list(h.task.class_names)} for h in heads]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model with an image and a vector input written in every format; its Keras predictions on raw inputs."""
    root = tmp_path_factory.mktemp("formats")
    model = build_model(ModelSpec(inputs=(IMAGE, TABULAR), backbone=BackboneSpec(blocks=2, filters=(8, 8)),
                                  heads=HEADS))
    rng = np.random.default_rng(0)
    inputs = {"image": rng.integers(0, 256, (5, 16, 16, 3)).astype(np.float32),
              "tabular": rng.normal(1.0, 2.0, (5, 4)).astype(np.float32)}
    np.savez(root / "inputs.npz", **inputs)
    write_model_dir(root / "model", model, _card(HEADS), "experiment: formats\n", force=False,
                    formats=("keras", "savedmodel", "onnx", "litert"))
    return root, inputs, model.predict(inputs, verbose=0)


def _run_alone(root, runtime: str) -> tuple[dict, list]:
    script = (f"DIR, INPUTS, OUT = {str(root / 'model')!r}, {str(root / 'inputs.npz')!r}, "
              f"{str(root / (runtime + '.npz'))!r}" + CLIENT.format(runtime=RUNTIMES[runtime]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(root / f"{runtime}.npz") as got:
        return dict(got), json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("runtime, tolerance", [("onnx", 1e-5), ("litert", 1e-5)])
def test_each_format_predicts_as_keras_in_its_own_runtime_without_tensorflow(exported, runtime, tolerance):
    root, _, expected = exported
    got, imported = _run_alone(root, runtime)
    assert imported == []
    assert set(got) == set(expected) == {"kind", "value"}
    for task in expected:
        assert got[task].shape == expected[task].shape
        np.testing.assert_allclose(got[task], expected[task], atol=tolerance, rtol=0)


def test_the_savedmodel_is_in_tf_serving_layout_with_outputs_named_by_task(exported):
    import tensorflow as tf

    root, inputs, expected = exported
    version = root / "model" / "serving" / "formats" / "1"
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert [p.name for p in (root / "model" / "serving").iterdir()] == ["formats"]
    served = tf.saved_model.load(str(version))  # keep a reference: it owns the variables
    signature = served.signatures["serving_default"]
    assert set(signature.structured_outputs) == {"kind", "value"}
    assert set(signature.structured_input_signature[1]) == {"image", "tabular"}
    got = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    for task in expected:
        np.testing.assert_allclose(got[task].numpy(), expected[task], atol=1e-5, rtol=0)
    card = json.loads((root / "model" / CARD_JSON).read_text())
    assert card["files"] == {"keras": "model.keras", "savedmodel": "serving/formats/1", "onnx": "model.onnx",
                             "litert": "model.tflite"}
    assert card["litert"] == {"ops": "litert builtins", "tensorflow_ops": []}


def test_readme_is_a_hub_model_card_with_the_test_metrics_as_mean_and_std(exported):
    root, _, _ = exported
    text = (root / "model" / HUB_CARD).read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "keras" and front["datasets"] == ["shapes"]
    assert {"multi-task-learning", "image-classification", "image-regression"} <= set(front["tags"])
    [index] = front["model-index"]
    assert index["name"] == "formats-c0"
    results = {r["task"]["name"]: r for r in index["results"]}
    assert set(results) == {"kind (classification, 3 classes)", "value (regression)"}
    metrics = {m["type"]: m["value"] for r in index["results"] for m in r["metrics"]}
    assert metrics == {"accuracy": 0.9, "accuracy_std": 0.02, "mae": 0.1, "mae_std": 0.005}
    assert all(r["dataset"]["split"] == "test" for r in index["results"])
    body = text.split("---\n", 2)[2]
    for heading in ("## Intended use", "## Data", "## Results", "## Limitations", "## How to load it"):
        assert heading in body
    assert "+1.50%" in body and "split seed 0" in body and "slightly optimistic" in body
    for line in ("onnxruntime.InferenceSession('DIR/model.onnx')", "Interpreter('DIR/model.tflite')",
                 "tf.saved_model.load('DIR/serving/formats/1')", "-e MODEL_NAME=formats tensorflow/serving"):
        assert line in body


def test_a_network_litert_cannot_run_alone_is_exported_with_tensorflow_ops_and_says_so(tmp_path):
    model = build_model(ModelSpec(inputs=(IMAGE,), backbone=BackboneSpec(blocks=2, filters=(8, 8)),
                                  heads=(HEADS[0], MASK)))
    write_model_dir(tmp_path / "model", model, _card((HEADS[0], MASK)), "experiment: formats\n", force=False,
                    formats=("keras", "litert"))
    card = json.loads((tmp_path / "model" / CARD_JSON).read_text())
    assert card["files"] == {"keras": "model.keras", "litert": "model.tflite"}
    assert card["litert"]["tensorflow_ops"] == ["Conv2D"], card["litert"]  # the mask head's second upsampled conv
    assert "Flex delegate" in (tmp_path / "model" / HUB_CARD).read_text()
    assert not (tmp_path / "model" / "serving").exists()


def test_an_unknown_format_is_refused_in_one_line_before_anything_is_read(tmp_path, capsys):
    assert main(["export", str(tmp_path / "no-run"), "--out", str(tmp_path / "out"), "--format", "keras,pdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--format" in err and "keras,pdf" in err and "onnx" in err
    assert not (tmp_path / "out").exists()


def test_encoded_images_are_scaled_to_what_white_was_in_training(tmp_path):
    """A model trained on images in [0, 1] (the built-in data sets) gets a PNG's bytes divided by 255."""
    import io

    import tensorflow as tf
    from PIL import Image

    unit = InputSpec("image", (16, 16, 3), mean=(0.5, 0.4, 0.3), variance=(0.05, 0.04, 0.03))
    model = build_model(ModelSpec(inputs=(unit,), backbone=BackboneSpec(blocks=1, filters=(8,)), heads=HEADS))
    card = _card(HEADS)
    card["inputs"] = [{"name": "image", "shape": [16, 16, 3], "pixel_max": 1.0}]
    write_model_dir(tmp_path / "model", model, card, "experiment: formats\n", force=False)
    pixels = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    served = tf.saved_model.load(str(tmp_path / "model" / "serving" / "formats" / "1"))
    got = served.signatures["serving_images"](image=tf.constant([png.getvalue()]))
    expected = model.predict({"image": pixels[None].astype(np.float32) / 255.0}, verbose=0)
    unscaled = model.predict({"image": pixels[None].astype(np.float32)}, verbose=0)
    for task in expected:
        np.testing.assert_allclose(got[task].numpy(), expected[task], atol=1e-5, rtol=0)
    assert max(float(np.abs(unscaled[t] - expected[t]).max()) for t in expected) > 1e-3  # the scale matters
