"""Trial records and the leaderboard: JSON round trip, ranking, Pareto fronts, edge flags, files, terminal view."""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from search.rundir.leaderboard import (
    Column,
    LeaderboardSpec,
    ParamRange,
    build_leaderboard,
    edge_params,
    pareto_ranks,
    write_leaderboard,
)
from search.rundir.records import TrialRecord, load_records, trial_path
from search.rundir.render import render_table

ROOT = Path(__file__).resolve().parents[3]
TASKS = (Column("shape_accuracy", "max"), Column("midpoint_mae", "min"))


def _record(trial_id, objective=None, *, status="completed", epochs=5, **changes):
    base = {
        "trial_id": trial_id,
        "status": status,
        "params": {"backbone.filters": 32, "optimizer.learning_rate": 0.001},
        "objective": objective,
        "task_metrics": {"shape_accuracy": 0.9, "midpoint_mae": 0.02},
        "epochs": epochs,
        "wall_s": 12.345,
    }
    return TrialRecord(**{**base, **changes})


def _full_record():
    return TrialRecord(
        trial_id="3f2a1b7c",
        status="completed",
        params={"backbone.filters": 32, "optimizer.learning_rate": 0.0012, "heads.B.transfer": True},
        objective=0.973,
        objectives={"shape_accuracy": 0.99, "midpoint_mae": 0.012},
        task_metrics={"shape_accuracy": 0.99, "colour_accuracy": 1.0, "midpoint_mae": 0.011},
        epochs=6,
        wall_s=41.2,
        started_at=1795425000.0,
        history=[{"epoch": 1, "objective": 0.5, "val_shape_accuracy": 0.6}, {"epoch": 2, "objective": 0.973}],
    )


# Records ------------------------------------------------------------------------------------------------


def test_record_json_round_trip():
    record = _full_record()
    text = record.to_json()
    assert TrialRecord.from_json(text) == record
    data = json.loads(text)
    assert data["params"]["heads.B.transfer"] is True
    assert data["history"][0] == {"epoch": 1, "objective": 0.5, "val_shape_accuracy": 0.6}
    assert data["failure"] is None and data["status"] == "completed"


def test_record_rejects_bad_input():
    with pytest.raises(ValueError, match="status"):
        TrialRecord("t", status="done")
    with pytest.raises(ValueError, match="epochs"):
        TrialRecord("t", epochs=-1)
    with pytest.raises(ValueError, match="unknown"):
        TrialRecord.from_json(json.dumps({"trial_id": "t", "colour": "red"}))
    with pytest.raises(ValueError, match="trial_id"):
        TrialRecord.from_json(json.dumps({"status": "running"}))


def test_write_is_atomic(tmp_path, monkeypatch):
    path = trial_path(tmp_path, "abc")
    first = _record("abc", 0.5)
    first.write(path)
    assert TrialRecord.read(path) == first

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        _record("abc", 0.9).write(path)
    assert TrialRecord.read(path) == first  # the old record is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["abc.json"]  # and no temporary file is left


def test_load_records_sorts_by_start_then_id(tmp_path):
    assert load_records(tmp_path) == []
    for trial_id, started in [("b", 20.0), ("a", 20.0), ("c", 10.0), ("d", None)]:
        _record(trial_id, 0.5, started_at=started).write(trial_path(tmp_path, trial_id))
    (tmp_path / "trials" / "notes.txt").write_text("not a record")
    assert [r.trial_id for r in load_records(tmp_path)] == ["c", "a", "b", "d"]


def test_read_names_the_broken_file(tmp_path):
    path = tmp_path / "trials" / "x.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match="x.json"):
        load_records(tmp_path)


# Single objective ---------------------------------------------------------------------------------------


def test_single_objective_max_ranks_and_failed_last():
    reason = "ValueError: loss became NaN at epoch 3 (learning rate 0.1 too high) " + "x" * 200
    records = [
        _record("t1", 0.80),
        _record("t2", None, status="failed", failure=reason, epochs=3),
        _record("t3", 0.95, epochs=8),
        _record("t4", 0.95, epochs=4),  # same objective as t3, fewer epochs: ranks above it
        _record("t5", None, status="pending", epochs=0),
        _record("t6", 0.90, status="running", epochs=2),
    ]
    frame = build_leaderboard(records, LeaderboardSpec(TASKS))
    assert list(frame.columns[:6]) == ["rank", "trial", "status", "objective", "shape_accuracy", "midpoint_mae"]
    assert list(frame.columns[6:]) == ["backbone.filters", "optimizer.learning_rate", "epochs", "wall_s", "at_edge"]
    assert frame["trial"].tolist() == ["t4", "t3", "t6", "t1", "t2", "t5"]
    assert frame["rank"].tolist()[:4] == [1, 2, 3, 4]
    assert frame["rank"].iloc[4:].isna().all()
    failed = frame.set_index("trial").loc["t2", "status"]
    assert failed == f"failed: {reason}"  # the whole reason is kept


