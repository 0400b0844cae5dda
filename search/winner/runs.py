"""One retraining run: what it trains (:class:`Job`) and what it leaves (:class:`RunResult`, ``result.json``).

A run's directory is ``<run dir>/retrain/<job name>/``; its ``result.json`` is written last and
atomically, so a run that has one is finished. Pure Python: no Ray, no Keras.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from search.rundir.records import atomic_write

__all__ = ["RESULT_FILE", "Job", "RunResult"]

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Job:
    """What one retraining run trains: a search trial's parameters, a seed, optionally one task alone."""

    config_id: str
    params: dict[str, Any] = field(hash=False)
    seed: int
    task: str | None = None

    @property
    def name(self) -> str:
        return f"{self.config_id}-seed{self.seed}" + (f"-only-{self.task}" if self.task else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunResult:
    """How a retraining run ended: its epochs, the best epoch, and its metrics on the val and test splits.

    ``val_metrics`` keys are ``val_*`` and ``test_metrics`` keys ``test_*``, each with the objective
    (``val_objective``, ``test_objective``); ``history`` holds one row per epoch.
    """

    job: Job
    status: Literal["completed", "failed"]
    epochs: int = 0
    best_epoch: int | None = None
    wall_s: float | None = None
    val_metrics: Mapping[str, float] = field(default_factory=dict)
    test_metrics: Mapping[str, float] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    failure: str | None = None

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def summary(self) -> dict[str, Any]:
        """What the retrain table keeps of a completed run (everything but its history)."""
        return {"name": self.name, "job": self.job.to_dict(), "epochs": self.epochs, "best_epoch": self.best_epoch,
                "wall_s": self.wall_s, "val_metrics": dict(self.val_metrics), "test_metrics": dict(self.test_metrics)}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "status": self.status, "failure": self.failure, "history": list(self.history)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, status: str = "completed") -> RunResult:
        """A run from its ``result.json`` (or from a table's summary, which is of a completed run)."""
        return cls(job=Job(**data["job"]), status=data.get("status", status), epochs=data.get("epochs", 0),
                   best_epoch=data.get("best_epoch"), wall_s=data.get("wall_s"),
                   val_metrics=dict(data.get("val_metrics") or {}), test_metrics=dict(data.get("test_metrics") or {}),
                   history=tuple(data.get("history") or ()), failure=data.get("failure"))

    def write(self, directory: Path) -> None:
        atomic_write(directory / RESULT_FILE, json.dumps(self.to_dict(), indent=1, default=float))

    @classmethod
    def read(cls, directory: Path, job: Job) -> RunResult:
        """The result in ``directory``; a failed result saying so where the run left none."""
        path = directory / RESULT_FILE
        if not path.is_file():
            return cls(job=job, status="failed", failure="the run did not finish")
        return cls.from_dict(json.loads(path.read_text()))
