"""Each reference network (a)–(e) has the structure DESIGN.md gives it, builds from its spec,
and trains one epoch on its data set."""

import itertools
import os
import tempfile

import keras
import numpy as np
import pytest

import mtl_models
from mtl_models.data import load_shapes, split


@pytest.mark.parametrize("name", ["a", "b", "c", "d", "e"])
def test_reference_network_builds_and_trains_one_epoch(name):
    info = mtl_models.reference_info(name)
    data = mtl_models.reference_data(name, n_samples=160, seed=1)
    splits = split(data, val_fraction=0.25, test_fraction=0.0, seed=0, stratify=info.stratify)
    spec = mtl_models.reference(name, train=splits.train)
    assert {t.name for t in spec.tasks} == {t.name for t in data.tasks}
    assert all(i.mean is not None for i in spec.inputs)  # normalisation from the training split
    model = mtl_models.build_model(spec)
    train, val = splits.train, splits.val
    history = model.fit(
        dict(train.inputs), dict(train.targets),
        validation_data=(dict(val.inputs), dict(val.targets)),
        epochs=1, batch_size=32, verbose=0,
    )
    logs = {k: v[-1] for k, v in history.history.items()}
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["val_loss"])
    for task in spec.tasks:
        assert f"val_{task.name}_{task.score_metric}" in logs
    predictions = model.predict(dict(val.inputs), verbose=0)
    for task in spec.tasks:
        assert predictions[task.name].shape[0] == len(val)


# -- structure, network by network (build only, no training) ----------------------------------------


def structure(model):
    """What a built reference network is made of, by layer name, and how it is compiled."""
    compiled = model.get_compile_config()
    of = lambda cls: [layer for layer in model.layers if isinstance(layer, cls)]
    return {
        "inputs": [(name, tuple(tensor.shape[1:])) for name, tensor in model.input.items()],
        "convs": {layer.name: layer.filters for layer in of(keras.layers.Conv2D)},
        "batch_norms": len(of(keras.layers.BatchNormalization)),
        "adds": [layer.name for layer in of(keras.layers.Add)],
        "pools": [type(layer).__name__ for layer in of((keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))],
        "global_pool": type(model.get_layer("backbone__pool")).__name__,
        "dense": {layer.name: (layer.units, layer.activation.__name__) for layer in of(keras.layers.Dense)},
        "dropouts": {layer.name: layer.rate for layer in of(keras.layers.Dropout)},
        "outputs": {name: (tuple(tensor.shape[1:]), model.get_layer(name).activation.__name__)
                    for name, tensor in model.output.items()},
        "losses": {task: loss["class_name"] for task, loss in compiled["loss"].items()},
        "loss_weights": compiled["loss_weights"],
        "metrics": {task: [m["class_name"] for m in metrics] for task, metrics in compiled["metrics"].items()},
        "optimizer": (compiled["optimizer"]["class_name"], round(compiled["optimizer"]["config"]["learning_rate"], 8)),
    }


def sources(model, layer_name):
    """The names of the layers whose outputs feed ``layer_name``."""
    inputs = model.get_layer(layer_name).input
    return [t._keras_history[0].name for t in (inputs if isinstance(inputs, list) else [inputs])]


def chain(model, *names):
    """True when each layer in ``names`` reads the output of the one before it, and only that."""
    return all(sources(model, after) == [before] for before, after in itertools.pairwise(names))


def test_reference_a_residual_digit_and_colour():
    model = mtl_models.build_model(mtl_models.reference("a"))
    assert structure(model) == {
        "inputs": [("image", (28, 28, 3))],
        "convs": {"backbone__block1_conv_a": 32, "backbone__block1_conv_b": 32, "backbone__block1_project": 32,
                  "backbone__block2_conv_a": 64, "backbone__block2_conv_b": 64, "backbone__block2_project": 64},
        "batch_norms": 4,
        "adds": ["backbone__block1_add", "backbone__block2_add"],
        "pools": ["MaxPooling2D", "MaxPooling2D"],
        "global_pool": "GlobalAveragePooling2D",
        "dense": {"digit__hidden": (64, "relu"), "digit": (10, "softmax"),
                  "colour__hidden": (16, "relu"), "colour": (5, "softmax")},
        "dropouts": {"backbone__block1_dropout": 0.1, "backbone__block2_dropout": 0.1, "digit__dropout": 0.2},
        "outputs": {"digit": ((10,), "softmax"), "colour": ((5,), "softmax")},
        "losses": {"digit": "SparseCategoricalCrossentropy", "colour": "SparseCategoricalCrossentropy"},
        "loss_weights": {"digit": 1.0, "colour": 1.0},
        "metrics": {"digit": ["SparseCategoricalAccuracy"], "colour": ["SparseCategoricalAccuracy"]},
        "optimizer": ("Adam", 1e-3),
    }
    for block in (1, 2):  # the skip: the block's input (projected to its width) is added to its two convs
        assert sources(model, f"backbone__block{block}_add") == [f"backbone__block{block}_conv_b_bn",
                                                                f"backbone__block{block}_project"]
    assert sources(model, "backbone__block2_project") == ["backbone__block1_dropout"]