def test_single_objective_min_ranks():
    spec = LeaderboardSpec(TASKS, objectives=(Column("val_loss", "min"),))
    records = [_record("a", 0.3), _record("b", 0.1), _record("c", 0.2), _record("d", 0.1, epochs=2)]
    frame = build_leaderboard(records, spec)
    assert frame["trial"].tolist() == ["d", "b", "c", "a"]
    assert frame["val_loss"].tolist() == [0.1, 0.1, 0.2, 0.3]


# Pareto fronts -----------------------------------------------------------------------------------------

# (shape_accuracy: max, midpoint_mae: min). A and C are equal, as are B and F; D is dominated by A only;
# E by everything else.
POINTS = {"A": (0.9, 0.10), "B": (0.8, 0.05), "C": (0.9, 0.10), "D": (0.85, 0.10), "E": (0.7, 0.20), "F": (0.8, 0.05)}
FRONTS = {"A": 1, "B": 1, "C": 1, "D": 2, "E": 3, "F": 1}


def test_pareto_ranks_hand_computed():
    assert pareto_ranks(list(POINTS.values()), ["max", "min"]) == list(FRONTS.values())
    assert pareto_ranks([], ["max"]) == []
    assert pareto_ranks([[1.0], [3.0], [2.0], [3.0]], ["max"]) == [3, 1, 2, 1]


def _brute_force_ranks(points, modes):
    costs = [[-v if m == "max" else v for v, m in zip(p, modes)] for p in points]

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    ranks, remaining, front = [0] * len(points), set(range(len(points))), 0
    while remaining:
        front += 1
        current = {i for i in remaining if not any(dominates(costs[j], costs[i]) for j in remaining)}
        for i in current:
            ranks[i] = front
        remaining -= current
    return ranks


@pytest.mark.parametrize("seed", range(6))
def test_pareto_ranks_match_brute_force(seed):
    rng = random.Random(seed)
    k = rng.choice([2, 3])
    modes = [rng.choice(["max", "min"]) for _ in range(k)]
    points = [[round(rng.random(), 1) for _ in range(k)] for _ in range(60)]  # coarse values: many ties
    assert pareto_ranks(points, modes) == _brute_force_ranks(points, modes)


def test_pareto_ranks_reject_bad_input():
    with pytest.raises(ValueError, match="modes"):
        pareto_ranks([[1.0, 2.0]], ["max"])
    with pytest.raises(ValueError, match="finite"):
        pareto_ranks([[1.0, math.nan]], ["max", "min"])


def test_multi_objective_leaderboard():
    spec = LeaderboardSpec(TASKS, objectives=TASKS)
    records = [_record(name, objectives=dict(zip(["shape_accuracy", "midpoint_mae"], p))) for name, p in POINTS.items()]
    records.append(_record("G", status="failed", failure="OOM", objectives={"shape_accuracy": 0.99}))
    frame = build_leaderboard(records, spec)
    assert list(frame.columns[:6]) == ["rank", "trial", "status", "pareto", "shape_accuracy", "midpoint_mae"]
    assert "best_shape_accuracy" in frame.columns  # the task column, apart from the objective of that name
    assert frame["trial"].tolist() == ["A", "C", "B", "F", "D", "E", "G"]
    assert frame["pareto"].tolist()[:6] == [FRONTS[t] for t in "ACBFDE"]
    assert pd.isna(frame["pareto"].iloc[6]) and pd.isna(frame["rank"].iloc[6])
    assert frame["status"].iloc[6] == "failed: OOM"


# Edge of the search range -----------------------------------------------------------------------------


def test_edge_params_linear_range():
    ranges = {"backbone.filters": ParamRange(16, 64)}  # 5% of 48 is 2.4
    assert edge_params({"backbone.filters": 64}, ranges) == ["backbone.filters=64 (high end of [16, 64])"]
    assert edge_params({"backbone.filters": 18}, ranges) == ["backbone.filters=18 (low end of [16, 64])"]
    assert edge_params({"backbone.filters": 20}, ranges) == []  # 4/48 = 8% from the low end
    assert edge_params({"backbone.filters": 62}, ranges) == ["backbone.filters=62 (high end of [16, 64])"]
    assert edge_params({"other": 1}, ranges) == []  # not sampled


def test_edge_params_log_range():
    ranges = {"lr": ParamRange(1e-4, 1e-1, log=True), "flag": ParamRange(0, 1)}  # 3 decades: 5% is 0.15
    assert edge_params({"lr": 0.09}, ranges) == ["lr=0.09 (high end of [0.0001, 0.1])"]  # 2.954 / 3 = 98.5%
    assert edge_params({"lr": 1.2e-4}, ranges) == ["lr=0.00012 (low end of [0.0001, 0.1])"]  # 0.079 / 3 = 2.6%
    assert edge_params({"lr": 0.005}, ranges) == []  # 4.9% in linear space, but 1.699 / 3 = 57% in log space
    assert edge_params({"lr": 0.05, "flag": True}, ranges) == []  # 2.699 / 3 = 90%; booleans are never flagged
    assert edge_params({"lr": 0.05}, ranges, tolerance=0.15) == ["lr=0.05 (high end of [0.0001, 0.1])"]


