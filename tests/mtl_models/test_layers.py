"""Custom layers: config round trips through JSON, and each does what it says."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_models import StopGradient, TaskUncertainty


@pytest.mark.parametrize("layer", [StopGradient(name="sg"), TaskUncertainty("mse", initial_log_var=0.5, name="t")])
def test_config_round_trips_through_json(layer):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()


def test_stop_gradient_is_identity_without_gradient():
    x = tf.Variable(np.arange(6, dtype="float32").reshape(2, 3))
    with tf.GradientTape() as tape:
        y = StopGradient()(x)
        loss = tf.reduce_sum(y * y)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert tape.gradient(loss, x) is None


def test_task_uncertainty_is_identity_with_one_trainable_weight():
    layer = TaskUncertainty("binary_crossentropy", initial_log_var=0.25)
    x = np.ones((2, 4), dtype="float32")
    np.testing.assert_array_equal(layer(x).numpy(), x)
    assert len(layer.trainable_weights) == 1
    assert float(layer.log_var.numpy()) == pytest.approx(0.25)


def test_task_uncertainty_rejects_a_missing_loss_name():
    with pytest.raises(ValueError, match="Received: loss=''"):
        TaskUncertainty("")
