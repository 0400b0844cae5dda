"""Weight averaging (search/engines/averaging.py) on a real Keras model: what is validated, saved, trained on."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from search.engines.averaging import WeightAverage  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(256, 1))).astype("float32")
    return x, y


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def _fit_epochwise(model, callbacks, epochs=3):
    x, y = _data()
    logs = []
    for epoch in range(epochs):  # one fit per epoch, as the Ray Tune trainable trains
        history = model.fit(x, y, batch_size=32, initial_epoch=epoch, epochs=epoch + 1, shuffle=False,
                            validation_data=(x[:64], y[:64]), callbacks=callbacks, verbose=0)
        logs.append(history.history["val_loss"][-1])
    return logs


def test_validation_sees_the_average_and_training_goes_on_from_the_raw_weights():
    plain = _model()
    _fit_epochwise(plain, [])
    averaged_model = _model()
    averaging = WeightAverage(0.9)
    val_losses = _fit_epochwise(averaged_model, [averaging])
    # Training is untouched: the raw weights are those of the same run without averaging.
    for a, b in zip(plain.get_weights(), averaged_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(averaged_model.get_weights(), averaging.raw_weights()):
        np.testing.assert_array_equal(a, b)
    average = averaging.averaged_weights()
    assert any(not np.allclose(a, b) for a, b in zip(average, plain.get_weights()))
    # The last epoch's validation loss is the averaged weights' loss, not the raw weights'.
    x, y = _data()
    raw_loss = averaged_model.evaluate(x[:64], y[:64], verbose=0)
    averaged_model.set_weights(average)
    assert val_losses[-1] == pytest.approx(averaged_model.evaluate(x[:64], y[:64], verbose=0), rel=1e-5)
    assert val_losses[-1] != pytest.approx(raw_loss, rel=1e-3)


def test_a_checkpoint_after_it_saves_the_averaged_weights(tmp_path):
    model = _model()
    averaging = WeightAverage(0.9)
    x, y = _data()
    path = tmp_path / "best.keras"
    model.fit(x, y, batch_size=32, epochs=2, validation_data=(x[:64], y[:64]), verbose=0,
              callbacks=[averaging, keras.callbacks.ModelCheckpoint(str(path))])
    saved = keras.models.load_model(path).get_weights()
    for a, b in zip(saved, averaging.averaged_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(saved, model.get_weights()))  # the model trains on raw


def test_the_first_steps_follow_the_weights_closely():
    """The warm-up (momentum (1 + t) / (10 + t) below the set one): after one step the average is mostly the weights."""
    model = _model()
    before = [np.array(w) for w in model.get_weights()]
    averaging = WeightAverage(0.999)
    x, y = _data()
    model.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0, callbacks=[averaging])
    after, average = model.get_weights(), averaging.averaged_weights()
    kernel = 0  # first Dense kernel: average = 2/11 x before + 9/11 x after
    np.testing.assert_allclose(average[kernel], 2 / 11 * before[kernel] + 9 / 11 * after[kernel], rtol=1e-4, atol=1e-6)


def test_momentum_out_of_range_is_refused():
    with pytest.raises(ValueError, match="momentum"):
        WeightAverage(1.0)
