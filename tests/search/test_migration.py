"""`mtl-search migrate`: run and model directories written by the previous format (metric keys without their
split, as format1/ holds them, written by commit 4a92a3a) are refused with the command, then converted in place."""

import json
import shutil
from pathlib import Path

import pytest

from search.cli import main
from search.rundir.directory import FORMAT, needs_migration
from search.rundir.records import load_records
from search.winner.model_dir import read_card
from search.winner.retrain_table import load_table

FIXTURE = Path(__file__).parent / "format1" / "tiny"
ROOT = Path(__file__).resolve().parents[2]


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _json(path: Path):
    return json.loads(path.read_text())


@pytest.fixture
def old_run(tmp_path):
    run_dir = tmp_path / "tiny"
    shutil.copytree(FIXTURE, run_dir)
    for export in ("export", "export-finetuned-midpoint"):
        (run_dir / export / "model.keras").write_bytes(b"")  # read_card wants one; the fixture keeps no weights
    return run_dir


def test_an_earlier_format_is_refused_in_one_line_naming_the_command_and_left_as_it_is(old_run, capsys):
    before = _files(old_run)
    for argv in (["results", str(old_run)], ["retrain", str(old_run)], ["export", str(old_run), "--out",
                                                                       str(old_run / "new")]):
        assert main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and f"`mtl-search migrate {old_run}`" in error, error
    assert main(["evaluate", str(old_run / "export")]) == 2
    assert f"`mtl-search migrate {old_run / 'export'}`" in capsys.readouterr().err
    assert _files(old_run) == before


def test_migrate_renames_every_key_by_its_split_and_keeps_every_value(old_run, capsys):
    assert main(["migrate", str(old_run)]) == 0
    assert "converted to format 2" in capsys.readouterr().out
    assert _json(old_run / "run.json")["format"] == FORMAT and not needs_migration(old_run)

    for record in load_records(old_run):
        old = _json(FIXTURE / "trials" / f"{record.trial_id}.json")
        assert record.task_metrics == {f"val_{k}": v for k, v in old["task_metrics"].items()}
        for new_row, old_row in zip(record.history, old["history"], strict=True):
            assert new_row["train_loss"] == old_row["loss"] and new_row["val_loss"] == old_row["val_loss"]
            assert new_row["val_objective"] == old_row["objective"]
            assert new_row["train_shape_accuracy"] == old_row["shape_accuracy"]
            assert new_row["val_shape_accuracy"] == old_row["val_shape_accuracy"]
            assert new_row["first_step_at"] == old_row["first_step_at"]
    assert main(["results", str(old_run)]) == 0
    header = (old_run / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["rank", "trial", "status", "objective", "val_shape_accuracy", "val_colour_accuracy"]

    table, old_table = load_table(old_run), _json(FIXTURE / "retrain" / "retrain.json")
    assert table.key == "test_objective" and table.winner.best_run.name == old_table["winner"]["exported_run"]
    for config, old_config in zip(table.configs, old_table["configs"], strict=True):
        assert config.mean == {f"test_{k}": v for k, v in old_config["mean"].items()}
        for run, old_run_summary in zip(config.runs, old_config["runs"], strict=True):
            assert run.val_metrics == {f"val_{k}": v for k, v in old_run_summary["val_metrics"].items()}
            assert run.test_metrics == {f"test_{k}": v for k, v in old_run_summary["test_metrics"].items()}
    assert {b.metric for b in table.baselines.tasks.values()} == {
        "test_shape_accuracy", "test_colour_accuracy", "test_midpoint_mae"}
    assert table.baselines.delta_m_percent == old_table["baselines"]["delta_m_percent"]
    result = _json(old_run / "retrain" / table.winner.best_run.name / "result.json")
    assert "val_objective" in result["history"][0] and "train_loss" in result["history"][0]
    for name in ("retrain/retrain.md", "report.md"):
        text = (old_run / name).read_text()
        assert "test_shape_accuracy" in text and "| shape_accuracy" not in text, name
    assert "(report/learning_curves.png)" in (old_run / "report.md").read_text()  # the rest of the report stays

    card, old_card = read_card(old_run / "export"), _json(FIXTURE / "export" / "model_card.json")
    assert card["format"] == FORMAT and card["selected_by"] == "test_objective"
    assert card["test_metrics"] == {f"test_{k}": v for k, v in old_card["test_metrics"].items()}
    assert card["exported_model"]["val_metrics"] == {
        f"val_{k}": v for k, v in old_card["exported_model"]["val_metrics"].items()}
    assert "| test_midpoint_mae |" in (old_run / "export" / "model_card.md").read_text()
    tuned = read_card(old_run / "export-finetuned-midpoint")
    assert set(tuned["finetuned"]["test_metrics_before"]) >= {"test_objective", "test_midpoint_mae"}


def test_migrating_twice_changes_nothing_more(old_run, capsys):
    assert main(["migrate", str(old_run)]) == 0
    once = _files(old_run)
    assert main(["migrate", str(old_run), str(old_run / "export")]) == 0
    assert "already at format 2; nothing to do" in capsys.readouterr().out
    assert _files(old_run) == once


def test_a_model_directory_migrates_on_its_own(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(FIXTURE / "export", model_dir)
    (model_dir / "model.keras").write_bytes(b"")
    assert main(["migrate", str(model_dir)]) == 0
    assert read_card(model_dir)["format"] == FORMAT


def test_a_path_that_is_neither_is_refused(tmp_path, capsys):
    assert main(["migrate", str(tmp_path)]) == 2
    assert "must be a run directory (with run.json) or an exported model directory" in capsys.readouterr().err


def test_the_committed_reference_runs_are_in_the_current_format():
    runs = [ROOT / "results" / "reference" / "shapes",
            *sorted(p for p in (ROOT / "results" / "bench" / "engines").glob("*/*") if (p / "run.json").is_file())]
    assert len(runs) > 1
    for run_dir in runs:
        assert _json(run_dir / "run.json").get("format") == FORMAT, run_dir
    for card in (ROOT / "results" / "reference" / "shapes").glob("*/model_card.json"):
        assert _json(card).get("format") == FORMAT, card
