"""The retrain table: per configuration, test metrics as mean ± std over seeds, and the winner.

Built from the retraining runs (:class:`~search.winner.runs.RunResult`); written as ``retrain.json``
(everything, per seed), ``retrain.csv`` (one row per configuration, mean and std columns) and
``retrain.md`` (the table people read); read back by :func:`load_table` as the same typed table.
Every metric key is a test-split key (``test_objective``, ``test_shape_accuracy``). Numpy and
pandas only: it calls no Keras and imports no Ray, so a table can be read and rewritten without
a model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from search.errors import ConfigError
from search.experiment.metrics import OBJECTIVE, higher_is_better, metric_key, split_key
from search.rundir.directory import RETRAIN_DIR
from search.rundir.records import atomic_write
from search.winner.runs import RunResult
from search.winner.statistics import delta_m, mean_std

if TYPE_CHECKING:
    from mtl_models.spec import TaskSpec
    from search.experiment.prepared import Prepared

__all__ = ["TABLE_FILE", "TEST_OBJECTIVE", "Baselines", "ConfigResult", "RetrainTable", "TaskBaseline", "build_table",
           "load_table"]

TABLE_FILE = "retrain.json"
TEST_OBJECTIVE = split_key(OBJECTIVE, "test")
_VAL_OBJECTIVE = split_key(OBJECTIVE, "val")


@dataclass(frozen=True)
class ConfigResult:
    """One configuration's retraining runs (one per seed) and their test metrics over seeds."""

    config_id: str
    params: Mapping[str, Any]
    search_rank: int
    runs: tuple[RunResult, ...]  # the completed runs
    failed: tuple[RunResult, ...] = ()
    mean: Mapping[str, float] = field(default_factory=dict)
    std: Mapping[str, float] = field(default_factory=dict)

    @property
    def best_run(self) -> RunResult:
        """The seed whose model is exported: the best objective on the validation split (not the test split)."""
        return max(self.runs, key=lambda r: r.val_metrics.get(_VAL_OBJECTIVE, -math.inf))

    def to_dict(self) -> dict[str, Any]:
        return {"config_id": self.config_id, "params": dict(self.params), "search_rank": self.search_rank,
                "mean": dict(self.mean), "std": dict(self.std), "runs": [r.summary() for r in self.runs],
                "failed": [{"name": r.name, "job": r.job.to_dict(), "failure": r.failure} for r in self.failed]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigResult:
        return cls(data["config_id"], dict(data["params"]), data["search_rank"],
                   tuple(RunResult.from_dict(r) for r in data["runs"]),
                   tuple(RunResult.from_dict(r, status="failed") for r in data.get("failed", ())),
                   dict(data["mean"]), dict(data["std"]))


@dataclass(frozen=True)
class TaskBaseline:
    """One task trained alone with the winner's network: its score over seeds beside the multi-task model's."""

    metric: str  # the task's score metric on the test split, e.g. test_shape_accuracy
    seeds: tuple[int, ...]
    failed: tuple[str, ...] = ()  # the failed runs' reasons
    mean: float | None = None
    std: float | None = None
    multi_task_mean: float | None = None


@dataclass(frozen=True)
class Baselines:
    """Single-task baselines of the winner and Δm% (LibMTL) over each task's score metric."""

    config_id: str
    tasks: Mapping[str, TaskBaseline]
    delta_m_percent: float | None = None

    def to_dict(self) -> dict[str, Any]:
        tasks = {name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in b.__dict__.items()}
                 for name, b in self.tasks.items()}
        return {"config_id": self.config_id, "tasks": tasks, "delta_m_percent": self.delta_m_percent}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baselines:
        tasks = {name: TaskBaseline(**{**b, "seeds": tuple(b["seeds"]), "failed": tuple(b.get("failed", ()))})
                 for name, b in data["tasks"].items()}
        return cls(data["config_id"], tasks, data.get("delta_m_percent"))


