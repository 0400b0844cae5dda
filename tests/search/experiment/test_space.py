"""The search space: every domain kind, conditions, list choices, and what each engine samples from it."""

import json

import keras_tuner as kt
import optuna
import pytest

from search.errors import ConfigError
from search.experiment.space import SPACE_ROOTS, Param, parse_space

SPACE = {
    "backbone.filters": {"choice": [16, 32, 64]},
    "backbone.blocks": {"int": [1, 5]},
    "heads.shape.units": {"int": [16, 256], "log": True},
    "batch_size": {"int": [16, 64], "step": 16},
    "optimizer.learning_rate": {"float": ["1e-4", 1.0e-2], "log": True},  # YAML 1.1 reads 1e-4 as a string
    "backbone.dropout": {"float": [0.0, 0.5], "step": 0.1},
    "loss_weighting": {"choice": ["fixed", "uncertainty"]},
    "heads.midpoint.loss_weight": {"float": [1.0, 50.0], "when": {"loss_weighting": "fixed"}},
    "heads.B.transfer_from": {"choice": [[], ["A"]]},
    "heads.B.units": {"int": [64, 512], "when": {"heads.B.transfer_from": [["A"]]}},
}


def test_every_domain_kind_is_parsed_with_its_options():
    space = {p.name: p for p in parse_space(SPACE)}
    assert space["backbone.filters"] == Param("backbone.filters", "choice", values=(16, 32, 64))
    assert (space["backbone.blocks"].kind, space["backbone.blocks"].low, space["backbone.blocks"].high) == ("int", 1, 5)
    assert space["heads.shape.units"].log and space["batch_size"].step == 16
    assert space["optimizer.learning_rate"].low == 1e-4 and isinstance(space["optimizer.learning_rate"].low, float)
    assert space["backbone.dropout"].step == pytest.approx(0.1)
    assert space["heads.midpoint.loss_weight"].when == {"loss_weighting": ("fixed",)}
    assert space["heads.B.units"].when == {"heads.B.transfer_from": (["A"],)}
    assert space["backbone.blocks"].corners() == [1, 5] and space["backbone.filters"].corners() == [16, 32, 64]
    assert parse_space(SPACE).ranges()["heads.shape.units"] == (16, 256, True)
    assert "backbone.filters" not in parse_space(SPACE).ranges()  # choices have no range


def test_the_space_may_address_the_spec_s_fields_and_the_batch_size():
    assert set(SPACE_ROOTS) == {"backbone", "optimizer", "augmentation", "heads", "loss_weighting", "sharing",
                                "batch_size"}


@pytest.mark.parametrize("raw, field, rule", [
    ({"nothing.x": {"choice": [1]}}, "space.nothing.x", "must be a spec key starting with one of"),
    ({"backbone.blocks": [1, 2]}, "space.backbone.blocks", "must be a mapping such as"),
    ({"backbone.blocks": {"int": [1, 4], "choice": [1]}}, "space.backbone.blocks", "exactly one of"),
    ({"backbone.blocks": {"int": [1, 4], "lg": True}}, "space.backbone.blocks.lg", "is not a known key"),
    ({"backbone.blocks": {"int": [4, 1]}}, "space.backbone.blocks.int", "`low < high` must hold"),
    ({"backbone.blocks": {"int": [1.5, 4]}}, "space.backbone.blocks.int", "must hold integers"),
    ({"backbone.dropout": {"float": [0, "x"]}}, "space.backbone.dropout.float", "must hold numbers"),
    ({"backbone.dropout": {"float": [0, 0.5], "log": True}}, "space.backbone.dropout.float", "low > 0 on a log"),
    ({"backbone.dropout": {"float": [0.1, 0.5], "log": True, "step": 0.1}}, "space.backbone.dropout.step",
     "cannot be combined with log"),
    ({"backbone.filters": {"choice": []}}, "space.backbone.filters.choice", "must be a non-empty list"),
    ({"backbone.filters": {"choice": [8, 8]}}, "space.backbone.filters.choice", "must not repeat a value"),
    ({"backbone.filters": {"choice": [8], "step": 2}}, "space.backbone.filters", "log and step apply to int"),
    ({"heads.a.units": {"int": [1, 4], "when": {"sharing": "hard"}}}, "space.heads.a.units.when",
     "must name a parameter declared above it"),
    ({"sharing": {"choice": ["hard"]}, "heads.a.units": {"int": [1, 4], "when": {"sharing": "soft"}}},
     "space.heads.a.units.when.sharing", "must be among that parameter's choices"),
])
def test_a_malformed_domain_is_refused_naming_its_field(raw, field, rule):
    with pytest.raises(ConfigError, match=rule) as error:
        parse_space(raw)
    assert error.value.field == field


def test_list_choices_travel_through_optuna_as_json_and_come_back_as_lists():
    param = parse_space({"heads.B.transfer_from": {"choice": [[], ["A"], "A"]}}).params[0]
    assert param.encoded_choices() == ["[]", '["A"]', "A"]
    assert param.decode('["A"]') == ["A"] and param.decode("A") == "A" and param.decode("[]") == []
    point = parse_space(SPACE).encode_point({"heads.B.transfer_from": ["A"], "backbone.filters": 32})
    assert point == {"heads.B.transfer_from": json.dumps(["A"]), "backbone.filters": 32}


