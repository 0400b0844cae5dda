"""Factory variants the reference networks leave out: each builds, trains one epoch, and reports a finite loss."""

import keras
import numpy as np
import pytest

from mtl_models import BackboneSpec, HeadSpec, InputSpec, ModelSpec, TaskSpec, build_model

N, SIDE = 24, 8
LABEL = HeadSpec(TaskSpec("label", "classification", num_classes=3), units=8)
LABEL_OUT = {"label": ((N, 3), "sparse_categorical_crossentropy")}


def _layer_types(model):
    return {type(layer).__name__ for layer in model.layers}


def _compiled_metrics(model):
    return [m for container in model.metrics for m in getattr(container, "metrics", [])]


def _has_metric(model, cls, **attrs):
    return any(isinstance(m, cls) and all(getattr(m, k) == v for k, v in attrs.items())
               for m in _compiled_metrics(model))


# (backbone, heads, expected {task: (output shape, compiled loss name)}, a check of the built model)
VARIANTS = {
    "multilabel_auc": (
        BackboneSpec(blocks=1, filters=4),
        (HeadSpec(TaskSpec("tags", "multilabel", num_classes=4, metrics=("auc", "accuracy")), units=8),),
        {"tags": ((N, 4), "binary_crossentropy")},
        lambda model: _has_metric(model, keras.metrics.AUC, multi_label=True),
    ),
    "segmentation_multiclass": (
        BackboneSpec(blocks=1, filters=4),
        (HeadSpec(TaskSpec("mask", "segmentation", num_classes=3, metrics=("iou", "accuracy")), units=4),),
        {"mask": ((N, SIDE, SIDE, 3), "sparse_categorical_crossentropy")},
        lambda model: _has_metric(model, keras.metrics.MeanIoU, num_classes=3),
    ),
    "no_batch_norm": (
        BackboneSpec(blocks=2, filters=4, batch_norm=False),
        (LABEL,),
        LABEL_OUT,
        lambda model: "BatchNormalization" not in _layer_types(model),
    ),
    "avg_pooling": (
        BackboneSpec(blocks=2, filters=4, pooling="avg"),
        (LABEL,),
        LABEL_OUT,
        lambda model: "AveragePooling2D" in _layer_types(model) and "MaxPooling2D" not in _layer_types(model),
    ),
    "no_pooling_flatten_binary_mask": (
        BackboneSpec(blocks=1, filters=4, pooling="none", global_pooling="flatten"),
        (LABEL, HeadSpec(TaskSpec("mask", "segmentation"), units=4)),
        {**LABEL_OUT, "mask": ((N, SIDE, SIDE, 1), "binary_crossentropy")},
        lambda model: not {"MaxPooling2D", "AveragePooling2D", "UpSampling2D"} & _layer_types(model)
        and "Flatten" in _layer_types(model),
    ),
    "regression_mae": (
        BackboneSpec(blocks=1, filters=4),
        (HeadSpec(TaskSpec("value", "regression", output_dim=2, loss="mae"), units=8),),
        {"value": ((N, 2), "mean_absolute_error")},
        lambda model: True,
    ),
    "regression_huber": (
        BackboneSpec(blocks=1, filters=4),
        (HeadSpec(TaskSpec("value", "regression", loss="huber", metrics=("mse",)), units=8),),
        {"value": ((N, 1), "huber_loss")},
        lambda model: True,
    ),
}


def _target(task, rng):
    if task.kind == "classification":
        return rng.integers(0, task.num_classes, N).astype("int32")
    if task.kind in ("binary", "multilabel"):
        return rng.integers(0, 2, (N, task.num_classes)).astype("float32")
    if task.kind == "regression":
        return rng.random((N, task.output_dim), dtype=np.float32)
    if task.num_classes == 1:
        return rng.integers(0, 2, (N, SIDE, SIDE, 1)).astype("float32")
    return rng.integers(0, task.num_classes, (N, SIDE, SIDE)).astype("int32")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_builds_and_trains_one_epoch(variant):
    backbone, heads, expected, check = VARIANTS[variant]
    spec = ModelSpec(inputs=(InputSpec("image", (SIDE, SIDE, 1)),), backbone=backbone, heads=heads)
    model = build_model(spec)
    rng = np.random.default_rng(0)
    x = {"image": rng.random((N, SIDE, SIDE, 1), dtype=np.float32)}
    y = {h.name: _target(h.task, rng) for h in heads}
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    predictions = model.predict(x, verbose=0)
    assert {name: predictions[name].shape for name in expected} == {name: s for name, (s, _) in expected.items()}
    assert {name: model.loss[name].name for name in expected} == {name: loss for name, (_, loss) in expected.items()}
    assert check(model), variant
