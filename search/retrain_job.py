"""One retraining run: a configuration at full budget with one seed, judged once on the test split.

A run trains with early stopping that restores the best weights, reduce-LR-on-plateau,
a best checkpoint (``model.keras``) chosen by the objective on the validation split, and
TensorBoard logs; then the best checkpoint is evaluated on the test split, which the
search never saw. Everything lands in the run's own directory, ``result.json`` last, so
a run with a ``result.json`` is finished and a repeated retrain skips it.

A single-task baseline run (``task`` set) trains that task's head alone on the same
backbone, with the same budget and seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from mtl_models.spec import ModelSpec
from search.evaluation import split_metrics
from search.objective import Objective, task_term
from search.prepared import Prepared
from search.trainable import FAILURES_DIR, TrialFailure, configure_tensorflow, fails_for_good

__all__ = ["Job", "run_job", "single_task_spec", "RESULT_FILE", "MODEL_FILE"]

RESULT_FILE = "result.json"
MODEL_FILE = "model.keras"
MONITOR = "val_objective"


@dataclass(frozen=True)
class Job:
    """What one retraining run trains: a search trial's parameters, a seed, optionally one task."""

    config_id: str
    params: dict[str, Any] = field(hash=False)
    seed: int
    task: str | None = None

    @property
    def name(self) -> str:
        return f"{self.config_id}-seed{self.seed}" + (f"-only-{self.task}" if self.task else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def single_task_spec(spec: ModelSpec, task: str) -> ModelSpec:
    """The same network with ``task``'s head alone: no transfer edges, no stop-gradient, weight 1."""
    head = dataclasses.replace(spec.head(task), transfer_from=(), stop_gradient=False, loss_weight=1.0)
    return spec.replace(heads=(head,), loss_weighting="fixed", name=f"{spec.name}_{task}")


def job_objective(prepared: Prepared, job: Job) -> Objective:
    """What the run's checkpoint and early stopping maximise: the experiment's objective, or the task's score."""
    if job.task is None:
        return dataclasses.replace(prepared.objective, multi=False)
    task = next(t for t in prepared.tasks if t.name == job.task)
    return Objective((task_term(task, prepared.splits),))


def run_job(config: dict[str, Any], *, prepared: Prepared, root: str, epochs: int, patience: int) -> None:
    """The Ray Tune trainable of a retraining run (``config["job"]`` is a :meth:`Job.to_dict`).

    A run whose node is lost is retried from its start; one that raised is not (its reason is
    kept under ``root/failures``, see :func:`search.trainable.fails_for_good`).
    """
    with fails_for_good(str(Path(root) / FAILURES_DIR)):
        _run_job(Job(**config["job"]), prepared, Path(root), epochs, patience)


def _run_job(job: Job, prepared: Prepared, root: Path, epochs: int, patience: int) -> None:
    from ray import tune

    directory = root / job.name
    directory.mkdir(parents=True, exist_ok=True)
    configure_tensorflow(prepared.experiment.resources.cpus)
    spec, batch_size = prepared.spec_for(job.params)
    if job.task:
        spec = single_task_spec(spec, job.task)
    objective = job_objective(prepared, job)
    tasks = [t for t in prepared.tasks if t.name in {h.name for h in spec.heads}]
    keras.utils.set_random_seed(job.seed)
    from mtl_models.factory import build_model

    model = build_model(spec)
    train, val = _only(prepared.splits.train, tasks), _only(prepared.splits.val, tasks)
    started = time.time()
    history = _History(objective, lambda logs: tune.report(logs))
    monitor = dict(monitor=MONITOR, mode="max")
    model.fit(
        train[0], train[1], batch_size=batch_size, epochs=epochs, validation_data=val, verbose=0,
        callbacks=[
            history,  # first: it adds val_objective to the logs the callbacks below read
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.ModelCheckpoint(str(directory / MODEL_FILE), save_best_only=True, **monitor),
            keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True, **monitor),
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, patience // 3), min_lr=1e-6, **monitor),
            keras.callbacks.TensorBoard(str(directory / "tensorboard"), write_graph=False),
        ],
    )
    result = {"job": job.to_dict(), "name": job.name, "epochs": len(history.rows), "history": history.rows,
              "wall_s": round(time.time() - started, 2)}
    if history.failure or not (directory / MODEL_FILE).exists():
        result.update(status="failed", failure=history.failure or "no epoch finished with a finite objective")
        _write(directory / RESULT_FILE, result)
        raise TrialFailure(result["failure"])
    best = keras.models.load_model(directory / MODEL_FILE, safe_mode=True)
    result.update(
        status="completed",
        best_epoch=history.best_epoch,
        val_metrics=split_metrics(best, prepared.splits.val, tasks, objective),
        test_metrics=split_metrics(best, prepared.splits.test, tasks, objective),
    )
    _write(directory / RESULT_FILE, result)


def _only(data, tasks):
    names = {t.name for t in tasks}
    return dict(data.inputs), {k: v for k, v in data.targets.items() if k in names}


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


class _History(keras.callbacks.Callback):
    """Adds ``val_objective`` to each epoch's logs, keeps them, and reports them to Ray Tune."""

    def __init__(self, objective: Objective, report):
        super().__init__()
        self.objective = objective
        self.report = report
        self.rows: list[dict[str, float]] = []
        self.best, self.best_epoch = -math.inf, 0
        self.failure: str | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if len(self.model.output_names) == 1:  # one output: Keras logs "val_mae", not "val_midpoint_mae"
            task = self.model.output_names[0]
            for key in [k for k in logs if k not in ("loss", "val_loss") and not k.startswith((task, "val_" + task))]:
                prefix = "val_" if key.startswith("val_") else ""
                logs[f"{prefix}{task}_{key.removeprefix(prefix)}"] = logs.pop(key)
        loss = float(logs.get("loss", math.nan))
        value = self.objective.value({k: float(v) for k, v in logs.items()})
        if not math.isfinite(loss):
            self.failure = f"loss became {loss} at epoch {epoch + 1}"
            self.model.stop_training = True
        # A non-finite objective must never win the checkpoint: report it as -inf.
        logs[MONITOR] = value if math.isfinite(value) else -math.inf
        if logs[MONITOR] > self.best:
            self.best, self.best_epoch = logs[MONITOR], epoch + 1
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append(row)
        self.report({k: v for k, v in row.items() if math.isfinite(v)})
