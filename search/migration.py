"""``mtl-search migrate PATH``: convert a run or model directory written by an earlier mtl-search.

Format 1 (run.json and model cards without a ``format``) named metrics without their split: a
trial's best validation accuracy, its training accuracy per epoch and a retrained model's test
accuracy were all ``shape_accuracy``. Format 2 names the split in every key (``val_shape_accuracy``,
``train_loss``, ``test_objective``; see :mod:`search.experiment.metrics`). Migrating renames the keys
of the trial records, the retrain results and tables and the model cards in place, each file
written atomically; rebuilds the leaderboard, the retrain tables and the cards' Markdown from them;
and marks the directory format 2 last. Nothing is retrained or re-evaluated. A directory already
at format 2 is left as it is, and a key that already names a split is not renamed again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from search.errors import ConfigError
from search.experiment.metrics import OBJECTIVE, SPLITS, Split, split_key
from search.rundir.directory import FORMAT, RETRAIN_DIR, RUN_FILE, stored_format
from search.rundir.records import TRIALS_DIR, TrialRecord, atomic_write, load_records
from search.winner.cards import render_card
from search.winner.model_dir import CARD_JSON, CARD_MD
from search.winner.retrain_table import TABLE_FILE, RetrainTable
from search.winner.runs import RESULT_FILE

__all__ = ["migrate"]

# Row keys that are no metric, kept as they are.
_PLAIN = ("epoch", "node", "first_step_at", "train_s", "learning_rate")


def migrate(path: str | Path, *, progress: Callable[[str], None] = print) -> list[Path]:
    """Convert the run directory or exported model directory at ``path`` to the current format.

    A run directory's exported models (subdirectories with a model card) are converted with it.
    Returns the files rewritten (empty when everything was current already).
    """
    path = Path(path)
    if (path / RUN_FILE).is_file():
        written = _run_dir(path)
    elif (path / CARD_JSON).is_file():
        written = _model_dir(path)
    else:
        raise ConfigError("path", f"must be a run directory (with {RUN_FILE}) or an exported model directory "
                          f"(with {CARD_JSON})", str(path))
    progress(f"{path}: {len(written)} file(s) converted to format {FORMAT}." if written
             else f"{path} is already at format {FORMAT}; nothing to do.")
    return written


def _run_dir(run_dir: Path) -> list[Path]:
    written = [p for model_dir in sorted(run_dir.iterdir()) if (model_dir / CARD_JSON).is_file()
               for p in _model_dir(model_dir)]
    if stored_format(run_dir) >= FORMAT:
        return written
    for path in sorted((run_dir / TRIALS_DIR).glob("*.json")):
        data = json.loads(path.read_text())
        data["task_metrics"] = _keys(data.get("task_metrics") or {}, "val")
        if data.get("objectives") is not None:
            data["objectives"] = _keys(data["objectives"], "val")
        data["history"] = [_row(row) for row in data.get("history") or ()]
        TrialRecord(**data).write(path)  # validated as a record before it replaces the old one
        written.append(path)
    written += _retrain(run_dir / RETRAIN_DIR, run_dir)
    stored = json.loads((run_dir / RUN_FILE).read_text())
    atomic_write(run_dir / RUN_FILE, json.dumps({**stored, "format": FORMAT}, indent=2) + "\n")
    written.append(run_dir / RUN_FILE)
    if any((run_dir / TRIALS_DIR).glob("*.json")):
        from search.api import run_leaderboard_spec
        from search.rundir.leaderboard import write_leaderboard

        # The leaderboard's columns, rebuilt from the converted records.
        write_leaderboard(run_dir, load_records(run_dir), run_leaderboard_spec(run_dir))
        written += [run_dir / "leaderboard.csv", run_dir / "leaderboard.md"]
    return written


def _retrain(root: Path, run_dir: Path) -> list[Path]:
    written = []
    for path in sorted(root.glob(f"*/{RESULT_FILE}")):
        data = json.loads(path.read_text())
        data.update(_metrics(data), history=[_row(row) for row in data.get("history") or ()])
        atomic_write(path, json.dumps(data, indent=1, default=float))
        written.append(path)
    if not (root / TABLE_FILE).is_file():
        return written
    data = json.loads((root / TABLE_FILE).read_text())
    data["selected_by"] = _key(data["selected_by"], "test")
    data["metric_keys"] = [_key(k, "test") for k in data["metric_keys"]]
    for config in data["configs"]:
        config["mean"], config["std"] = _keys(config["mean"], "test"), _keys(config["std"], "test")
        for run in config["runs"]:
            run.update(_metrics(run))
        config["failed"] = [{"job": _job(config, r["name"]), **r} for r in config.get("failed", ())]
    for baseline in ((data.get("baselines") or {}).get("tasks") or {}).values():
        baseline["metric"] = _key(baseline["metric"], "test")
    old_markdown = _embedded((root / "retrain.md").read_text()) if (root / "retrain.md").is_file() else None
    RetrainTable.from_dict(data).write(root)
    written += [root / TABLE_FILE, root / "retrain.csv", root / "retrain.md"]
    report = run_dir / "report.md"
    if old_markdown and report.is_file() and old_markdown in report.read_text():  # the report embeds the table
        new_markdown = _embedded((root / "retrain.md").read_text())
        atomic_write(report, report.read_text().replace(old_markdown, new_markdown, 1))
        written.append(report)
    return written


def _embedded(retrain_markdown: str) -> str:
    """The retrain table as report.md embeds it (one heading level down)."""
    return retrain_markdown.replace("# Retrain:", "## Retrain:", 1)


def _model_dir(model_dir: Path) -> list[Path]:
    card = json.loads((model_dir / CARD_JSON).read_text())
    if card.get("format", 1) >= FORMAT:
        return []
    old = card["selected_by"]
    card["selected_by"] = _key(old, "test")
    card["summary"] = card.get("summary", "").replace(f"selected by mean test `{old}`",
                                                      f"selected by mean `{card['selected_by']}`")
    card["test_metrics"] = _keys(card["test_metrics"], "test")
    card["exported_model"].update(_metrics(card["exported_model"]))
    if card.get("finetuned") and card["finetuned"].get("test_metrics_before"):
        card["finetuned"]["test_metrics_before"] = _keys(card["finetuned"]["test_metrics_before"], "test")
    card = {"format": FORMAT, **card}
    atomic_write(model_dir / CARD_JSON, json.dumps(card, indent=1, default=float) + "\n")
    atomic_write(model_dir / CARD_MD, render_card(card))
    return [model_dir / CARD_JSON, model_dir / CARD_MD]


def _key(key: str, split: Split) -> str:
    """``key`` on ``split``, unless it already names a split."""
    return key if key.split("_", 1)[0] in SPLITS else split_key(key, split)


def _keys(values: Mapping[str, Any], split: Split) -> dict[str, Any]:
    return {_key(k, split): v for k, v in values.items()}


def _metrics(run: Mapping[str, Any]) -> dict[str, Any]:
    """A retrain run's val and test metrics, renamed."""
    return {"val_metrics": _keys(run.get("val_metrics") or {}, "val"),
            "test_metrics": _keys(run.get("test_metrics") or {}, "test")}


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One epoch of a history: Keras' training keys (``loss``, ``shape_accuracy``) get ``train_``; a search
    trial's ``objective`` was its validation objective."""
    out = {}
    for key, value in row.items():
        if key in _PLAIN:
            out[key] = value
        elif key == OBJECTIVE:
            out[split_key(OBJECTIVE, "val")] = value
        else:
            out[_key(key, "train")] = value
    return out


def _job(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The job of a failed run the table kept by name only (``<config>-seed<n>``)."""
    seed = int(name.removeprefix(f"{config['config_id']}-seed").split("-", 1)[0])
    return {"config_id": config["config_id"], "params": config["params"], "seed": seed, "task": None}
