"""Results for notebooks and scripts: `search.results` and `search.retrain_table` as DataFrames whose columns
name split and metric, and `mtl-search results --format` printing them for a pipe without touching a file.
Read from the committed reference run."""

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

import search
from search.cli import main

RUN = Path(__file__).resolve().parents[2] / "results" / "reference" / "shapes"


def _digests() -> dict[str, str]:
    return {str(p.relative_to(RUN)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(RUN.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def frames():
    before = _digests()
    leaderboard, retrain = search.results(RUN), search.retrain_table(RUN)
    assert _digests() == before  # reading writes nothing
    return leaderboard, retrain


def test_the_leaderboard_frame_is_the_committed_leaderboard_and_its_task_columns_say_val(frames):
    leaderboard, _ = frames
    committed = pd.read_csv(RUN / "leaderboard.csv")
    assert list(leaderboard.columns) == list(committed.columns)
    assert list(leaderboard["trial"]) == list(committed["trial"])
    pd.testing.assert_series_equal(leaderboard["objective"], committed["objective"], check_exact=False)
    assert {"val_shape_accuracy", "val_colour_accuracy", "val_midpoint_mae"} <= set(leaderboard.columns)


def test_the_retrain_frame_has_test_metrics_as_mean_and_std(frames):
    _, retrain = frames
    assert list(retrain["config"]) == ["e946886e", "d0377836", "b9fc8925"]
    for key in ("test_objective", "test_shape_accuracy", "test_midpoint_mae"):
        assert {f"{key}_mean", f"{key}_std"} <= set(retrain.columns)
    summary = json.loads((RUN / "retrain" / "retrain.json").read_text())
    assert retrain.loc[0, "test_midpoint_mae_mean"] == pytest.approx(summary["configs"][0]["mean"]["test_midpoint_mae"])


@pytest.mark.parametrize("retrain", [False, True])
@pytest.mark.parametrize("fmt", ["csv", "json", "md", "table"])
def test_the_results_command_prints_each_format_for_a_pipe_and_writes_nothing(frames, capsys, fmt, retrain):
    expected = frames[retrain]
    before = _digests()
    assert main(["results", str(RUN), "--format", fmt, *(["--retrain"] if retrain else [])]) == 0
    out = capsys.readouterr().out
    assert _digests() == before
    key = "config" if retrain else "trial"
    if fmt == "csv":
        written = pd.read_csv(io.StringIO(expected.to_csv(index=False)))
        pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(out)), written)
    elif fmt == "json":
        rows = json.loads(out)
        assert [r[key] for r in rows] == list(expected[key])
        assert rows[0]["test_objective_mean" if retrain else "objective"] == pytest.approx(
            expected.iloc[0]["test_objective_mean" if retrain else "objective"])
    else:
        assert all(str(value) in out for value in expected[key])
        if fmt == "md":
            assert out.startswith("# ") and "| rank |" in out
