"""Augmentation inside the model: in training only, refused where it would make a label wrong, and the
tasks whose labels are positions say so."""

import json

import keras
import numpy as np
import pytest

from mtl_models import (AugmentationSpec, BackboneSpec, HeadSpec, ImageAugmentation, InputSpec, ModelSpec, SpecError,
                        TaskSpec, build_model)
from mtl_models.data import load_dataset
from mtl_models.data.npz import NpzTask

ALL_ON = AugmentationSpec(flip="horizontal_and_vertical", rotation=0.2, zoom=0.2, translation=0.1, contrast=0.5)


def _spec(augmentation=ALL_ON, *tasks):
    tasks = tasks or (TaskSpec("kind", "classification", num_classes=3),)
    return ModelSpec(inputs=(InputSpec("image", (16, 16, 3), mean=(0.5,) * 3, variance=(0.1,) * 3),),
                     backbone=BackboneSpec(blocks=1, filters=4), heads=tuple(HeadSpec(t, units=4) for t in tasks),
                     augmentation=augmentation)


def _images(n=4):
    return np.random.default_rng(0).random((n, 16, 16, 3), dtype=np.float32)


def test_augmentation_acts_in_training_only():
    model = build_model(_spec())
    x = {"image": _images()}
    np.testing.assert_array_equal(model.predict(x, verbose=0)["kind"], model.predict(x, verbose=0)["kind"])
    augment = keras.Model(model.input, model.get_layer("image_augment").output)
    np.testing.assert_array_equal(augment.predict(x, verbose=0), x["image"])
    np.testing.assert_array_equal(augment(x).numpy(), x["image"])  # a plain call (and a SavedModel's serve) too
    first, second = augment(x, training=True).numpy(), augment(x, training=True).numpy()
    assert not np.allclose(first, x["image"]) and not np.allclose(first, second)
    history = model.fit(x, {"kind": np.array([0, 1, 2, 0])}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_a_flip_alone_gives_the_image_or_its_mirror():
    layer = ImageAugmentation(flip="horizontal")
    x = _images(16)
    out = layer(x, training=True).numpy()
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    assert all(m or np.array_equal(o, i) for m, o, i in zip(mirrored, out, x)) and any(mirrored)


def test_the_layer_round_trips_through_json_and_checks_its_arguments():
    layer = ImageAugmentation(flip="vertical", rotation=0.1, contrast=0.2, name="image_augment")
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(again) is ImageAugmentation and again.get_config() == layer.get_config()
    assert [type(s).__name__ for s in again.steps] == ["RandomFlip", "RandomRotation", "RandomContrast"]
    with pytest.raises(SpecError, match="augmentation.zoom"):
        ImageAugmentation(zoom=1.5)


@pytest.mark.parametrize("field", ["flip", "rotation", "zoom", "translation"])
@pytest.mark.parametrize("task", [TaskSpec("midpoint", "regression", output_dim=2, spatial=True),
                                  TaskSpec("mask", "segmentation")], ids=["spatial", "segmentation"])
def test_a_geometric_augmentation_that_would_make_a_label_wrong_is_refused(field, task):
    value = "horizontal" if field == "flip" else 0.1
    with pytest.raises(SpecError) as info:
        _spec(AugmentationSpec(**{field: value}), TaskSpec("kind", "classification", num_classes=3), task)
    assert info.value.field == f"augmentation.{field}"
    assert f"would make task {task.name!r} wrong" in str(info.value)
    assert str(info.value).endswith(f"use contrast only, or drop the task. Received: augmentation.{field}={value!r}")
    _spec(AugmentationSpec(contrast=0.4), task)  # contrast moves nothing


def test_the_error_for_a_position_target_says_why():
    midpoint = TaskSpec("midpoint", "regression", output_dim=2, spatial=True)
    with pytest.raises(SpecError, match=r"^Invalid `augmentation.flip`: would make task 'midpoint' wrong \(a position "
                       r"target moves with the image, its label does not\); use contrast only, or drop the task. "
                       r"Received: augmentation.flip='horizontal'$"):
        _spec(AugmentationSpec(flip="horizontal"), midpoint)


def test_augmentation_needs_an_image_and_valid_values():
    with pytest.raises(SpecError, match="acts on an image input"):
        ModelSpec(inputs=(InputSpec("features", (4,)),), heads=(HeadSpec(TaskSpec("y", "binary")),),
                  augmentation=AugmentationSpec(contrast=0.1))
    for bad in ({"flip": "diagonal"}, {"rotation": 0.6}, {"zoom": -0.1}, {"translation": True}, {"contrast": "x"}):
        field = next(iter(bad))
        with pytest.raises(SpecError, match=f"augmentation.{field}"):
            AugmentationSpec(**bad)
    assert AugmentationSpec().active() == () and ALL_ON.active() == ("flip", "rotation", "zoom", "translation",
                                                                      "contrast")


def test_position_targets_of_the_built_in_data_are_spatial_and_an_npz_task_may_say_so():
    shapes = load_dataset("shapes", n_samples=30, image_size=16)
    assert {t.name: t.spatial for t in shapes.tasks} == {"shape": False, "colour": False, "midpoint": True}
    glyphs = load_dataset("glyphs", n_samples=30, image_size=16)
    assert {t.name: t.spatial for t in glyphs.tasks} == {"left": True, "sum": False, "gap": True}
    task = NpzTask.from_dict({"task": {"name": "centre", "kind": "regression", "output_dim": 2, "spatial": True},
                              "array": "y"})
    assert task.task.spatial
    with pytest.raises(SpecError, match=r"tasks\[centre\].spatial"):
        TaskSpec("centre", "regression", spatial="yes")
