"""The exported SavedModel serves raw inputs (`serve`, `serving_default`) and, for a model with one image input,
encoded image bytes (`serve_images`, `serving_images`), decoded as training decodes them, in a process that
never imports mtl_models."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mtl_models import BackboneSpec, HeadSpec, InputSpec, ModelSpec, TaskSpec, build_model
from search.winner.cards import render_card
from search.winner.formats import IMAGES_SIGNATURE
from search.winner.model_dir import CARD_JSON, CARD_MD, write_model_dir

IMAGE = InputSpec("image", (16, 16, 3), mean=(120.0, 110.0, 100.0), variance=(3000.0, 2500.0, 2000.0))
TABULAR = InputSpec("tabular", (4,), mean=(0.0,) * 4, variance=(1.0,) * 4)
HEADS = (HeadSpec(TaskSpec("kind", "classification", num_classes=3), units=8),
         HeadSpec(TaskSpec("value", "regression"), units=8))
MODELS = {"image": (IMAGE,), "image_and_vector": (IMAGE, TABULAR), "vector": (TABULAR,)}

# Run in a fresh process: every call the serving client makes, and the references it is held to, computed from
# the files alone with TensorFlow's own decoding; it prints what it saw as JSON.
CLIENT = """
import json, sys, numpy as np, tensorflow as tf
out, files = {}, dict(np.load(FILES))
for name, inputs in MODELS.items():
    served = tf.saved_model.load(f"{ROOT}/{name}/serving/serving/1")  # keep a reference: it owns the variables
    seen = {"signatures": sorted(served.signatures), "endpoint": hasattr(served, "serve_images")}
    if "serving_images" in served.signatures:
        encoded = tf.constant([files[k].tobytes() for k in ("png", "jpeg", "resized")])
        vectors = {"tabular": tf.constant(files["tabular"])} if "tabular" in inputs else {}
        got = served.signatures["serving_images"](image=encoded, **vectors)
        endpoint = served.serve_images({"image": encoded, **vectors})
        decoded = [tf.io.decode_image(e, channels=3, dtype=tf.uint8) for e in encoded]
        big = tf.cast(decoded[2], tf.float32)
        resized = tf.clip_by_value(tf.round(tf.image.resize(big, (16, 16), antialias=True)), 0, 255)
        pixels = tf.stack([tf.cast(decoded[0], tf.float32), tf.cast(decoded[1], tf.float32), resized])
        expected = served.signatures["serving_default"](image=pixels, **vectors)
        # What a wrong rule would serve instead, so that the bounds can be seen to tell: the PNG's pixels for
        # the JPEG (JPEG is lossy), a resize without antialiasing.
        wrong = tf.stack([pixels[0], pixels[0], tf.round(tf.image.resize(big, (16, 16)))])
        wrong = served.signatures["serving_default"](image=wrong, **vectors)
        for key, reference in (("error", expected), ("wrong", wrong)):
            seen[key] = {kind: max(float(np.abs(got[k][i] - reference[k][i]).max()) for k in got)
                         for i, kind in enumerate(("png", "jpeg", "resized"))}
        seen["endpoint_error"] = max(float(np.abs(got[k] - endpoint[k]).max()) for k in got)
        seen["png_pixels_exact"] = bool(np.array_equal(decoded[0].numpy(), files["pixels"]))
        np.savez(f"{ROOT}/{name}-served.npz", **{k: v.numpy() for k, v in got.items()})
    out[name] = seen