@dataclass(frozen=True)
class RetrainTable:
    """Configurations ranked by ``key`` (mean over seeds); the first is the winner."""

    experiment: str
    key: str
    configs: tuple[ConfigResult, ...]
    metric_keys: tuple[str, ...]
    seeds: tuple[int, ...]
    baselines: Baselines | None = None

    @property
    def winner(self) -> ConfigResult | None:
        ranked = [c for c in self.configs if c.runs]
        return ranked[0] if ranked else None

    def with_baselines(self, results: Mapping[str, RunResult], tasks: Sequence[TaskSpec]) -> RetrainTable:
        """Add single-task baselines of the winner and Δm% (LibMTL) over each task's score metric."""
        winner = self.winner
        single, multi, per_task = {}, {}, {}
        for task in tasks:
            key = metric_key(task.name, task.score_metric, "test")
            runs = [r for r in results.values() if r.job.task == task.name]
            done = [r for r in runs if r.completed]
            values = [r.test_metrics[key] for r in done]
            mean, std = mean_std(values) if values else (None, None)
            per_task[task.name] = TaskBaseline(key, tuple(r.job.seed for r in done),
                                               tuple(r.failure for r in runs if not r.completed), mean, std,
                                               winner.mean.get(key))
            if values:
                single[key], multi[key] = mean, winner.mean[key]
        value = delta_m(multi, single) if single and len(single) == len(tasks) else None
        return replace(self, baselines=Baselines(winner.config_id, per_task, value))

    # Output -------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per configuration: rank, config, search rank, seeds, then mean and std of each metric."""
        rows = []
        for rank, config in enumerate(self.configs, start=1):
            row = {"rank": rank if config.runs else None, "config": config.config_id,
                   "search_rank": config.search_rank, "seeds": len(config.runs)}
            for key in (TEST_OBJECTIVE, *self.metric_keys):
                row[f"{key}_mean"] = config.mean.get(key)
                row[f"{key}_std"] = config.std.get(key)
            row.update({f"param.{k}": v for k, v in config.params.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        winner = self.winner
        return {
            "experiment": self.experiment,
            "selected_by": self.key,
            "seeds": list(self.seeds),
            "metric_keys": list(self.metric_keys),
            "winner": {"config_id": winner.config_id, "exported_run": winner.best_run.name} if winner else None,
            "configs": [c.to_dict() for c in self.configs],
            "baselines": self.baselines.to_dict() if self.baselines else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainTable:
        baselines = Baselines.from_dict(data["baselines"]) if data.get("baselines") else None
        return cls(data["experiment"], data["selected_by"], tuple(ConfigResult.from_dict(c) for c in data["configs"]),
                   tuple(data["metric_keys"]), tuple(data["seeds"]), baselines)

    def render_markdown(self) -> str:
        keys = (TEST_OBJECTIVE, *self.metric_keys)
        lines = [f"# Retrain: {self.experiment}", "",
                 f"Test-split metrics, mean ± std over seeds {', '.join(map(str, self.seeds))}; "
                 f"ranked by the mean of `{self.key}`"
                 + (" (higher is better)." if higher_is_better(self.key) else " (lower is better)."), ""]
        lines.append("| rank | config | search rank | seeds | " + " | ".join(keys) + " |")
        lines.append("| ---: | --- | ---: | ---: | " + " | ".join("---:" for _ in keys) + " |")
        for rank, c in enumerate(self.configs, start=1):
            cells = [_pm(c.mean.get(k), c.std.get(k)) for k in keys]
            lines.append(f"| {rank if c.runs else ''} | {c.config_id} | {c.search_rank} | {len(c.runs)} | "
                         + " | ".join(cells) + " |")
        winner = self.winner
        if winner:
            lines += ["", f"Winner: **{winner.config_id}**; exported run: {winner.best_run.name} "
                          "(the seed with the best validation objective)."]
            lines += ["", "Parameters: " + ", ".join(f"`{k}={_fmt(v)}`" for k, v in winner.params.items())]
        for r in (r for c in self.configs for r in c.failed):
            lines.append(f"- run {r.name} failed: {r.failure}")
        if self.baselines:
            lines += ["", "## Single-task baselines", "",
                      f"Each task trained alone with {self.baselines.config_id}'s network, same budget and seeds.",
                      "", "| task | metric | single-task | multi-task |", "| --- | --- | ---: | ---: |"]
            for task, b in self.baselines.tasks.items():
                lines.append(f"| {task} | {b.metric} | {_pm(b.mean, b.std)} | {_fmt(b.multi_task_mean)} |")
            value = self.baselines.delta_m_percent
            lines += ["", f"Δm% (LibMTL: mean relative gain of the multi-task model, signed so that positive means "
                          f"sharing helped): **{_fmt(value, '+.2f')}%**" if value is not None else
                      "Δm% not computed: a baseline run failed."]
        return "\n".join(lines) + "\n"

    def write(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(root / TABLE_FILE, json.dumps(self.to_dict(), indent=1, default=float) + "\n")
        atomic_write(root / "retrain.csv", self.to_frame().to_csv(index=False))
        atomic_write(root / "retrain.md", self.render_markdown())


def build_table(prepared: Prepared, configs: Sequence[tuple[str, Mapping]], results: Mapping[str, RunResult],
                *, key: str) -> RetrainTable:
    """Group runs by configuration, average over seeds, rank by ``key`` (best first; failed last)."""
    metric_keys = tuple(metric_key(t.name, m, "test") for t in prepared.tasks for m in t.metrics)
    out = []
    for search_rank, (config_id, params) in enumerate(configs, start=1):
        runs = [r for r in results.values() if r.job.config_id == config_id and not r.job.task]
        done = tuple(r for r in runs if r.completed)
        stats = {k: mean_std([r.test_metrics[k] for r in done]) for k in (TEST_OBJECTIVE, *metric_keys)
                 if done and all(k in r.test_metrics for r in done)}
        out.append(ConfigResult(config_id, dict(params), search_rank, done, tuple(r for r in runs if not r.completed),
                                {k: v[0] for k, v in stats.items()}, {k: v[1] for k, v in stats.items()}))
    sign = 1.0 if higher_is_better(key) else -1.0
    out.sort(key=lambda c: (not c.runs, -sign * c.mean.get(key, -sign * math.inf)))
    return RetrainTable(prepared.experiment.name, key, tuple(out), metric_keys,
                        tuple(sorted({r.job.seed for r in results.values()})))


def load_table(run_dir: str | Path) -> RetrainTable:
    """The retrain table a retrain wrote (``retrain/retrain.json``); ConfigError naming the fix if there is none."""
    path = Path(run_dir) / RETRAIN_DIR / TABLE_FILE
    if not path.is_file():
        raise ConfigError("run_dir", f"has no retrained models ({path} is missing); run "
                          f"`mtl-search retrain {run_dir}` first", str(run_dir))
    return RetrainTable.from_dict(json.loads(path.read_text()))


def _fmt(value: Any, spec: str = ".4g") -> str:
    if isinstance(value, float):
        return format(value, spec)
    return "" if value is None else str(value)


def _pm(mean: float | None, std: float | None) -> str:
    return "" if mean is None else f"{mean:.4f} ± {std or 0:.4f}"
