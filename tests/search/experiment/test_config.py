"""The experiment file's rules, checked on parsed data: defaults, errors naming field, rule and value."""

import copy
import importlib.util
from pathlib import Path

import pytest

from search.errors import ConfigError
from search.experiment.config import KERAS_TUNER_SAMPLERS, SAMPLERS, parse_experiment

MINIMAL = {"name": "toy", "data": {"dataset": "shapes"}}


def _parse(**changes):
    return parse_experiment({**copy.deepcopy(MINIMAL), **changes})


def test_defaults_of_a_minimal_experiment():
    experiment = _parse()
    assert (experiment.engine, experiment.searcher.sampler, experiment.concurrency, experiment.seed) == (
        "ray-tune", "tpe", 2, 0)
    assert (experiment.budget.trials, experiment.budget.max_epochs, experiment.budget.time_limit_s) == (12, 10, None)
    assert (experiment.scheduler.grace_period, experiment.scheduler.reduction_factor) == (2, 3.0)
    assert (experiment.data.val_fraction, experiment.data.test_fraction) == (0.2, 0.15)
    assert _parse(engine="keras-tuner").searcher.sampler == "hyperband"
    assert len(experiment.space) == 0 and experiment.study_storage is None


def test_with_a_time_limit_trials_and_epochs_are_optional_caps():
    budget = _parse(budget={"time_limit_s": 60}).budget
    assert (budget.trials, budget.max_epochs) == (None, None)
    assert budget.describe() == ("trials until the time limit, each trained for as long as it leads; the first "
                                 "trial alone while it learns fast (at most 50%); the last 20% for the leaders alone")
    capped = _parse(budget={"time_limit_s": 60, "trials": 5, "max_epochs": 7, "lead": 0}).budget
    assert (capped.trials, capped.max_epochs) == (5, 7)
    assert capped.describe() == "5 trials within 60 s, up to 7 epochs each; the last 20% for the leaders alone"


def test_the_cooldown_is_a_fraction_of_the_time_limit_and_on_by_default_with_one():
    assert _parse(budget={"time_limit_s": 60}).budget.cooldown == 0.2
    assert _parse(budget={"time_limit_s": 60, "cooldown": 0}).budget.cooldown == 0
    assert _parse().budget.cooldown == 0  # no time limit: nothing to count down to


def test_the_lead_is_a_fraction_of_the_time_limit_and_on_by_default_with_one():
    assert _parse(budget={"time_limit_s": 60}).budget.lead == 0.5
    assert _parse(budget={"time_limit_s": 60, "lead": 0}).budget.lead == 0
    assert _parse().budget.lead == 0
    assert "the first trial alone while it learns fast (at most 50%)" in _parse(budget={"time_limit_s": 60}).budget.describe()


def test_weights_are_averaged_by_default_and_zero_turns_it_off():
    assert _parse().weight_average == 0.99 and _parse(weight_average=0).weight_average == 0


