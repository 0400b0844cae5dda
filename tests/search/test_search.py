"""Real searches on an embedded Ray (tiny data, few epochs): leaderboard, study, failures, Pareto."""

import copy
import json
import math

import matplotlib.image
import optuna
import pandas as pd
import pytest
import yaml

import search
from search.cli import main
from search.rundir.leaderboard import pareto_ranks
from search.rundir.records import FINISHED, load_records
from search.engines.worker import FAIL_ENV

FAILING = {"backbone.filters": 4, "optimizer.learning_rate": 0.005}


def _write(tmp_path, data):
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def single_run(tmp_path_factory, tiny_template):
    """6 trials, 2 at a time, ASHA; the first (enqueued) configuration raises at epoch 1.

    Epoch 1, not later: with a grace period of 1, ASHA may stop a poor trial at its first report,
    so a later failure would depend on which trial reports first."""
    tmp_path = tmp_path_factory.mktemp("single")
    data = copy.deepcopy(tiny_template)
    data["searcher"] = {"sampler": "tpe", "initial_points": [FAILING]}
    # Plain halving: the adaptive rungs let their first witnesses through, more trials than this search has
    # (their decisions are tested on curves in engines/test_rungs.py).
    data["scheduler"] = {**data["scheduler"], "adaptive": False}
    patch = pytest.MonkeyPatch()
    patch.setenv(FAIL_ENV, json.dumps({"when": FAILING, "epoch": 1}))
    lines = []
    try:
        frame = search.run(_write(tmp_path, data), results_dir=tmp_path / "results", progress=lines.append)
    finally:
        patch.undo()
    return frame, tmp_path / "results" / "tiny", lines


def test_leaderboard_holds_every_trial_ranked_by_objective(single_run):
    frame, run_dir, _ = single_run
    assert len(frame) == 6
    assert set(frame["status"].str.split(":").str[0]) <= set(FINISHED)
    ranked = frame[frame["rank"].notna()]
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    objectives = list(ranked["objective"])
    assert objectives == sorted(objectives, reverse=True)
    assert all(0.0 <= v <= 1.0 for v in objectives)
    # The table on disk is the same table.
    on_disk = (run_dir / "leaderboard.csv").read_text()
    assert on_disk.count("\n") == 7
    assert "# Leaderboard: tiny" in (run_dir / "leaderboard.md").read_text()


def test_two_workers_train_all_six_trials_each_from_a_fresh_model(single_run):
    """Workers outlive their trials (reuse_actors): six trials, two slots, two worker processes, even though one
    trial failed (its worker took on the next trial). Each trial starts from its own model at epoch 1."""
    _, run_dir, _ = single_run
    records = load_records(run_dir)
    workers = {h["worker"] for r in records for h in r.history}
    assert 1 <= len(workers) <= 2, workers
    assert all(r.history[0]["epoch"] == 1 for r in records if r.history)


def test_asha_stopped_at_least_one_trial_early(single_run):
    frame, run_dir, _ = single_run
    stopped = frame[frame["status"] == "stopped early"]
    assert len(stopped) >= 1
    assert (stopped["epochs"] < 4).all()
    assert (frame[frame["status"] == "completed"]["epochs"] == 4).all()
    # The scheduler says what it did, in its own file and under the leaderboard.
    state = json.loads((run_dir / "scheduler.json").read_text())
    assert state == {"rungs": [1, 2], "first_cut_epoch": 1, "adaptive": False, "decisions": []}
    assert "Scheduler: successive halving over rungs at epochs [1, 2]; first cut at epoch 1." in (
        run_dir / "leaderboard.md").read_text()


def test_a_trial_that_raises_is_recorded_as_failed_with_its_reason(single_run):
    frame, run_dir, lines = single_run
    failed = frame[frame["status"].str.startswith("failed")]
    assert len(failed) == 1
    assert "deliberate failure at epoch 1" in failed["status"].iloc[0]
    assert failed["rank"].isna().all() and failed.index[0] == frame.index[-1]
    assert int(failed["backbone.filters"].iloc[0]) == 4
    # The search went on: every other trial finished.
    assert (frame["status"].str.split(":").str[0].isin(FINISHED)).all()
    assert any("1 failed" in line for line in lines)


def test_sqlite_study_holds_every_trial(single_run):
    frame, run_dir, _ = single_run
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6
    states = sorted(t.state.name for t in trials)
    assert states.count("FAIL") == 1
    study_lrs = sorted(round(t.params["optimizer.learning_rate"], 9) for t in trials)
    table_lrs = sorted(round(v, 9) for v in frame["optimizer.learning_rate"])
    assert study_lrs == table_lrs
    assert trials[0].params["backbone.filters"] == 4  # the enqueued initial point came first
    _assert_study_agrees_with_leaderboard(study, run_dir)