def test_spec_and_range_validation():
    with pytest.raises(ValueError, match="low < high"):
        ParamRange(5, 1)
    with pytest.raises(ValueError, match="low > 0"):
        ParamRange(0, 1, log=True)
    with pytest.raises(ValueError, match="mode"):
        Column("x", "up")
    with pytest.raises(ValueError, match="must not be among"):
        LeaderboardSpec((Column("rank", "max"),))
    assert LeaderboardSpec(TASKS, objectives=TASKS).multi and not LeaderboardSpec(TASKS).multi


# Files --------------------------------------------------------------------------------------------------


def test_write_leaderboard_files(tmp_path):
    run_dir = tmp_path / "shapes_run"
    records = [
        _record("t1", 0.97, params={"backbone.filters": 64, "optimizer.learning_rate": 0.001}, wall_s=41.23),
        _record("t2", 0.90, status="stopped early", epochs=2),
        _record("t3", None, status="failed", failure="boom | bad", epochs=1),
        _record("t4", 0.50, status="running", epochs=1),
    ]
    spec = LeaderboardSpec(TASKS, ranges={"backbone.filters": ParamRange(16, 64)})
    frame = write_leaderboard(run_dir, records, spec)
    csv = pd.read_csv(run_dir / "leaderboard.csv", keep_default_na=False)
    assert csv["trial"].tolist() == frame["trial"].tolist() == ["t1", "t2", "t4", "t3"]
    assert csv["at_edge"].tolist() == ["backbone.filters=64 (high end of [16, 64])", "", "", ""]
    md = (run_dir / "leaderboard.md").read_text()
    assert md.startswith("# Leaderboard: shapes_run\n")
    assert "4 trials: 1 completed, 1 stopped early, 1 failed, 1 running" in md
    assert "| 1 | t1 | completed | 0.97 | 0.9 | 0.02 | 64 | 0.001 | 5 | 41.2 |" in md
    assert "failed: boom \\| bad" in md  # a pipe in a reason does not break the table
    assert (
        "Best parameters at the edge of their search range: backbone.filters=64 (high end of [16, 64])"
        " — consider widening the range." in md
    )
    assert sorted(p.name for p in run_dir.iterdir()) == ["leaderboard.csv", "leaderboard.md"]


# Terminal view ------------------------------------------------------------------------------------------


def _wide_frame(task_count=2):
    tasks = tuple(Column(f"task_{i}_accuracy", "max") for i in range(task_count)) if task_count > 2 else TASKS
    params = {f"heads.{chr(65 + i)}.dense_units_{i}": 2**i for i in range(20)}
    metrics = {c.name: 0.5 for c in tasks}
    records = [
        _record(f"trial_{i:03d}", 0.5 + i / 100, params=params, task_metrics=metrics, started_at=float(i))
        for i in range(5)
    ]
    reason = "RuntimeError: " + "the backbone produced a 0x0 feature map after pooling " * 4
    records.append(_record("trial_999", None, status="failed", failure=reason, params=params))
    return build_leaderboard(records, LeaderboardSpec(tasks)), tasks


def test_render_table_hides_params_to_fit():
    frame, tasks = _wide_frame()
    text = render_table(frame, width=100)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    header = lines[0].split()
    for column in ["rank", "trial", "status", "objective", *[c.name for c in tasks]]:
        assert column in header
    assert lines[-1].endswith("columns hidden; see leaderboard.csv)")
    assert "…" in text  # the failure reason was cut
    assert sum("trial_" in line for line in lines) == 6


def test_render_table_wraps_wide_metrics_into_blocks():
    frame, tasks = _wide_frame(task_count=12)
    text = render_table(frame, width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    headers = [line.split() for line in lines if line.startswith("rank")]
    assert len(headers) > 1 and all(h[:2] == ["rank", "trial"] for h in headers)
    shown = {name for h in headers for name in h}
    assert {c.name for c in tasks} | {"status", "objective"} <= shown
    assert "(22 columns hidden; see leaderboard.csv)" in text


def test_render_table_shows_everything_when_it_fits():
    frame = build_leaderboard([_record("a", 0.9), _record("b", 0.8)], LeaderboardSpec(TASKS))
    text = render_table(frame, width=200)
    assert "hidden" not in text
    assert text.splitlines()[0].split() == [str(c) for c in frame.columns if c != "at_edge"]
    assert text.splitlines()[2].split() == ["1", "a", "completed", "0.9", "0.9", "0.02", "32", "0.001", "5", "12.3"]


def test_render_table_reads_a_frame_back_from_csv(tmp_path):
    frame, _ = _wide_frame()
    frame.to_csv(tmp_path / "leaderboard.csv", index=False)
    text = render_table(pd.read_csv(tmp_path / "leaderboard.csv"), width=60)  # no attrs: dotted names are params
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "(22 columns hidden; see leaderboard.csv)" in text


def test_imports_no_search_engine_or_keras():
    code = ("import sys, search.rundir.leaderboard, search.rundir.records, search.rundir.render; "
            "print(sorted({'ray', 'optuna', 'tensorflow', 'keras'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
