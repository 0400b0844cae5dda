"""Keras Applications backbones: they train with heads, transfer edges and stop-gradient; the fine-tuning
schedule freezes, then thaws; weights files load; pretrained inputs are preprocessed their way; models save.

Nothing is downloaded: weights are none, or a file the test writes."""

import json

import keras
import numpy as np
import pytest

from mtl_models import (AugmentationSpec, BackboneSpec, CaffePreprocess, HeadSpec, InputSpec, ModelSpec, OptimizerSpec,
                        SpecError, TaskSpec, apply_fine_tune, build_model, plain_model)
from mtl_models.fine_tune import FineTuneSchedule, applications
from tests.mtl_models.fresh_process import load_and_predict

N = 8
LR = 1e-3


def _spec(shape=(32, 32, 3), sharing="hard", **backbone):
    channels = shape[-1]
    return ModelSpec(
        inputs=(InputSpec("image", shape, mean=(120.0,) * channels, variance=(3000.0,) * channels),),
        backbone=BackboneSpec(kind="keras_application", **backbone),
        heads=(
            HeadSpec(TaskSpec("kind", "classification", num_classes=3), units=8),
            HeadSpec(TaskSpec("size", "regression"), units=8, transfer_from=("kind",)),
            HeadSpec(TaskSpec("flag", "binary"), units=4, stop_gradient=True),
        ),
        sharing=sharing,
        optimizer=OptimizerSpec(learning_rate=LR),
    )


def _data(shape=(32, 32, 3)):
    rng = np.random.default_rng(0)
    inputs = {"image": rng.random((N, *shape), dtype=np.float32) * 255.0}  # raw pixels
    targets = {"kind": rng.integers(0, 3, N).astype("int32"), "size": rng.random((N, 1), dtype=np.float32),
               "flag": rng.integers(0, 2, (N, 1)).astype("float32")}
    return inputs, targets


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def _train_epoch(model, spec, epoch, data):
    """One epoch as the search's trainable runs it: the schedule, then one ``fit`` from ``initial_epoch``."""
    model.optimizer.learning_rate.assign(apply_fine_tune(model, spec, epoch, LR))
    history = model.fit(*data, batch_size=4, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_the_schedule_trains_the_heads_on_a_frozen_application_then_thaws_its_top_layers():
    spec = _spec(frozen_epochs=1, unfreeze_layers=10, fine_tune_lr_factor=0.1)
    model, data = build_model(spec), _data()
    (app,) = applications(model)
    assert app.name == "backbone__mobilenetv3small"
    heads = [w for w in model.trainable_weights if not any(w is a for a in app.weights)]

    assert apply_fine_tune(model, spec, 0, LR) == LR
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in heads}
    frozen, head = _values(app.weights), _values(heads)
    _train_epoch(model, spec, 0, data)
    assert not any(_changed(frozen, app.weights))  # not a weight of the application moved, batch-norm's neither
    assert all(_changed(head, heads))  # every head learnt, the stop-gradient one too

    assert apply_fine_tune(model, spec, 1, LR) == pytest.approx(LR * 0.1)
    top = [w for layer in app.layers[-10:] for w in layer.trainable_weights]
    bottom = [w for layer in app.layers[:-10] for w in layer.weights]
    assert top and len(model.trainable_weights) == len(heads) + len(top)
    before_top, before_bottom = _values(top), _values(bottom)
    _train_epoch(model, spec, 1, data)
    assert any(_changed(before_top, top)) and not any(_changed(before_bottom, bottom))


def test_the_schedule_is_idempotent_and_holds_on_a_model_rebuilt_from_a_frozen_epoch_s_checkpoint():
    spec = _spec(frozen_epochs=1, fine_tune_lr_factor=0.5)
    model, data = build_model(spec), _data()
    _train_epoch(model, spec, 0, data)
    # A checkpoint as search.engines.checkpoint keeps one: the weights and the optimizer's variables.
    weights, state = _values(model.weights), _values(model.optimizer.variables)

    again = build_model(spec)
    again.optimizer.build(again.trainable_variables)  # what loading a checkpoint does before it assigns
    assert len(again.optimizer.variables) == len(state)  # the same whether the epoch saved was frozen or not
    for variable, value in zip([*again.weights, *again.optimizer.variables], [*weights, *state]):
        variable.assign(value)
    assert apply_fine_tune(again, spec, 1, LR) == pytest.approx(LR * 0.5)
    step = again.train_function
    assert apply_fine_tune(again, spec, 1, LR) == pytest.approx(LR * 0.5)
    assert again.train_function is step  # nothing changed, so nothing was traced again
    thawed = applications(again)[0].trainable_weights
    assert thawed and {id(w) for w in thawed} <= {id(w) for w in again.trainable_weights}
    _train_epoch(again, spec, 1, data)  # the optimizer knows the thawed weights


