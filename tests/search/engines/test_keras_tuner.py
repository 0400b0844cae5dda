"""The KerasTuner engine: the same space, objective and records as the Ray Tune engine, in one process."""

import copy
import json

import keras_tuner as kt
import optuna
import pytest
import yaml

import search
from search.cli import main
from search.experiment.space import parse_space

SPACE = {
    "loss_weighting": {"choice": ["fixed", "uncertainty"]},
    "heads.midpoint.loss_weight": {"float": [1.0, 50.0], "log": True, "when": {"loss_weighting": "fixed"}},
    "heads.shape.transfer_from": {"choice": [["colour"], []]},
    "backbone.filters": {"choice": [4, 8]},
    "backbone.residual": {"choice": [False, True]},
    "heads.shape.units": {"int": [8, 32], "log": True},
    "optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True},
}


def _write(tmp_path, data):
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_one_space_declaration_gives_the_same_parameters_to_both_engines():
    space = parse_space(SPACE)
    for weighting in ("fixed", "uncertainty"):
        hp = kt.HyperParameters()
        hp.values["loss_weighting"] = weighting
        from_kt = space.sample_keras_tuner(hp)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial({"loss_weighting": weighting})
        from_optuna = space.sample_optuna(study.ask())
        assert set(from_kt) == set(from_optuna)
        assert ("heads.midpoint.loss_weight" in from_kt) == (weighting == "fixed")
        assert from_kt["heads.shape.transfer_from"] in (["colour"], [])  # JSON-encoded choices come back decoded
        assert from_kt["backbone.residual"] is False  # a bool, not KerasTuner's 0


@pytest.mark.parametrize("sampler", ["hyperband", "bayesian"])
def test_keras_tuner_search_writes_the_same_records_and_leaderboard(tmp_path, tiny_template, sampler):
    data = copy.deepcopy(tiny_template)
    data.update(name=f"kt_{sampler}", engine="keras-tuner", searcher={"sampler": sampler},
                budget={"trials": 4, "max_epochs": 3}, space=SPACE)
    lines = []
    frame = search.run(_write(tmp_path, data), results_dir=tmp_path / "results", progress=lines.append)
    import ray

    assert not ray.is_initialized() and "KerasTuner, no Ray" in lines[0]
    assert len(frame) == 4 and frame["objective"].notna().all()
    assert list(frame["rank"]) == [1, 2, 3, 4]
    run_dir = tmp_path / "results" / f"kt_{sampler}"
    for path in (run_dir / "trials").glob("*.json"):
        record = json.loads(path.read_text())
        assert set(record["params"]) <= set(SPACE)
        assert isinstance(record["params"]["backbone.residual"], bool)
        assert 8 <= record["params"]["heads.shape.units"] <= 32
        assert ("heads.midpoint.loss_weight" in record["params"]) == (record["params"]["loss_weighting"] == "fixed")
        assert record["objective"] == pytest.approx(max(row["val_objective"] for row in record["history"]))
        assert record["epochs"] == record["history"][-1]["epoch"] <= 3
        _assert_timed(record)
    if sampler == "bayesian":
        assert (frame["status"] == "completed").all()
    else:  # Hyperband's first bracket trains most trials for fewer epochs
        assert (frame["status"] == "stopped early").any()
    assert "# Leaderboard: kt_" in (run_dir / "leaderboard.md").read_text()


def _assert_timed(record):
    """Each epoch carries when training began (after start-up) and training seconds so far (bench/ reads them)."""
    history = record["history"]
    assert history[0]["first_step_at"] >= record["started_at"]
    seconds = [row["train_s"] for row in history]
    assert all(0 < a < b for a, b in zip(seconds, seconds[1:])) and seconds[-1] <= record["wall_s"]


def test_keras_tuner_stops_a_running_trial_at_the_wall_budget(tmp_path, tiny_template):
    data = copy.deepcopy(tiny_template)
    data.update(name="kt_deadline", engine="keras-tuner", searcher={"sampler": "random"},
                budget={"trials": 5, "max_epochs": 500, "time_limit_s": 6}, space=SPACE)
    frame = search.run(_write(tmp_path, data), results_dir=tmp_path / "results", progress=lambda line: None)
    # without the budget the first trial alone would train 500 epochs; it stops at the first epoch end past it
    assert 1 <= len(frame) < 5
    assert (frame["status"] == "out of time").all() and (frame["epochs"] < 500).all()
    for path in (tmp_path / "results" / "kt_deadline" / "trials").glob("*.json"):
        _assert_timed(json.loads(path.read_text()))


@pytest.mark.parametrize("change, argv, message", [
    ({"searcher": {"sampler": "tpe"}}, [], "`searcher.sampler`: must be one of ['hyperband', 'bayesian', 'random']"),
    ({"searcher": {"initial_points": [{"backbone.filters": 4}]}}, [], "work with engine ray-tune only"),
    ({"objective": {"metrics": ["shape.accuracy", "midpoint.mae"]}}, [], "needs engine ray-tune"),
    ({}, ["--address", "127.0.0.1:1"], "`--address`: needs engine ray-tune"),
    ({"engine": "optuna-only"}, [], "`engine`: must be one of ['ray-tune', 'keras-tuner']"),
])
def test_bad_keras_tuner_experiments_exit_2(tmp_path, tiny, capsys, change, argv, message):
    tiny.update({"engine": "keras-tuner", **change})
    results = tmp_path / "results"
    status = main(["run", str(_write(tmp_path, tiny)), "--results-dir", str(results), *argv])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not results.exists()
