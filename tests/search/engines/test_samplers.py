"""Every searcher name an experiment may use builds a real searcher that samples the experiment's space."""

import importlib.util

import keras_tuner as kt
import optuna
import pytest

from search.engines.samplers import check_options, keras_tuner_class, make_sampler
from search.errors import ConfigError
from search.experiment.config import KERAS_TUNER_SAMPLERS, SAMPLERS, SearcherConfig
from search.experiment.space import parse_space

SPACE = parse_space({
    "loss_weighting": {"choice": ["fixed", "uncertainty"]},
    "heads.midpoint.loss_weight": {"float": [1.0, 50.0], "log": True, "when": {"loss_weighting": "fixed"}},
    "heads.shape.transfer_from": {"choice": [["colour"], []]},
    "backbone.blocks": {"int": [1, 4]},
    "optimizer.learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True},
})


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_optuna_sampler_samples_the_space(name):
    if name == "gp" and importlib.util.find_spec("torch") is None:
        pytest.skip("Optuna's GPSampler needs PyTorch, not installed here (the config refuses gp: test_config.py)")
    sampler = make_sampler(name, seed=0)
    assert type(sampler).__name__ == SAMPLERS[name]
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for i in range(6):  # past every sampler's start-up trials, where the model-based ones take over
        trial = study.ask()
        sampled = SPACE.sample_optuna(trial)
        assert set(sampled) == set(trial.params)
        assert sampled["heads.shape.transfer_from"] in (["colour"], [])
        study.tell(trial, sampled["optimizer.learning_rate"] * 100 - sampled["backbone.blocks"] + i / 10)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 6


@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - {"gp"}))
def test_the_seed_changes_what_every_optuna_sampler_samples(name):
    """Each of the first trials, past those sampled at random while the sampler learns the space."""
    runs = []
    for seed in (0, 1):
        study = optuna.create_study(sampler=make_sampler(name, seed=seed), direction="maximize")
        points = []
        for i in range(3):
            trial = study.ask()
            points.append(SPACE.sample_optuna(trial))
            study.tell(trial, float(i))
        runs.append(points)
    assert all(a != b for a, b in zip(*runs)), runs


def _points(sampler, trials: int) -> list[dict]:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    points = []
    for i in range(trials):
        trial = study.ask()
        points.append(SPACE.sample_optuna(trial))
        study.tell(trial, points[-1]["optimizer.learning_rate"] * 100 + i / 10)
    return points


def test_options_reach_the_sampler():
    """searcher.options.n_startup_trials: 2 hands trial 3 to the model where Optuna's default (10) samples at random:
    the first two trials are the same random points, the third differs."""
    default, two = _points(make_sampler("tpe", 0), 3), _points(make_sampler("tpe", 0, {"n_startup_trials": 2}), 3)
    assert default[:2] == two[:2] and default[2] != two[2]
    assert _points(make_sampler("tpe", 0, {"n_startup_trials": 2}), 3) == two  # the seed still decides


@pytest.mark.parametrize(("sampler", "options", "field", "rule"), [
    ("tpe", {"n_startup": 3}, "searcher.options.n_startup", "must be a keyword argument of Optuna's TPESampler"),
    ("tpe", {"seed": 3}, "searcher.options.seed", "must be a keyword argument"),  # the experiment's seed decides
    ("tpe", {"n_startup_trials": "3"}, "searcher.options.n_startup_trials", "must be an integer"),
    ("tpe", {"multivariate": "yes"}, "searcher.options.multivariate", "must be true or false"),
    # Optuna builds these samplers, and fails only when it first samples past its start-up trials
    ("tpe", {"n_ei_candidates": 0}, "searcher.options", "were refused by Optuna's TPESampler"),
    ("qmc", {"qmc_type": "latin"}, "searcher.options", "were refused by Optuna's QMCSampler"),
])
def test_sampler_options_that_the_sampler_refuses_are_refused_before_the_search(sampler, options, field, rule):
    with pytest.raises(ConfigError) as error:
        check_options(SearcherConfig(sampler=sampler, options=options), SPACE)
    assert error.value.field == field and rule in error.value.rule


def test_sampler_options_the_sampler_takes_pass():
    check_options(SearcherConfig(options={"n_startup_trials": 3, "multivariate": False, "constant_liar": False}), SPACE)


@pytest.mark.parametrize("name", sorted(KERAS_TUNER_SAMPLERS))
def test_every_keras_tuner_name_is_a_tuner(name):
    tuner = keras_tuner_class(name)
    assert issubclass(tuner, kt.Tuner) and tuner.__name__ == KERAS_TUNER_SAMPLERS[name]


def test_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="must be one of"):
        make_sampler("annealing", seed=0)
    with pytest.raises(ValueError, match="must be one of"):
        keras_tuner_class("tpe")