def test_in_one_long_fit_the_callback_applies_the_schedule_and_keeps_a_lowered_rate():
    spec = _spec(frozen_epochs=1, unfreeze_layers=4, fine_tune_lr_factor=0.1)
    model, data = build_model(spec), _data()
    rates, trainable = [], []

    class Halve(keras.callbacks.Callback):  # stands for ReduceLROnPlateau
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(float(self.model.optimizer.learning_rate.numpy()))
            trainable.append(len(self.model.trainable_weights))

        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate.assign(self.model.optimizer.learning_rate * 0.5)

    model.fit(*data, batch_size=4, epochs=3, verbose=0, callbacks=[FineTuneSchedule(spec), Halve()])
    assert rates == pytest.approx([LR, LR * 0.5 * 0.1, LR * 0.25 * 0.1])
    assert trainable[0] < trainable[1] == trainable[2]


def test_with_separate_trunks_each_head_has_its_own_application_and_freeze_backbone_keeps_them_frozen():
    spec = _spec(sharing="separate", frozen_epochs=2)
    model = build_model(spec)
    assert sorted(a.name for a in applications(model)) == [f"backbone_{t}__mobilenetv3small"
                                                          for t in ("flag", "kind", "size")]
    apply_fine_tune(model, spec, 1, LR)
    assert not any(a.trainable_weights for a in applications(model))
    apply_fine_tune(model, spec, 2, LR)
    assert all(a.trainable for a in applications(model))
    frozen = spec.replace(freeze_backbone=True)
    model = build_model(frozen)
    assert apply_fine_tune(model, frozen, 5, LR) == LR and not any(a.trainable for a in applications(model))


def test_a_weights_file_loads_into_the_application_and_the_image_reaches_it_raw(tmp_path):
    keras.utils.set_random_seed(1)
    saved = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path / "mobilenet.weights.h5")
    saved.save_weights(path)
    keras.utils.set_random_seed(2)
    model = build_model(_spec(weights=path))
    (app,) = applications(model)
    for mine, theirs in zip(app.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    names = [layer.name for layer in model.layers]
    assert "image_norm" not in names  # the application rescales raw pixels itself
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in app.layers)
    assert "image_norm" in [layer.name for layer in build_model(_spec()).layers]  # without weights: the z-score

    gray = build_model(_spec(shape=(32, 32, 1), weights=path))  # repeated to RGB, for weights learnt on RGB
    assert "backbone__to_rgb" in [layer.name for layer in gray.layers]
    np.testing.assert_array_equal(applications(gray)[0].weights[0].numpy(), saved.weights[0].numpy())
    with pytest.raises(SpecError, match="`backbone.weights`: must name an existing weights file"):
        build_model(_spec(weights=str(tmp_path / "missing.weights.h5")))


@pytest.mark.parametrize("name", ["EfficientNetB0", "ResNet50"])
def test_the_larger_applications_build_and_predict(name):
    model = build_model(_spec(name=name))
    assert [a.name for a in applications(model)] == [f"backbone__{name.lower()}"]
    out = model.predict({"image": _data()[0]["image"][:2]}, verbose=0)
    assert out["kind"].shape == (2, 3) and np.isfinite(out["size"]).all()


def test_caffe_preprocess_is_resnet50_s_preprocess_input_and_round_trips():
    layer = CaffePreprocess(name="pre")
    x = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32) * 255.0
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(layer.keras_equivalent()(x).numpy(), layer(x).numpy())
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert keras.saving.deserialize_keras_object(config, safe_mode=True).get_config() == layer.get_config()


@pytest.mark.parametrize("imports", ["keras, mtl_models", "keras"])
def test_a_pretrained_model_saves_loads_in_safe_mode_and_exports_without_mtl_models(tmp_path, imports):
    """From a weights file, on a gray image, augmented, with a frozen application: every input path at once."""
    path = str(tmp_path / "mobilenet.weights.h5")
    keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    spec = _spec(shape=(32, 32, 1), weights=path, frozen_epochs=1)
    spec = spec.replace(augmentation=AugmentationSpec(flip="vertical", contrast=0.3))
    model = build_model(spec)
    apply_fine_tune(model, spec, 0, LR)
    raw = _data((32, 32, 1))[0]
    expected = model.predict(raw, verbose=0)
    got, info = load_and_predict(tmp_path, model if imports != "keras" else plain_model(model), raw, imports)
    assert info["mtl_models"] == (imports != "keras") and "Lambda" not in info["layers"]
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


def test_plain_export_computes_resnet50_s_preprocessing_with_keras_layers_alone(tmp_path):
    image = keras.Input((8, 8, 3), name="image")
    x = CaffePreprocess(name="backbone__preprocess")(image)
    out = keras.layers.Dense(2, name="kind")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model({"image": image}, {"kind": out})
    raw = {"image": np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32) * 255.0}
    got, info = load_and_predict(tmp_path, plain_model(model), raw, "keras")
    assert not info["mtl_models"] and "CaffePreprocess" not in info["layers"]
    np.testing.assert_array_equal(got["kind"], model.predict(raw, verbose=0)["kind"])