out["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ("mtl_models", "search"))
print(json.dumps(out))
"""


def _card(inputs):
    """The least card that `render_card` accepts."""
    return {"name": "serving", "summary": "", "seeds": [0], "config_id": "c0", "experiment": "serving", "params": {},
            "exported_model": {"seed": 0, "test_metrics": {}}, "test_metrics": {}, "software": {},
            "data": {"train_size": 0, "val_size": 0, "test_size": 0, "dataset": "none", "options": {},
                     "val_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0, "stratify": None},
            "inputs": [{"name": i.name, "shape": list(i.shape)} for i in inputs],
            "tasks": [{"name": h.task.name, "kind": h.task.kind, "num_classes": h.task.num_classes} for h in HEADS]}


def _encoded(pixels, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The three models written as model directories, what a fresh client process saw, and the test's own
    predictions on the PNG's pixels."""
    root = tmp_path_factory.mktemp("serving")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)  # noise: antialiasing changes its resized pixels
    files = {"pixels": pixels, "png": _encoded(pixels, "PNG"), "jpeg": _encoded(pixels, "JPEG", quality=80),
             "resized": _encoded(big, "PNG"), "tabular": rng.normal(size=(3, 4)).astype(np.float32)}
    np.savez(root / "files.npz", **files)
    expected = {}
    for name, inputs in MODELS.items():
        model = build_model(ModelSpec(inputs=inputs, backbone=BackboneSpec(blocks=1, filters=(8,)), heads=HEADS))
        write_model_dir(root / name, model, _card(inputs), "experiment: serving\n", force=False)
        if name == "image_and_vector":
            expected = model.predict({"image": pixels[None].astype(np.float32), "tabular": files["tabular"][:1]},
                                     verbose=0)
    names = json.dumps({k: [i.name for i in v] for k, v in MODELS.items()})
    script = f"FILES, ROOT, MODELS = {str(root / 'files.npz')!r}, {str(root)!r}, {names}" + CLIENT
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, json.loads(result.stdout.strip().splitlines()[-1]), expected


def test_the_client_process_never_imports_the_package(served):
    _, seen, _ = served
    assert seen["imported"] == []


@pytest.mark.parametrize("name", ["image", "image_and_vector"])
def test_a_model_with_one_image_input_serves_encoded_bytes_as_training_decodes_them(served, name):
    _, seen, _ = served
    assert seen[name]["signatures"] == sorted(["serve", "serving_default", "serve_images", IMAGES_SIGNATURE])
    assert seen[name]["endpoint"] and seen[name]["endpoint_error"] == 0.0
    assert seen[name]["png_pixels_exact"]
    assert seen[name]["error"]["png"] <= 1e-5
    assert seen[name]["error"]["jpeg"] <= 1e-5  # the model on the JPEG's own decoded pixels
    assert seen[name]["error"]["resized"] <= 1e-4  # a 20x24 image, resized with antialiasing
    assert min(seen[name]["wrong"]["jpeg"], seen[name]["wrong"]["resized"]) > 1e-3, seen[name]["wrong"]


def test_encoded_bytes_give_the_keras_models_predictions(served):
    root, _, expected = served
    with np.load(root / "image_and_vector-served.npz") as got:
        for task in expected:
            np.testing.assert_allclose(got[task][:1], expected[task], atol=1e-5)


def test_a_model_without_an_image_input_gets_no_images_signature(served):
    root, seen, _ = served
    assert seen["vector"]["signatures"] == ["serve", "serving_default"] and not seen["vector"]["endpoint"]
    assert "serve_images" not in (root / "vector" / CARD_MD).read_text()
    assert (root / "vector" / "serving" / "serving" / "1" / "saved_model.pb").is_file()  # TF Serving's layout


def test_the_model_card_records_the_signatures_and_shows_the_images_one(served):
    root, seen, _ = served
    for name in MODELS:
        card = json.loads((root / name / CARD_JSON).read_text())
        assert sorted(card["saved_model_signatures"]) == seen[name]["signatures"]
    text = (root / "image_and_vector" / CARD_MD).read_text()
    assert "served.serve_images({'image': tf.constant([open('a.jpg', 'rb').read()]), 'tabular': ...})" in text
    assert IMAGES_SIGNATURE in text
    # An export from before the images signature, its card rendered again by `migrate`, lists no signatures.
    del card["saved_model_signatures"]
    assert "serve_images" not in render_card({**card, "inputs": [{"name": "image", "shape": [16, 16, 3]}]})