def _assert_study_agrees_with_leaderboard(study, run_dir):
    """Every study trial is finished, names its leaderboard row, and holds that row's objective; and its status,
    task metrics and epochs as user attributes."""
    records = {r.trial_id: r for r in load_records(run_dir)}
    rows = pd.read_csv(run_dir / "leaderboard.csv", dtype={"trial": str}).set_index("trial")
    trials = study.get_trials(deepcopy=False)
    assert set(records) <= {t.user_attrs["ray_trial_id"] for t in trials}
    for trial in trials:
        record = records.get(trial.user_attrs["ray_trial_id"])
        if record is None:  # suggested when the time limit came: Ray Tune never started it
            assert trial.state.name == "FAIL" and trial.user_attrs["ended"].startswith("never started")
        elif record.status == "failed":
            assert trial.state.name == "FAIL"
        elif record.objective is None:  # ended before its first epoch's report
            assert record.status == "out of time" and trial.state.name == "PRUNED"
        else:
            assert trial.state.name == "COMPLETE", (trial.number, record.status)
            assert trial.value == pytest.approx(record.objective, abs=1e-9)
        if record is not None:  # what the leaderboard shows of it
            row, attrs = rows.loc[record.trial_id], trial.user_attrs
            assert attrs["status"] == row["status"] and attrs["epochs"] == row["epochs"], (attrs, dict(row))
            for column in ("val_shape_accuracy", "val_colour_accuracy", "val_midpoint_mae"):
                assert attrs.get(column, math.nan) == pytest.approx(row[column], nan_ok=True), (column, attrs)


def test_time_limit_ends_running_trials_as_out_of_time_and_the_study_is_told(tmp_path, tiny, write_experiment):
    """A budget of wall time alone: trials keep coming and the leaders keep training until the time is up.
    Ray Tune does not tell its searcher about trials its time budget ends: the search settles them."""
    tiny["budget"] = {"time_limit_s": 40}  # launch alone takes ~20 s here: room for trials on a slower or busy machine
    lines = []
    frame = search.run(write_experiment(tiny), results_dir=tmp_path / "results", progress=lines.append)
    run_dir = tmp_path / "results" / "tiny"
    assert not frame.attrs["interrupted"]
    assert "trials until the time limit, each trained for as long as it leads" in lines[0]
    assert not (frame["status"] == "completed").any()  # no epoch cap to complete
    out_of_time = frame[frame["status"] == "out of time"]
    assert len(out_of_time) >= 1
    scheduler = json.loads((run_dir / "scheduler.json").read_text())
    assert scheduler["adaptive"] is True
    assert "out of time" in (run_dir / "leaderboard.md").read_text().splitlines()[2]
    # The last fifth of the time (the default cooldown): no trial started, the leader's learning rate annealed.
    window = scheduler["cooldown"]
    starts = window["deadline"] - window["window_s"]
    assert window["window_s"] == pytest.approx(8) and "Cooldown, the last 8 s" in (run_dir / "leaderboard.md").read_text()
    records = load_records(run_dir)
    assert all(r.started_at < starts + 1 for r in records)  # +1: suggested before the window, begun just after
    # The first trial (the fixed model) trained alone until its lead ended; the others waited for it to train.
    lead = scheduler["lead"]
    first = next(r for r in records if r.trial_id == lead["trial"])
    assert lead["epochs"] >= 1 and "Lead, trial " in (run_dir / "leaderboard.md").read_text()
    # No other trial trained before the lead ended (on a slow machine none may train at all in 40 s).
    others = [r for r in records if r is not first and r.history]
    assert all(r.history[0]["first_step_at"] >= lead["ended_at"] - 0.5 for r in others)  # 0.5: the clocks
    scales = [h["lr_scale"] for r in records for h in r.history]
    assert 1.0 in scales and min(scales) < 0.9 and all(0.05 <= x <= 1.0 for x in scales)
    for record in records:
        assert [h["lr_scale"] for h in record.history] == sorted((h["lr_scale"] for h in record.history), reverse=True)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.db'}")
    _assert_study_agrees_with_leaderboard(study, run_dir)
    # Without initial points, the first trial is the experiment's fixed model (filters 8, Adam's default rate).
    assert study.trials[0].params == {"backbone.filters": 8, "optimizer.learning_rate": pytest.approx(0.001)}
    assert study.trials[0].user_attrs["ray_trial_id"] == first.trial_id  # the fixed model led
    # run.json records the session: its wall time and how its trials ended
    session = json.loads((run_dir / "run.json").read_text())["sessions"][-1]
    assert session["command"] == "run" and session["ended"] - session["started"] == pytest.approx(session["wall_s"], abs=0.1)
    assert 25 <= session["wall_s"] < 120
    assert session["trials"]["out of time"] == len(out_of_time) and sum(session["trials"].values()) == len(frame)
    assert session["best_objective"] == pytest.approx(frame["objective"].max())
    assert any(line.startswith("Search ended after") for line in lines)


