"""Every shipped experiment file validates in full against its data (no Ray, no training)."""

from pathlib import Path

import pytest

from search.config import load_experiment
from search.prepared import prepare

CONFIGS = sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.yaml"))


def test_there_is_one_config_per_reference_network_and_the_main_job():
    assert {p.stem for p in CONFIGS} >= {"a", "b", "c", "d", "e", "shapes"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_every_corner_of_its_space_builds(path):
    prepared = prepare(load_experiment(path))
    assert len(prepared.experiment.space) >= 5
    spec, batch_size = prepared.spec_for({})
    assert {t.name for t in spec.tasks} == {t.name for t in prepared.tasks}
    assert batch_size >= 1
    assert 0 < prepared.experiment.budget.trials <= 50
