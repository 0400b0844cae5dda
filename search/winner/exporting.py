"""Export the retrained winner as a model directory whose card says how it was chosen and what it scores.

``export(run_dir, out)`` writes the winner's best seed (chosen on the validation split) as a
model directory (:mod:`search.winner.model_dir`) whose card carries the test metrics as mean and
std over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from search.errors import ConfigError
from search.experiment.config import load_experiment
from search.experiment.prepared import Prepared, prepare
from search.rundir.directory import FORMAT, RETRAIN_DIR, read_run_info
from search.winner.formats import DEFAULT_FORMATS, check_formats, parse_formats
from search.winner.model_dir import check_out_dir, load_model, software_versions, write_model_dir
from search.winner.retrain_table import ConfigResult, RetrainTable, load_table
from search.winner.runs import RunResult

__all__ = ["export", "make_card"]


def export(run_dir: str | Path, out: str | Path, *, force: bool = False,
           formats: str | Sequence[str] = DEFAULT_FORMATS) -> Path:
    """Write the retrained winner of ``run_dir`` to ``out`` (refused if it exists, unless ``force``) in
    ``formats`` (``"keras,savedmodel,onnx,litert"`` or a sequence of those names; model.keras always)."""
    run_dir, out = Path(run_dir), Path(out)
    formats = parse_formats(formats if isinstance(formats, str) else ",".join(formats))
    check_formats(formats)
    table = load_table(run_dir)
    winner = table.winner
    if winner is None:
        raise ConfigError("run_dir", "has no retrained model that finished; see retrain/retrain.md", str(run_dir))
    check_out_dir(out, force=force)
    info = read_run_info(run_dir)
    experiment_text = (run_dir / info.experiment_file).read_text(encoding="utf-8")
    prepared = prepare(load_experiment(run_dir / info.experiment_file))
    run = winner.best_run
    model = load_model(run_dir / RETRAIN_DIR / run.name)  # a retrain run's directory holds its model.keras
    return write_model_dir(out, model, make_card(prepared, winner, run, table), experiment_text, force=force,
                           formats=formats)


def make_card(prepared: Prepared, winner: ConfigResult, run: RunResult, table: RetrainTable) -> dict[str, Any]:
    """The model card: what the model is, how it was chosen and what it scores on the test split."""
    experiment = prepared.experiment
    spec, batch_size = prepared.spec_for(winner.params)
    data = experiment.data
    return {
        "format": FORMAT,
        "name": f"{experiment.name}-{winner.config_id}",
        "summary": f"The winner of search `{experiment.name}` after retraining its top {len(table.configs)} "
                   f"configurations with seeds {list(table.seeds)}, selected by mean `{table.key}`.",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "experiment": experiment.name,
        "config_id": winner.config_id,
        "params": dict(winner.params),
        "batch_size": batch_size,
        "spec": spec.to_dict(),
        "inputs": [{"name": i.name, "shape": list(i.shape),
                    **({"pixel_max": _pixel_max(prepared.splits.train.inputs[i.name])} if len(i.shape) == 3 else {})}
                   for i in spec.inputs],
        "tasks": [{"name": t.name, "kind": t.kind, "num_classes": t.num_classes, "output_dim": t.output_dim,
                   "metrics": list(t.metrics), "class_names": list(t.class_names)} for t in prepared.tasks],
        "data": {"dataset": data.dataset, "options": dict(data.options), "val_fraction": data.val_fraction,
                 "test_fraction": data.test_fraction, "split_seed": data.split_seed, "stratify": data.stratify,
                 "train_size": _size(prepared.splits.train), "val_size": _size(prepared.splits.val),
                 "test_size": _size(prepared.splits.test)},
        "seeds": list(table.seeds),
        "selected_by": table.key,
        "test_metrics": {k: {"mean": winner.mean[k], "std": winner.std[k], "seeds": len(winner.runs)}
                         for k in winner.mean},
        "exported_model": {"run": run.name, "seed": run.job.seed, "best_epoch": run.best_epoch, "epochs": run.epochs,
                           "val_metrics": dict(run.val_metrics), "test_metrics": dict(run.test_metrics)},
        "delta_m_percent": table.baselines.delta_m_percent if table.baselines else None,
        "software": software_versions(),
    }


def _pixel_max(images) -> float:
    """What white is in an image input's training values: 255.0 for files decoded as bytes (an image folder) or
    arrays in [0, 255]; 1.0 for arrays in [0, 1] (the built-in data sets). The SavedModel's encoded-images
    signature scales decoded bytes to it."""
    if not isinstance(images, np.ndarray):
        return 255.0
    return 1.0 if float(images.max(initial=0.0)) <= 1.0 else 255.0


def _size(data) -> int:
    return len(next(iter(data.inputs.values())))
