"""The factory: stop-gradient, transfer edges, uncertainty weighting, freezing, sharing."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_models import (BackboneSpec, HeadSpec, InputSpec, ModelSpec, OptimizerSpec, TaskSpec, build_model,
                        freeze_for_finetune)
from mtl_models.backbone import is_backbone_layer
from mtl_models.factory import make_optimizer
from mtl_models.spec import OPTIMIZERS

N = 48


def _network_b(*, stop_gradient=True, transfer=True, loss_weighting="fixed", sharing="hard"):
    return ModelSpec(
        inputs=(InputSpec("image", (16, 16, 1), mean=(0.5,), variance=(0.08,)),),
        backbone=BackboneSpec(blocks=2, filters=(8, 8), dropout=0.1, global_pooling="flatten"),
        heads=(
            HeadSpec(TaskSpec("A", "classification", num_classes=4), units=16, dropout=0.2),
            HeadSpec(TaskSpec("B", "classification", num_classes=6), units=16, transfer_from=("A",) if transfer else ()),
            HeadSpec(TaskSpec("C", "regression", activation="sigmoid"), units=8, stop_gradient=stop_gradient),
        ),
        loss_weighting=loss_weighting,
        sharing=sharing,
    )


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = {"image": rng.random((N, 16, 16, 1), dtype=np.float32)}
    y = {
        "A": rng.integers(0, 4, N).astype("int32"),
        "B": rng.integers(0, 6, N).astype("int32"),
        "C": rng.random((N, 1), dtype=np.float32),
    }
    return x, y


def _task_gradients(model, task, variables):
    x, y = _data()
    loss_fn = model.loss[task]
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = loss_fn(y[task], pred[task])
    return tape.gradient(loss, variables)


def _shared_variables(model):
    return [v for layer in model.layers if is_backbone_layer(layer) for v in layer.trainable_variables]


def _max_abs(gradients):
    return max(0.0 if g is None else float(tf.reduce_max(tf.abs(g))) for g in gradients)


def test_stop_gradient_on_makes_every_shared_gradient_exactly_zero():
    model = build_model(_network_b(stop_gradient=True))
    shared = _shared_variables(model)
    assert len(shared) >= 4
    assert _max_abs(_task_gradients(model, "C", shared)) == 0.0
    # C's own weights still learn.
    assert _max_abs(_task_gradients(model, "C", model.get_layer("C__hidden").trainable_variables)) > 0.0


def test_stop_gradient_off_lets_the_head_loss_reach_shared_weights():
    model = build_model(_network_b(stop_gradient=False))
    gradients = _task_gradients(model, "C", _shared_variables(model))
    assert all(g is not None for g in gradients)
    assert _max_abs(gradients) > 0.0


def test_stop_gradient_also_cuts_transferred_features():
    spec = _network_b().replace(
        heads=(
            HeadSpec(TaskSpec("A", "classification", num_classes=4), units=16),
            HeadSpec(TaskSpec("B", "classification", num_classes=6), units=16, transfer_from=("A",),
                     stop_gradient=True),
            HeadSpec(TaskSpec("C", "regression", activation="sigmoid"), units=8),
        )
    )
    model = build_model(spec)
    variables = _shared_variables(model) + model.get_layer("A__hidden").trainable_variables
    assert _max_abs(_task_gradients(model, "B", variables)) == 0.0


def test_transfer_edge_feeds_source_hidden_features_into_target_head():
    model = build_model(_network_b(transfer=True))
    concat = model.get_layer("B__transfer")
    a_hidden = model.get_layer("A__hidden").output
    assert any(t is a_hidden for t in concat.input)
    assert model.get_layer("B__hidden").input is concat.output
    kernel = model.get_layer("A__hidden").trainable_variables
    assert _max_abs(_task_gradients(model, "B", kernel)) > 0.0


def test_without_transfer_edge_target_loss_never_reaches_source_head():
    model = build_model(_network_b(transfer=False))
    with pytest.raises(ValueError):
        model.get_layer("B__transfer")
    gradients = _task_gradients(model, "B", model.get_layer("A__hidden").trainable_variables)
    assert all(g is None for g in gradients)


def test_uncertainty_weights_are_trainable_and_move_during_training():
    model = build_model(_network_b(loss_weighting="uncertainty"))
    layers = model.uncertainty_layers()
    assert sorted(layers) == ["A", "B", "C"]
    trainable_paths = {v.path for v in model.trainable_variables}
    assert all(layer.log_var.path in trainable_paths for layer in layers.values())
    before = {name: float(layer.log_var.numpy()) for name, layer in layers.items()}
    x, y = _data()
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = {name: float(layer.log_var.numpy()) for name, layer in layers.items()}
    assert all(abs(after[name] - before[name]) > 1e-4 for name in before)
    assert np.isfinite(history.history["loss"]).all()


def test_uncertainty_loss_matches_its_formula():
    model = build_model(_network_b(loss_weighting="uncertainty", stop_gradient=False))
    for i, layer in enumerate(model.uncertainty_layers().values()):
        layer.log_var.assign(0.1 * (i + 1))
    x, y = _data()
    pred = model(x, training=False)
    total = model.compute_loss(x=x, y=y, y_pred=pred, training=False)
    expected = 0.0
    for name, layer in model.uncertainty_layers().items():
        task_loss = model.loss[name](y[name], pred[name])
        s = float(layer.log_var.numpy())
        expected += 0.5 * np.exp(-s) * float(task_loss) + 0.5 * s
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_fixed_loss_weights_are_compiled_as_floats():
    spec = _network_b()
    weights = {"A": 1.0, "B": 1.5, "C": 0.3}
    spec = spec.replace(heads=tuple(h.__class__(**{**h.__dict__, "loss_weight": weights[h.name]}) for h in spec.heads))
    model = build_model(spec)
    x, y = _data()
    pred = model(x, training=False)
    total = float(model.compute_loss(x=x, y=y, y_pred=pred, training=False))
    expected = sum(weights[t] * float(model.loss[t](y[t], pred[t])) for t in weights)
    assert total == pytest.approx(expected, rel=1e-5)


def test_freeze_backbone_leaves_only_head_weights_trainable():
    model = build_model(_network_b().replace(freeze_backbone=True))
    trainable = {v.path for v in model.trainable_variables}
    assert trainable
    assert not any(path.startswith("backbone") for path in trainable)
    before = [v.numpy().copy() for v in _shared_variables_all(model)]
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    after = [v.numpy() for v in _shared_variables_all(model)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def _shared_variables_all(model):
    return [v for layer in model.layers if is_backbone_layer(layer) for v in layer.weights]


def test_finetune_one_head_changes_that_head_only():
    spec = _network_b()
    model = build_model(spec)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    freeze_for_finetune(model, spec, "C", learning_rate=1e-2)
    snapshot = {v.path: v.numpy().copy() for v in model.weights}
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    changed = {path for path, value in snapshot.items() if not np.array_equal(value, _weight(model, path))}
    assert changed
    assert all(path.startswith("C__") or path.startswith("C/") for path in changed), changed


@pytest.mark.parametrize("loss_weighting", ["fixed", "uncertainty"])
def test_finetune_trains_the_task_plain_loss_alone(loss_weighting):
    # Network (b): B reads A's hidden features, so B's loss would reach A's head if it counted.
    spec = _network_b(loss_weighting=loss_weighting)
    model = build_model(spec)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    log_vars = {name: float(layer.log_var.numpy()) for name, layer in model.uncertainty_layers().items()}
    assert len(log_vars) == (3 if loss_weighting == "uncertainty" else 0)
    freeze_for_finetune(model, spec, "A", learning_rate=1e-2)
    snapshot = {v.path: v.numpy().copy() for v in model.weights}
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    changed = {path for path, value in snapshot.items() if not np.array_equal(value, _weight(model, path))}
    assert changed
    assert all(path.startswith(("A__", "A/")) for path in changed), changed
    assert {name: float(layer.log_var.numpy()) for name, layer in model.uncertainty_layers().items()} == log_vars
    pred = model(x)
    assert float(model.compute_loss(x, y, pred)) == pytest.approx(float(model.loss["A"](y["A"], pred["A"])), rel=1e-5)


def _weight(model, path):
    return next(v.numpy() for v in model.weights if v.path == path)


def test_separate_branches_have_more_parameters_than_hard_sharing():
    hard = build_model(_network_b(sharing="hard")).count_params()
    separate_model = build_model(_network_b(sharing="separate"))
    assert separate_model.count_params() > hard
    assert {layer.name.split("__")[0] for layer in separate_model.layers if is_backbone_layer(layer)} == {
        "backbone_A", "backbone_B", "backbone_C"
    }


def test_normalisation_lives_inside_the_model():
    model = build_model(_network_b())
    norm = model.get_layer("image_norm")
    np.testing.assert_allclose(np.ravel(norm.mean), [0.5])
    np.testing.assert_allclose(np.ravel(norm.variance), [0.08])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_the_spec_allows_is_built_with_its_learning_rate(name):
    """The spec's optimizer names are Keras' own identifiers: no table in the factory repeats them."""
    import keras

    optimizer = make_optimizer(OptimizerSpec(name, learning_rate=0.005))
    assert isinstance(optimizer, keras.optimizers.Optimizer) and type(optimizer).__name__.lower() == name
    assert float(optimizer.learning_rate) == pytest.approx(0.005)