def test_reference_b_matches_the_published_design():
    spec = mtl_models.reference("b")
    model = mtl_models.build_model(spec)
    assert structure(model) == {
        "inputs": [("image", (32, 32, 1))],
        "convs": {"backbone__block1_conv": 64, "backbone__block2_conv": 64, "backbone__block3_conv": 128},
        "batch_norms": 3,
        "adds": [],
        "pools": ["MaxPooling2D"] * 3,
        "global_pool": "Flatten",
        "dense": {"A__hidden": (128, "relu"), "A": (10, "softmax"), "B__hidden": (256, "relu"),
                  "B": (32, "softmax"), "C__hidden": (64, "relu"), "C": (1, "sigmoid")},
        "dropouts": {"backbone__block1_dropout": 0.3, "backbone__block2_dropout": 0.3, "backbone__block3_dropout": 0.3,
                     "A__dropout": 0.5, "B__dropout": 0.5, "C__dropout": 0.3},
        "outputs": {"A": ((10,), "softmax"), "B": ((32,), "softmax"), "C": ((1,), "sigmoid")},
        "losses": {"A": "SparseCategoricalCrossentropy", "B": "SparseCategoricalCrossentropy", "C": "MeanSquaredError"},
        "loss_weights": {"A": 1.0, "B": 1.5, "C": 0.3},
        "metrics": {"A": ["SparseCategoricalAccuracy"], "B": ["SparseCategoricalAccuracy"], "C": ["MeanAbsoluteError"]},
        "optimizer": ("Adam", 1e-3),
    }
    for block in (1, 2, 3):  # Conv-BN-ReLU-MaxPool-Dropout
        step = f"backbone__block{block}_conv"
        assert chain(model, step, f"{step}_bn", f"{step}_relu", f"backbone__block{block}_pool",
                     f"backbone__block{block}_dropout")
    assert model.get_layer("backbone__pool").output.shape[1:] == (4 * 4 * 128,)
    # Semantic transfer: B reads the backbone features and A's 128-d hidden layer.
    assert sources(model, "B__transfer") == ["backbone__pool", "A__hidden"]
    assert chain(model, "B__transfer", "B__hidden")
    # C's loss never reaches the backbone: its head reads the features through a stop-gradient.
    assert chain(model, "backbone__pool", "C__stop_gradient", "C__hidden")
    assert isinstance(model.get_layer("C__stop_gradient"), mtl_models.StopGradient)
    assert spec.head("C").task.activation == "sigmoid" and spec.head("C").task.score_metric == "mae"
    info = mtl_models.reference_info("b")
    assert (info.stratify, info.select_by) == ("A", "B")


def test_reference_c_three_inputs_mask_and_regression():
    spec = mtl_models.reference("c")
    model = mtl_models.build_model(spec)
    assert [(i.name, i.shape) for i in spec.inputs] == [("tabular_a", (10,)), ("image", (32, 32, 3)),
                                                        ("tabular_b", (5,))]
    assert structure(model) == {
        "inputs": [("tabular_a", (10,)), ("image", (32, 32, 3)), ("tabular_b", (5,))],
        "convs": {"backbone__block1_conv": 16, "backbone__block2_conv": 32,
                  "mask__decode1": 16, "mask__decode2": 16, "mask": 1},
        "batch_norms": 2,
        "adds": [],
        "pools": ["MaxPooling2D", "MaxPooling2D"],
        "global_pool": "GlobalAveragePooling2D",
        "dense": {"backbone__tabular_a_embed": (32, "relu"), "backbone__tabular_b_embed": (32, "relu"),
                  "backbone__dense": (64, "relu"), "label__hidden": (32, "relu"), "label": (1, "sigmoid"),
                  "value__hidden": (32, "relu"), "value": (1, "linear")},
        "dropouts": {},
        "outputs": {"label": ((1,), "sigmoid"), "mask": ((32, 32, 1), "sigmoid"), "value": ((1,), "linear")},
        "losses": {"label": "BinaryCrossentropy", "mask": "BinaryCrossentropy", "value": "MeanSquaredError"},
        "loss_weights": {"label": 1.0, "mask": 1.0, "value": 1.0},
        "metrics": {"label": ["BinaryAccuracy"], "mask": ["BinaryIoU"], "value": ["MeanAbsoluteError"]},
        "optimizer": ("Adam", 1e-3),
    }
    assert sources(model, "backbone__fuse") == ["backbone__pool", "backbone__tabular_a_embed",
                                                "backbone__tabular_b_embed"]
    assert chain(model, "backbone__block2_pool", "mask__upsample1", "mask__decode1", "mask__upsample2",
                 "mask__decode2", "mask")  # the mask is decoded from the image's feature map