def test_optuna_samples_each_domain_and_only_the_parameters_whose_condition_holds():
    space = parse_space(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(40):
        trial = study.ask()
        sampled = space.sample_optuna(trial)
        assert set(trial.params) == set(sampled)  # the study holds exactly what the trial used
        assert sampled["backbone.filters"] in (16, 32, 64)
        assert 1 <= sampled["backbone.blocks"] <= 5 and 16 <= sampled["heads.shape.units"] <= 256
        assert sampled["batch_size"] in (16, 32, 48, 64)
        assert 1e-4 <= sampled["optimizer.learning_rate"] <= 1e-2
        assert sampled["backbone.dropout"] == pytest.approx(round(sampled["backbone.dropout"], 1))
        assert ("heads.midpoint.loss_weight" in sampled) == (sampled["loss_weighting"] == "fixed")
        assert ("heads.B.units" in sampled) == (sampled["heads.B.transfer_from"] == ["A"])
        seen.append(sampled)
        study.tell(trial, 0.0)
    assert {s["loss_weighting"] for s in seen} == {"fixed", "uncertainty"}
    assert {tuple(s["heads.B.transfer_from"]) for s in seen} == {(), ("A",)}


def test_keras_tuner_reads_the_same_space_with_conditions_as_scopes():
    space = parse_space(SPACE)
    for weighting, edge in (("fixed", ["A"]), ("uncertainty", [])):
        hp = kt.HyperParameters()
        hp.values.update({"loss_weighting": weighting, "heads.B.transfer_from": json.dumps(edge)})
        sampled = space.sample_keras_tuner(hp)
        assert sampled["loss_weighting"] == weighting and sampled["heads.B.transfer_from"] == edge
        assert ("heads.midpoint.loss_weight" in sampled) == (weighting == "fixed")
        assert ("heads.B.units" in sampled) == (edge == ["A"])
        assert set(sampled) <= set(SPACE)
    assert isinstance(hp.get("backbone.blocks"), int) and hp.get("batch_size") in (16, 32, 48, 64)


def test_the_fixed_model_is_a_point_of_the_space_where_its_domain_holds_it():
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare

    prepared = prepare(parse_experiment({
        "name": "fixed", "data": {"dataset": "shapes", "options": {"n_samples": 60, "image_size": 16}},
        "model": {"backbone": {"blocks": 2, "filters": 8}, "heads": {"midpoint": {"units": 16, "loss_weight": 4.0}},
                  "optimizer": {"learning_rate": 0.003}},
        "batch_size": 32,
        "space": {
            "backbone.filters": {"choice": [8, 16]},          # written in the model section
            "backbone.dropout": {"float": [0.0, 0.5]},         # the spec's default, 0.0
            "backbone.blocks": {"int": [3, 4]},               # 2 lies outside: left to the sampler
            "heads.midpoint.units": {"int": [8, 64], "log": True},
            "loss_weighting": {"choice": ["fixed", "uncertainty"]},
            "heads.midpoint.loss_weight": {"float": [1.0, 10.0], "when": {"loss_weighting": "fixed"}},
            "optimizer.learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True},
            "batch_size": {"choice": [32, 64]},
        },
    }))
    assert prepared.fixed_point() == {"backbone.filters": 8, "backbone.dropout": 0.0, "heads.midpoint.units": 16,
                                      "loss_weighting": "fixed", "heads.midpoint.loss_weight": 4.0,
                                      "optimizer.learning_rate": 0.003, "batch_size": 32}
    assert not Param("x", "choice", values=(1, 2)).holds(True) and Param("x", "choice", values=(True,)).holds(True)


def test_the_space_may_search_a_pretrained_backbone_and_augmentation_and_refuses_what_breaks_a_label():
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare

    experiment = {
        "name": "apps", "data": {"dataset": "shapes", "options": {"n_samples": 60, "image_size": 32}},
        "model": {"backbone": {"kind": "keras_application", "weights": "none"}, "augmentation": {"contrast": 0.1}},
        "space": {
            "backbone.kind": {"choice": ["conv", "keras_application"]},
            "backbone.name": {"choice": ["MobileNetV3Small", "EfficientNetB0", "ResNet50"]},
            "backbone.frozen_epochs": {"int": [0, 3]},
            "backbone.unfreeze_layers": {"int": [0, 40]},
            "backbone.fine_tune_lr_factor": {"float": [0.01, 1.0], "log": True},
            "augmentation.contrast": {"float": [0.0, 0.5]},
        },
    }
    prepared = prepare(parse_experiment(experiment))
    spec, _ = prepared.spec_for({"backbone.name": "ResNet50", "backbone.unfreeze_layers": 12,
                                 "augmentation.contrast": 0.3})
    assert (spec.backbone.kind, spec.backbone.name, spec.backbone.unfreeze_layers) == ("keras_application",
                                                                                       "ResNet50", 12)
    assert spec.augmentation.contrast == 0.3
    assert prepared.fixed_point()["backbone.kind"] == "keras_application"
    # A flip would move the shape's midpoint, a position target, and not its label.
    experiment["space"] = {"augmentation.flip": {"choice": ["none", "horizontal"]}}
    with pytest.raises(ConfigError, match=r"space.augmentation.flip.*would make task 'midpoint' wrong"):
        prepare(parse_experiment(experiment))
    experiment["space"] = {"augmentation.mirror": {"choice": [True]}}
    with pytest.raises(ConfigError, match="must name a field of the model spec"):
        prepare(parse_experiment(experiment))
