"""A saved model loads in a fresh process in safe mode and predicts the same from raw inputs."""

import numpy as np
import pytest

from mtl_models import BackboneSpec, HeadSpec, InputSpec, ModelSpec, TaskSpec, build_model, plain_model
from tests.mtl_models.fresh_process import load_and_predict


def _spec(loss_weighting):
    return ModelSpec(
        inputs=(
            InputSpec("image", (16, 16, 3), mean=(0.4, 0.5, 0.6), variance=(0.05, 0.06, 0.07)),
            InputSpec("tabular", (5,), mean=(1.0,) * 5, variance=(4.0,) * 5),
        ),
        backbone=BackboneSpec(blocks=2, filters=(8, 8), residual=True),
        heads=(
            HeadSpec(TaskSpec("label", "binary"), units=8),
            HeadSpec(TaskSpec("kind", "classification", num_classes=3), units=8, transfer_from=("label",)),
            HeadSpec(TaskSpec("mask", "segmentation"), units=4, stop_gradient=True),
            HeadSpec(TaskSpec("value", "regression", loss="huber"), units=8),
        ),
        loss_weighting=loss_weighting,
    )


def _trained(loss_weighting):
    """A model trained one epoch on random data, and its raw inputs."""
    rng = np.random.default_rng(0)
    raw = {
        "image": rng.random((12, 16, 16, 3), dtype=np.float32) * 255.0,  # raw, not normalised
        "tabular": rng.normal(1.0, 2.0, (12, 5)).astype("float32"),
    }
    targets = {
        "label": rng.integers(0, 2, (12, 1)).astype("float32"),
        "kind": rng.integers(0, 3, 12).astype("int32"),
        "mask": rng.integers(0, 2, (12, 16, 16, 1)).astype("float32"),
        "value": rng.normal(size=(12, 1)).astype("float32"),
    }
    model = build_model(_spec(loss_weighting))
    model.fit(raw, targets, epochs=1, batch_size=4, verbose=0)
    return model, raw


# Either import order registers the layers: mtl_models registers them when Keras is imported, if not before.
@pytest.mark.parametrize(("loss_weighting", "imports"), [("fixed", "keras, mtl_models"),
                                                          ("uncertainty", "mtl_models, keras")])
def test_load_in_fresh_process_with_safe_mode_gives_identical_predictions(tmp_path, loss_weighting, imports):
    model, raw = _trained(loss_weighting)
    expected = model.predict(raw, verbose=0)
    got, info = load_and_predict(tmp_path, model, raw, imports)
    assert info["class"] == "MultiTaskModel"
    assert "Lambda" not in info["layers"]
    assert "StopGradient" in info["layers"]
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def test_plain_model_loads_where_mtl_models_was_never_imported_and_predicts_the_same(tmp_path):
    model, raw = _trained("uncertainty")  # both custom layers: stop-gradient heads and learned loss weights
    expected = model.predict(raw, verbose=0)
    got, info = load_and_predict(tmp_path, plain_model(model), raw, "keras")
    assert info == {"class": "Functional", "layers": info["layers"], "mtl_models": False}
    assert not {"StopGradient", "TaskUncertainty"} & set(info["layers"])
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