@pytest.mark.parametrize("changes, field, rule, value", [
    ({"name": "a b"}, "name", "must be 1 to 100 letters, digits", "a b"),
    ({"colour": 1}, "colour", "is not a known key", 1),
    ({"budget": {"trials": 0}}, "budget.trials", "must be an integer >= 1", 0),
    ({"budget": {"max_epochs": 2.5}}, "budget.max_epochs", "must be an integer >= 1", 2.5),
    ({"budget": {"time_limit_s": 0}}, "budget.time_limit_s", "must be a number > 0", 0),
    ({"scheduler": {"reduction_factor": 1.00000001}}, "scheduler.reduction_factor", "must be a number >= 1.5 and <= 100",
     1.00000001),
    ({"resources": {"cpus": 0}}, "resources.cpus", "must be a number > 0", 0),
    ({"resources": {"gpus": 1.5}}, "resources.gpus", "a fraction <= 1 or a whole number", 1.5),
    ({"concurrency": True}, "concurrency", "must be an integer >= 1", True),
    ({"data": {"dataset": "shapes", "split": {"val_fraction": 0.5, "test_fraction": 0.5}}},
     "data.split.test_fraction", "plus val_fraction (0.5) must be < 1", 0.5),
    ({"data": {"dataset": 3}}, "data.dataset", "must be a data set name", 3),
    ({"data": {"dataset": "shapes", "options": [1]}}, "data.options", "must be a mapping of loader options", [1]),
    ({"objective": {"metric": "shape", "weights": {"shape": 1}}}, "objective", "only one of", None),
    ({"objective": {"metrics": ["shape.accuracy"]}}, "objective.metrics", "at least two metrics", ["shape.accuracy"]),
    ({"objective": {"weights": {"shape": -1}}}, "objective.weights", "numbers >= 0", {"shape": -1}),
    ({"searcher": {"sampler": "hyperband"}}, "searcher.sampler", "must be one of ['tpe', 'random', 'cmaes'",
     "hyperband"),
    ({"engine": "keras-tuner", "searcher": {"sampler": "tpe"}}, "searcher.sampler",
     "must be one of ['hyperband', 'bayesian', 'random']", "tpe"),
    ({"space": {"backbone.filters": {"choice": [8, 16]}}, "searcher": {"initial_points": [{"backbone.filters": 12}]}},
     "searcher.initial_points[0].backbone.filters", "must be a value of that parameter's domain", 12),
    ({"searcher": {"initial_points": [{"x": 1}]}}, "searcher.initial_points[0]", "must name parameters", "x"),
    ({"study_storage": "study.db"}, "study_storage", "must be an RDB URL", "study.db"),
    ({"engine": "keras-tuner", "objective": {"metrics": ["shape.accuracy", "colour.accuracy"]}}, "objective.metrics",
     "needs engine ray-tune", "engine: keras-tuner"),
    ({"engine": "keras-tuner", "budget": {"time_limit_s": 60}}, "budget.max_epochs", "is needed with engine keras-tuner",
     None),
    ({"budget": {"max_epochs": None}}, "budget.max_epochs", "must be an integer >= 1", None),
    ({"scheduler": {"adaptive": 1}}, "scheduler.adaptive", "must be true or false", 1),
    ({"budget": {"time_limit_s": 60, "cooldown": 0.6}}, "budget.cooldown", "must be a number >= 0 and <= 0.5", 0.6),
    ({"budget": {"cooldown": 0.2}}, "budget.cooldown", "needs budget.time_limit_s", 0.2),
    ({"budget": {"time_limit_s": 60, "lead": 0.9}}, "budget.lead", "must be a number >= 0 and <= 0.8", 0.9),
    ({"budget": {"lead": 0.5}}, "budget.lead", "needs budget.time_limit_s", 0.5),
    ({"weight_average": 1}, "weight_average", "must be a number >= 0 and <= 0.9999", 1),
    ({"weight_average": -0.5}, "weight_average", "must be a number >= 0", -0.5),
    ({"searcher": {"fixed_model_first": "yes"}}, "searcher.fixed_model_first", "must be true or false", "yes"),
    ({"searcher": {"options": [3]}}, "searcher.options", "must be a mapping of the sampler's keyword arguments", [3]),
    ({"engine": "keras-tuner", "searcher": {"options": {"n_startup_trials": 3}}}, "searcher.options",
     "engine keras-tuner does not use", {"n_startup_trials": 3}),
])
def test_a_broken_rule_names_the_field_the_rule_and_the_value(changes, field, rule, value):
    with pytest.raises(ConfigError) as error:
        _parse(**changes)
    assert error.value.field == field
    assert rule in error.value.rule
    if value is not None:
        assert error.value.value == value


@pytest.mark.parametrize("sampler", sorted(set(SAMPLERS) - {"gp"}))
def test_every_optuna_sampler_name_is_accepted(sampler):
    assert _parse(searcher={"sampler": sampler}).searcher.sampler == sampler


def test_sampler_options_are_kept_for_the_sampler():
    options = {"n_startup_trials": 3, "multivariate": False, "constant_liar": False}
    assert _parse(searcher={"options": options}).searcher.options == options
    assert _parse().searcher.options == {}


@pytest.mark.parametrize("sampler", sorted(KERAS_TUNER_SAMPLERS))
def test_every_keras_tuner_sampler_name_is_accepted(sampler):
    assert _parse(engine="keras-tuner", searcher={"sampler": sampler}).searcher.sampler == sampler


def test_gp_is_accepted_only_where_pytorch_is_installed():
    """Optuna's GPSampler needs PyTorch, which this project does not install: say so before anything starts."""
    if importlib.util.find_spec("torch") is not None:
        assert _parse(searcher={"sampler": "gp"}).searcher.sampler == "gp"
        return
    with pytest.raises(ConfigError, match="gp needs PyTorch, which is not installed") as error:
        _parse(searcher={"sampler": "gp"})
    assert error.value.field == "searcher.sampler"


def test_a_relative_data_path_is_resolved_once_against_the_experiment_file(tmp_path):
    raw = {"name": "toy", "data": {"dataset": "npz", "options": {"path": "data/my.npz", "tasks": []}}}
    experiment = parse_experiment(raw, source=str(tmp_path / "configs" / "toy.yaml"))
    resolved = str((tmp_path / "configs" / "data" / "my.npz").resolve())
    assert experiment.data.options["path"] == resolved
    assert experiment.portable()["data"]["options"]["path"] == resolved  # the copy a run keeps
    assert raw["data"]["options"]["path"] == "data/my.npz"  # the parsed data itself is left alone
    absolute = parse_experiment({**raw, "data": {"dataset": "npz", "options": {"path": "/x/my.npz"}}}, source="a.yaml")
    assert absolute.data.options["path"] == str(Path("/x/my.npz"))
