"""The retrain table: per configuration, test metrics as mean ± std over seeds, and the winner.

Built from the retraining runs' ``result.json`` files; written as ``retrain.json`` (everything,
per seed), ``retrain.csv`` (one row per configuration, mean and std columns) and
``retrain.md`` (the table people read). Pure Python, numpy and pandas.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from mtl_models.spec import TaskSpec
from search.evaluation import delta_m, higher_is_better, mean_std
from search.prepared import Prepared

__all__ = ["ConfigResult", "RetrainTable", "build_table"]


@dataclass(frozen=True)
class ConfigResult:
    """One configuration's retraining runs (one per seed) and their test metrics over seeds."""

    config_id: str
    params: Mapping[str, Any]
    search_rank: int
    runs: tuple[Mapping[str, Any], ...]  # completed runs' result.json contents
    failed: tuple[Mapping[str, Any], ...] = ()
    mean: Mapping[str, float] = field(default_factory=dict)
    std: Mapping[str, float] = field(default_factory=dict)

    @property
    def best_run(self) -> Mapping[str, Any]:
        """The seed whose model is exported: the best objective on the validation split (not the test split)."""
        return max(self.runs, key=lambda r: r["val_metrics"].get("objective", -math.inf))


@dataclass(frozen=True)
class RetrainTable:
    """Configurations ranked by ``key`` (mean over seeds); the first is the winner."""

    experiment: str
    key: str
    configs: tuple[ConfigResult, ...]
    metric_keys: tuple[str, ...]
    seeds: tuple[int, ...]
    baselines: Mapping[str, Any] | None = None

    @property
    def winner(self) -> ConfigResult | None:
        ranked = [c for c in self.configs if c.runs]
        return ranked[0] if ranked else None

    def with_baselines(self, results: Mapping[str, Mapping[str, Any]], tasks: Sequence[TaskSpec]) -> RetrainTable:
        """Add single-task baselines of the winner and Δm% (LibMTL) over each task's score metric."""
        winner = self.winner
        single, multi, per_task = {}, {}, {}
        for task in tasks:
            key = f"{task.name}_{task.score_metric}"
            runs = [r for r in results.values() if r.get("job", {}).get("task") == task.name]
            done = [r for r in runs if r.get("status") == "completed"]
            values = [r["test_metrics"][key] for r in done]
            per_task[task.name] = {
                "metric": key, "seeds": [r["job"]["seed"] for r in done],
                "failed": [r.get("failure") for r in runs if r.get("status") != "completed"],
                **(dict(zip(("mean", "std"), mean_std(values))) if values else {}),
                "multi_task_mean": winner.mean.get(key),
            }
            if values:
                single[key], multi[key] = per_task[task.name]["mean"], winner.mean[key]
        value = delta_m(multi, single) if single and len(single) == len(tasks) else None
        return replace(self, baselines={"config_id": winner.config_id, "tasks": per_task, "delta_m_percent": value})

    # Output -------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per configuration: rank, config, search rank, seeds, then mean and std of each metric."""
        rows = []
        for rank, config in enumerate(self.configs, start=1):
            row = {"rank": rank if config.runs else None, "config": config.config_id,
                   "search_rank": config.search_rank, "seeds": len(config.runs)}
            for key in ("objective", *self.metric_keys):
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
            "winner": {"config_id": winner.config_id, "exported_run": winner.best_run["name"]} if winner else None,
            "configs": [
                {"config_id": c.config_id, "params": dict(c.params), "search_rank": c.search_rank,
                 "mean": dict(c.mean), "std": dict(c.std), "runs": [_run_summary(r) for r in c.runs],
                 "failed": [{"name": r.get("name"), "failure": r.get("failure")} for r in c.failed]}
                for c in self.configs
            ],
            "baselines": self.baselines,
        }

    def render_markdown(self) -> str:
        keys = ("objective", *self.metric_keys)
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
            lines += ["", f"Winner: **{winner.config_id}**; exported run: {winner.best_run['name']} "
                          "(the seed with the best validation objective)."]
            lines += ["", "Parameters: " + ", ".join(f"`{k}={_fmt(v)}`" for k, v in winner.params.items())]
        failed = [r for c in self.configs for r in c.failed]
        for r in failed:
            lines.append(f"- run {r.get('name')} failed: {r.get('failure')}")
        if self.baselines:
            lines += ["", "## Single-task baselines", "",
                      f"Each task trained alone with {self.baselines['config_id']}'s network, same budget and seeds.",
                      "", "| task | metric | single-task | multi-task |", "| --- | --- | ---: | ---: |"]
            for task, b in self.baselines["tasks"].items():
                lines.append(f"| {task} | {b['metric']} | {_pm(b.get('mean'), b.get('std'))} | "
                             f"{_fmt(b.get('multi_task_mean'))} |")
            value = self.baselines.get("delta_m_percent")
            lines += ["", f"Δm% (LibMTL: mean relative gain of the multi-task model, signed so that positive means "
                          f"sharing helped): **{_fmt(value, '+.2f')}%**" if value is not None else
                      "Δm% not computed: a baseline run failed."]
        return "\n".join(lines) + "\n"

    def write(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "retrain.json").write_text(json.dumps(self.to_dict(), indent=1, default=float) + "\n")
        self.to_frame().to_csv(root / "retrain.csv", index=False)
        (root / "retrain.md").write_text(self.render_markdown())


def build_table(prepared: Prepared, configs: Sequence[tuple[str, Mapping]], results: Mapping[str, Mapping],
                *, key: str) -> RetrainTable:
    """Group runs by configuration, average over seeds, rank by ``key`` (best first; failed last)."""
    metric_keys = tuple(f"{t.name}_{m}" for t in prepared.tasks for m in t.metrics)
    out = []
    for search_rank, (config_id, params) in enumerate(configs, start=1):
        runs = [r for r in results.values() if r["job"]["config_id"] == config_id and not r["job"].get("task")]
        done = tuple(r for r in runs if r.get("status") == "completed")
        stats = {k: mean_std([r["test_metrics"][k] for r in done]) for k in ("objective", *metric_keys)
                 if done and all(k in r["test_metrics"] for r in done)}
        out.append(ConfigResult(config_id, dict(params), search_rank, done,
                                tuple(r for r in runs if r.get("status") != "completed"),
                                {k: v[0] for k, v in stats.items()}, {k: v[1] for k, v in stats.items()}))
    sign = 1.0 if higher_is_better(key) else -1.0
    out.sort(key=lambda c: (not c.runs, -sign * c.mean.get(key, -sign * math.inf)))
    return RetrainTable(prepared.experiment.name, key, tuple(out), metric_keys,
                        tuple(sorted({r["job"]["seed"] for r in results.values()})))


def _run_summary(result: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("name", "job", "epochs", "best_epoch", "wall_s", "val_metrics", "test_metrics")
    return {k: result.get(k) for k in keep}


def _fmt(value: Any, spec: str = ".4g") -> str:
    if isinstance(value, float):
        return format(value, spec)
    return "" if value is None else str(value)


def _pm(mean: float | None, std: float | None) -> str:
    return "" if mean is None else f"{mean:.4f} ± {std or 0:.4f}"
