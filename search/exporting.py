"""Export the retrained winner, and use an exported model: evaluate it again, fine-tune one head.

``export(run_dir, out)`` writes the winner's best seed (chosen on the validation split) as a
model directory (:mod:`search.model_dir`) whose card carries the test metrics as mean and std
over seeds. ``evaluate(model_dir)`` rebuilds the test split from the card's data set and
split seeds and recomputes the metrics; ``finetune(model_dir, task)`` is network (e)'s step:
freeze the backbone, train one head, write a new model directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from search.config import load_experiment
from search.errors import ConfigError
from search.evaluation import split_metrics
from search.model_dir import EXPERIMENT, check_out_dir, load_model, read_card, software_versions, write_model_dir
from search.prepared import Prepared, prepare
from search.retraining import RETRAIN_DIR, load_table
from search.rundir import read_run_info

__all__ = ["export", "evaluate", "finetune", "make_card"]


def export(run_dir: str | Path, out: str | Path, *, force: bool = False) -> Path:
    """Write the retrained winner of ``run_dir`` to ``out`` (refused if it exists, unless ``force``)."""
    run_dir, out = Path(run_dir), Path(out)
    table = load_table(run_dir)
    if not table.get("winner"):
        raise ConfigError("run_dir", "has no retrained model that finished; see retrain/retrain.md", str(run_dir))
    check_out_dir(out, force=force)
    info = read_run_info(run_dir)
    experiment_text = (run_dir / info.experiment_file).read_text(encoding="utf-8")
    prepared = prepare(load_experiment(run_dir / info.experiment_file))
    winner = next(c for c in table["configs"] if c["config_id"] == table["winner"]["config_id"])
    run = next(r for r in winner["runs"] if r["name"] == table["winner"]["exported_run"])
    model = load_model(run_dir / RETRAIN_DIR / run["name"])  # a run directory holds model.keras too
    card = make_card(prepared, winner, run, table)
    return write_model_dir(out, model, card, experiment_text, force=force)


def make_card(prepared: Prepared, winner: dict, run: dict, table: dict) -> dict[str, Any]:
    """The model card: what the model is, how it was chosen and what it scores on the test split."""
    experiment = prepared.experiment
    spec, batch_size = prepared.spec_for(winner["params"])
    data = experiment.data
    baselines = table.get("baselines") or {}
    return {
        "name": f"{experiment.name}-{winner['config_id']}",
        "summary": f"The winner of search `{experiment.name}` after retraining its top {len(table['configs'])} "
                   f"configurations with seeds {table['seeds']}, selected by mean test `{table['selected_by']}`.",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "experiment": experiment.name,
        "config_id": winner["config_id"],
        "params": winner["params"],
        "batch_size": batch_size,
        "spec": spec.to_dict(),
        "inputs": [{"name": i.name, "shape": list(i.shape)} for i in spec.inputs],
        "tasks": [{"name": t.name, "kind": t.kind, "num_classes": t.num_classes, "output_dim": t.output_dim,
                   "metrics": list(t.metrics)} for t in prepared.tasks],
        "data": {"dataset": data.dataset, "options": dict(data.options), "val_fraction": data.val_fraction,
                 "test_fraction": data.test_fraction, "split_seed": data.split_seed, "stratify": data.stratify,
                 "train_size": _size(prepared.splits.train), "val_size": _size(prepared.splits.val),
                 "test_size": _size(prepared.splits.test)},
        "seeds": table["seeds"],
        "selected_by": table["selected_by"],
        "test_metrics": {k: {"mean": winner["mean"][k], "std": winner["std"][k], "seeds": len(winner["runs"])}
                         for k in winner["mean"]},
        "exported_model": {"run": run["name"], "seed": run["job"]["seed"], "best_epoch": run["best_epoch"],
                           "epochs": run["epochs"], "val_metrics": run["val_metrics"],
                           "test_metrics": run["test_metrics"]},
        "delta_m_percent": baselines.get("delta_m_percent"),
        "software": software_versions(),
    }


def _size(data) -> int:
    return len(next(iter(data.inputs.values())))


def _prepared_for(model_dir: Path) -> Prepared:
    return prepare(load_experiment(model_dir / EXPERIMENT))


def evaluate(model_dir: str | Path) -> pd.DataFrame:
    """Recompute the test metrics of an exported model; one row per metric beside the card's values."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    prepared = _prepared_for(model_dir)
    now = split_metrics(load_model(model_dir), prepared.splits.test, prepared.tasks, prepared.objective)
    own = card["exported_model"]["test_metrics"]
    rows = [{"metric": key, "now": value, "card": own.get(key),
             "difference": value - own[key] if key in own else None,
             "mean_over_seeds": card["test_metrics"].get(key, {}).get("mean"),
             "std_over_seeds": card["test_metrics"].get(key, {}).get("std")}
            for key, value in now.items()]
    return pd.DataFrame(rows)