def test_trial_records_and_results_command(single_run, capsys):
    frame, run_dir, _ = single_run
    records = load_records(run_dir)
    assert len(records) == 6
    for record in records:
        if not record.status.startswith("failed"):
            assert record.history and record.history[-1]["epoch"] == record.epochs
            # when training began (after the worker's start-up) and training seconds so far, for bench/
            assert record.history[0]["first_step_at"] >= record.started_at
            seconds = [h["train_s"] for h in record.history]
            assert all(0 < a < b for a, b in zip(seconds, seconds[1:])) and seconds[-1] <= record.wall_s
            assert set(record.task_metrics) == {"val_shape_accuracy", "val_colour_accuracy", "val_midpoint_mae"}
    assert main(["results", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 100 for line in out.splitlines())
    for column in ("objective", "val_shape_accuracy", "val_colour_accuracy", "val_midpoint_mae"):
        assert column in out


def test_multi_objective_search_marks_the_pareto_front(tmp_path, tiny):
    tiny["name"] = "tiny_multi"
    tiny["objective"] = {"metrics": ["shape.accuracy", "midpoint.mae"]}
    tiny["budget"] = {"trials": 4, "max_epochs": 2}
    frame = search.run(_write(tmp_path, tiny), results_dir=tmp_path / "results", progress=lambda line: None)
    assert len(frame) == 4
    assert (frame["status"] == "completed").all()
    values = frame[["val_shape_accuracy", "val_midpoint_mae"]].to_numpy().tolist()
    assert list(frame["pareto"]) == pareto_ranks(values, ["max", "min"])
    assert 1 in set(frame["pareto"])
    study = optuna.load_study(study_name="tiny_multi",
                              storage=f"sqlite:///{tmp_path / 'results' / 'tiny_multi' / 'study.db'}")
    assert len(study.trials) == 4
    front = {round(t.params["optimizer.learning_rate"], 9) for t in study.best_trials}
    ours = {round(v, 9) for v in frame[frame["pareto"] == 1]["optimizer.learning_rate"]}
    assert front == ours
    for t in study.trials:
        assert not any(math.isnan(v) for v in t.values)
    # The report of a multi-objective search draws its Pareto front.
    run_dir = tmp_path / "results" / "tiny_multi"
    report = search.write_report(run_dir, progress=lambda line: None).read_text()
    assert "(report/pareto.png)" in report and "mtl-search retrain" in report
    pixels = matplotlib.image.imread(run_dir / "report" / "pareto.png")[..., :3]
    assert pixels.std() > 0.02


def test_a_trial_whose_loss_goes_nan_is_recorded_as_failed_and_the_search_goes_on(tmp_path, tiny_template):
    """A real NaN: a loss weight of 1e30 overflows the gradients; nothing is injected."""
    data = copy.deepcopy(tiny_template)
    data["name"] = "nan"
    data["space"] = {"heads.shape.loss_weight": {"choice": [1.0, 1.0e30]}}
    data["searcher"] = {"initial_points": [{"heads.shape.loss_weight": 1.0e30}, {"heads.shape.loss_weight": 1.0}]}
    data["budget"] = {"trials": 2, "max_epochs": 2}
    frame = search.run(_write(tmp_path, data), results_dir=tmp_path / "results", progress=lambda line: None)
    statuses = dict(zip(frame["heads.shape.loss_weight"], frame["status"]))
    assert statuses[1.0] == "completed"
    assert statuses[1.0e30].startswith("failed: loss became nan at epoch 1"), statuses
    study = optuna.load_study(study_name="nan", storage=f"sqlite:///{tmp_path / 'results' / 'nan' / 'study.db'}")
    assert sorted(t.state.name for t in study.get_trials(deepcopy=False)) == ["COMPLETE", "FAIL"]