def test_reference_d_sigmoid_colour_head():
    model = mtl_models.build_model(mtl_models.reference("d"))
    assert structure(model) == {
        "inputs": [("image", (28, 28, 3))],
        "convs": {"backbone__block1_conv": 32, "backbone__block2_conv": 64},
        "batch_norms": 2,
        "adds": [],
        "pools": ["MaxPooling2D", "MaxPooling2D"],
        "global_pool": "GlobalAveragePooling2D",
        "dense": {"digit__hidden": (64, "relu"), "digit": (10, "softmax"),
                  "colour__hidden": (16, "relu"), "colour": (1, "sigmoid")},
        "dropouts": {"backbone__block1_dropout": 0.25, "backbone__block2_dropout": 0.25, "digit__dropout": 0.3},
        "outputs": {"digit": ((10,), "softmax"), "colour": ((1,), "sigmoid")},
        "losses": {"digit": "SparseCategoricalCrossentropy", "colour": "BinaryCrossentropy"},
        "loss_weights": {"digit": 1.0, "colour": 1.0},
        "metrics": {"digit": ["SparseCategoricalAccuracy"], "colour": ["BinaryAccuracy"]},
        "optimizer": ("Adam", 1e-3),
    }


def test_reference_e_shape_colour_and_mae_midpoint():
    model = mtl_models.build_model(mtl_models.reference("e"))
    assert structure(model) == {
        "inputs": [("image", (32, 32, 3))],
        "convs": {"backbone__block1_conv": 16, "backbone__block2_conv": 32, "backbone__block3_conv": 32},
        "batch_norms": 3,
        "adds": [],
        "pools": ["MaxPooling2D"] * 3,
        "global_pool": "Flatten",
        "dense": {"shape__hidden": (64, "relu"), "shape": (4, "softmax"), "colour__hidden": (32, "relu"),
                  "colour": (5, "softmax"), "midpoint__hidden": (64, "relu"), "midpoint": (2, "sigmoid")},
        "dropouts": {},
        "outputs": {"shape": ((4,), "softmax"), "colour": ((5,), "softmax"), "midpoint": ((2,), "sigmoid")},
        "losses": {"shape": "SparseCategoricalCrossentropy", "colour": "SparseCategoricalCrossentropy",
                   "midpoint": "MeanAbsoluteError"},
        "loss_weights": {"shape": 1.0, "colour": 1.0, "midpoint": 1.0},
        "metrics": {"shape": ["SparseCategoricalAccuracy"], "colour": ["SparseCategoricalAccuracy"],
                    "midpoint": ["MeanAbsoluteError", "WithinDistance"]},
        "optimizer": ("Adam", 1e-3),
    }
    assert model.get_layer("backbone__pool").output.shape[1:] == (4 * 4 * 32,)  # flatten keeps position


def test_reference_e_hard_sharing_is_smaller_than_separate_branches():
    spec = mtl_models.reference("e")
    hard = mtl_models.build_model(spec).count_params()
    separate = mtl_models.build_model(spec.replace(sharing="separate")).count_params()
    assert hard < separate


# -- arguments ------------------------------------------------------------------------------------


def test_unknown_reference_names_the_valid_ones():
    with pytest.raises(mtl_models.SpecError, match=r"must be one of \['a', 'b', 'c', 'd', 'e'\]"):
        mtl_models.reference("z")


def test_reference_with_data_lacking_its_tasks_names_the_missing_ones():
    shapes = load_shapes(n_samples=8, image_size=16)
    with pytest.raises(mtl_models.DataError, match=r"network 'b' \['A', 'B', 'C'\].*'shapes'.*"
                                                   r"missing \['A', 'B', 'C'\]"):
        mtl_models.reference("b", train=shapes)
    digits = mtl_models.reference_data("a", n_samples=20)
    only_digit = mtl_models.data.Dataset("digit_only", digits.inputs, {"digit": digits.targets["digit"]},
                                         digits.tasks[:1])
    with pytest.raises(mtl_models.DataError, match=r"missing \['colour'\]"):
        mtl_models.reference("a", train=only_digit)


def test_reference_b_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert mtl_models.reference("b").inputs[0].shape == (32, 32, 1)
    assert len(mtl_models.reference_data("b", n_samples=10)) == 10
    assert os.listdir(tmp_path) == []