def finetune(model_dir: str | Path, task: str, *, out: str | Path | None = None, freeze: str = "backbone",
             epochs: int | None = None, learning_rate: float | None = None, force: bool = False,
             progress: Callable[[str], None] = print) -> Path:
    """Freeze the backbone, fine-tune ``task``'s head, and write the result as a new model directory."""
    import keras

    from mtl_models.factory import freeze_for_finetune
    from mtl_models.spec import ModelSpec

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    names = [t["name"] for t in card["tasks"]]
    if task not in names:
        raise ConfigError("--task", f"must name a task of the model {names}", task)
    if freeze != "backbone":
        raise ConfigError("--freeze", "must be 'backbone' (the only part that can be frozen)", freeze)
    out = Path(out) if out else model_dir.with_name(f"{model_dir.name}-finetuned-{task}")
    check_out_dir(out, force=force)
    prepared = _prepared_for(model_dir)
    spec = ModelSpec.from_dict(card["spec"])
    epochs = epochs or prepared.experiment.budget.max_epochs
    learning_rate = learning_rate or spec.optimizer.learning_rate / 10
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError("--epochs", "must be an integer >= 1", epochs)
    if not isinstance(learning_rate, (int, float)) or not 0 < learning_rate < 1:
        raise ConfigError("--learning-rate", "must be a number in (0, 1)", learning_rate)
    model = load_model(model_dir)
    before = split_metrics(model, prepared.splits.test, prepared.tasks, prepared.objective)
    freeze_for_finetune(model, spec, task, learning_rate=learning_rate)
    t = next(t for t in prepared.tasks if t.name == task)
    monitor = f"val_{task}_{t.score_metric}"
    mode = "min" if t.score_metric in ("mae", "mse", "rmse") else "max"
    train, val = prepared.splits.train, prepared.splits.val
    keras.utils.set_random_seed(card["exported_model"]["seed"])
    progress(f"Fine-tuning {task!r} on frozen features for up to {epochs} epochs (learning rate {learning_rate:g}).")
    key = monitor.removeprefix("val_")
    original, val_before = model.get_weights(), split_metrics(model, val, prepared.tasks)[key]
    history = model.fit(dict(train.inputs), dict(train.targets), validation_data=(dict(val.inputs), dict(val.targets)),
                        batch_size=card.get("batch_size", prepared.experiment.batch_size), epochs=epochs, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=max(3, epochs // 5),
                                                                 restore_best_weights=True)])
    val_after = split_metrics(model, val, prepared.tasks)[key]
    improved = val_after < val_before if mode == "min" else val_after > val_before
    if not improved:  # fine-tuning must not make the model worse on the data it is judged by
        model.set_weights(original)
        progress(f"No epoch improved val {key} ({val_before:.6g}); the original head is kept.")
    else:
        progress(f"Val {key}: {val_before:.6g} -> {val_after:.6g}.")
    after = split_metrics(model, prepared.splits.test, prepared.tasks, prepared.objective)
    card = dict(card)
    card["name"] = f"{card['name']}-finetuned-{task}"
    card["finetuned"] = {"from": str(model_dir), "task": task, "freeze": freeze, "learning_rate": learning_rate,
                         "epochs": len(history.history["loss"]), "improved": bool(improved),
                         "val_before": val_before, "val_after": val_after if improved else val_before,
                         "test_metrics_before": before}
    card["exported_model"] = {**card["exported_model"], "test_metrics": after}
    card["test_metrics"] = {k: {"mean": v, "std": 0.0, "seeds": 1} for k, v in after.items()}
    card["software"] = software_versions()
    experiment_text = (model_dir / EXPERIMENT).read_text(encoding="utf-8")
    return write_model_dir(out, model, card, experiment_text, force=force)
