"""A trial's checkpoint, for real: the Ray Tune trainable saved after two epochs and restored in a new one."""

import numpy as np
import pytest
from ray import tune

from search.experiment.config import parse_experiment
from search.experiment.prepared import prepare


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from search.engines.cluster import start_ray

    start_ray(None)  # the embedded Ray a search starts
    yield
    ray.shutdown()


def test_a_restored_trial_goes_on_with_its_weights_optimizer_average_and_epoch(local_ray, tiny, tmp_path):
    from search.engines.trainable import TrialTrainable

    trainable = tune.with_parameters(TrialTrainable, prepared=prepare(parse_experiment(tiny)))
    config = {"backbone.filters": 4, "optimizer.learning_rate": 0.004}
    first = trainable(config=config)
    first.train(), first.train()
    checkpoint = first.save(str(tmp_path / "checkpoint"))
    second = trainable(config=config)
    assert any(not np.array_equal(a, b) for a, b in zip(first.model.get_weights(), second.model.get_weights()))
    second.restore(checkpoint)
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    saved, restored = first.model.optimizer, second.model.optimizer
    assert int(restored.iterations.numpy()) == int(saved.iterations.numpy()) > 0
    for a, b in zip(saved.variables, restored.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(first.averaging.averaged_weights(), second.averaging.averaged_weights()):
        np.testing.assert_array_equal(a, b)
    assert float(second.averaging.steps.numpy()) == float(first.averaging.steps.numpy())
    assert second.scorer.best == first.scorer.best
    # It trains on as the third epoch, from where the first left off.
    assert second.train()["epoch"] == 3
    first.stop(), second.stop()


def test_a_pretrained_backbone_s_trial_restored_from_a_frozen_epoch_trains_on_thawed(local_ray, tiny, tmp_path):
    from mtl_models.fine_tune import applications
    from search.engines.trainable import TrialTrainable

    tiny["data"]["options"] = {"n_samples": 64, "image_size": 32}
    tiny["model"]["backbone"] = {"kind": "keras_application", "frozen_epochs": 1, "fine_tune_lr_factor": 0.5}
    tiny["space"] = {"optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}}
    trainable = tune.with_parameters(TrialTrainable, prepared=prepare(parse_experiment(tiny)))
    config = {"optimizer.learning_rate": 0.004}
    first = trainable(config=config)
    first.train()  # epoch 1: the application frozen
    assert not applications(first.model)[0].trainable_weights
    checkpoint = first.save(str(tmp_path / "checkpoint"))
    second = trainable(config=config)
    second.restore(checkpoint)
    assert second.train()["epoch"] == 2  # epoch 2: thawed, at half the rate
    assert applications(second.model)[0].trainable_weights
    assert float(second.model.optimizer.learning_rate.numpy()) == pytest.approx(0.002)
    first.stop(), second.stop()
