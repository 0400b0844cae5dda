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
