"""Engines side by side on the shapes experiment, each with the same wall budget (run by hand, not in CI).

    python bench/engines.py                      # 4 engines x seeds 0 1 2, 8 minutes each (~96 min)
    python bench/engines.py --seeds 0 --budget 480 --engines ray-asha kt-hyperband

Engines: ``ray-asha`` (this project: Optuna TPE + ASHA on the embedded Ray), ``kt-hyperband``
and ``kt-random`` (KerasTuner, one process), ``ray-random-fifo`` (Ray Tune, random search, no
early stopping). Each run is a normal search under results/bench/runs/<engine>-s<seed>/ and is
kept; a run already there is not repeated. The summary (medians over seeds; a run that never
reaches the target counts as the budget) goes to results/bench/latest.{json,md} with a PNG of
the best objective over time.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench"
TARGET = 0.98
ONE_PROCESS = {"resources": {"cpus": 2, "gpus": 0}, "concurrency": 1}
ENGINES = {
    "ray-asha": {"engine": "ray-tune", "searcher": {"sampler": "tpe"}},
    # KerasTuner trains one trial at a time: it gets both cores, as a KerasTuner user's one process would.
    "kt-hyperband": {"engine": "keras-tuner", "searcher": {"sampler": "hyperband"}, **ONE_PROCESS},
    "kt-random": {"engine": "keras-tuner", "searcher": {"sampler": "random"}, **ONE_PROCESS},
    # grace period = max epochs: ASHA never stops a trial, which is FIFO scheduling.
    "ray-random-fifo": {"engine": "ray-tune", "searcher": {"sampler": "random"}, "scheduler": {"grace_period": 15}},
}


def experiment(engine: str, seed: int, budget: float) -> dict:
    data = yaml.safe_load((ROOT / "configs" / "shapes.yaml").read_text())
    data = copy.deepcopy(data)
    data.update(ENGINES[engine])
    data["name"] = f"{engine}-s{seed}"
    data["seed"] = seed
    data["budget"] = {**data["budget"], "trials": 200, "time_limit_s": budget}
    return data


def run(engine: str, seed: int, budget: float) -> Path:
    runs = OUT / "runs"
    run_dir = runs / f"{engine}-s{seed}"
    if (run_dir / "leaderboard.csv").exists():
        print(f"{run_dir} exists; kept")
        return run_dir
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{engine}-s{seed}.yaml"
    path.write_text(yaml.safe_dump(experiment(engine, seed, budget), sort_keys=False))
    started = time.time()
    subprocess.run([sys.executable, "-m", "search.cli", "run", str(path), "--results-dir", str(runs)], check=False)
    (run_dir / "bench.json").write_text(json.dumps({"engine": engine, "seed": seed, "budget_s": budget,
                                                    "started": started, "wall_s": time.time() - started}))
    return run_dir


def measure(run_dir: Path) -> dict:
    """One run's figures: the best objective over time (at each trial's end), time to the target, best at the
    budget, trials; slot utilisation (training seconds / (wall x slots)) and per-trial start-up overhead (the
    trial's start to its first training step: worker start, imports, model build, data to the trainer)."""
    meta = json.loads((run_dir / "bench.json").read_text())
    records = [json.loads(p.read_text()) for p in (run_dir / "trials").glob("*.json")]
    events = sorted(_epoch_events(records, meta["started"]))
    timed = [r for r in records if r["started_at"] and r["history"] and r["history"][0].get("first_step_at")]
    training = sum(max(h.get("train_s") or 0.0 for h in r["history"]) for r in timed)
    launch = min((r["started_at"] for r in records if r["started_at"]), default=meta["started"]) - meta["started"]
    slots = 2 if meta["engine"].startswith("ray") else 1
    startup = _startup_overheads(timed, slots)
    curve, best = [], 0.0
    for t, value in events:
        if t <= meta["budget_s"]:
            best = max(best, value)
            curve.append((round(t, 1), best))
    reached = next((t for t, value in curve if value >= TARGET), None)
    return {"engine": meta["engine"], "seed": meta["seed"], "curve": curve, "best_at_budget": best,
            "time_to_target_s": reached if reached is not None else meta["budget_s"], "reached": reached is not None,
            "trials": len(records), "wall_s": meta["wall_s"], "launch_s": launch,
            # after launch (process start, data, Ray start: launch_s) and over the whole command
            "utilisation": training / ((meta["wall_s"] - launch) * slots),
            "utilisation_end_to_end": training / (meta["wall_s"] * slots),
            "startup_overhead_s": statistics.median(startup) if startup else None,
            "startup_overhead_max_s": max(startup) if startup else None}


def _startup_overheads(records: list[dict], slots: int) -> list[float]:
    """Seconds each trial's slot sat idle before its first training step.

    Trials take slots in the order they start; a trial's overhead runs from the moment its slot
    was freed (the end of the trial before it there) to its first step: scheduling, the worker,
    the model build and the data handed to Keras. The first trial in each slot counts from its
    own start event (the search's launch is ``launch_s``).
    """
    ordered = sorted(records, key=lambda r: r["history"][0]["first_step_at"])
    free = sorted(r["started_at"] for r in ordered[:slots])
    overheads = []
    for r in ordered:
        first_step = r["history"][0]["first_step_at"]
        freed = free.pop(0)
        overheads.append(max(0.0, first_step - freed))
        free = sorted([*free, r["started_at"] + (r["wall_s"] or 0.0)])
    return overheads


def _epoch_events(records: list[dict], started: float) -> list[tuple[float, float]]:
    """(seconds since the run began, val objective) at each epoch's end: a model the search holds from then on."""
    events = []
    for r in records:
        for h in r["history"]:
            if h.get("first_step_at") and h.get("train_s") is not None and h.get("objective") is not None:
                events.append((h["first_step_at"] + h["train_s"] - started, h["objective"]))
    return events


def summarise(results: list[dict], budget: float) -> dict:
    by_engine: dict[str, list[dict]] = {}
    for r in results:
        by_engine.setdefault(r["engine"], []).append(r)
    summary = {"budget_s": budget, "target": TARGET, "seeds": sorted({r["seed"] for r in results}),
               "time_to_target_s": {}, "best_at_budget": {}, "trials": {}, "utilisation": {}, "runs": results}
    for engine, runs in by_engine.items():
        summary["time_to_target_s"][engine] = statistics.median(r["time_to_target_s"] for r in runs)
        summary["best_at_budget"][engine] = statistics.median(r["best_at_budget"] for r in runs)
        summary["trials"][engine] = statistics.median(r["trials"] for r in runs)
        summary["utilisation"][engine] = statistics.median(r["utilisation"] for r in runs)
    return summary


def write(summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [f"# Engines on shapes: {summary['budget_s']:.0f} s each, seeds {summary['seeds']}", "",
             f"Medians over seeds; time to objective {TARGET} (the budget where never reached).", "",
             "| engine | time to target (s) | best at budget | trials | utilisation |", "|---|---:|---:|---:|---:|"]
    for engine in summary["time_to_target_s"]:
        lines.append(f"| {engine} | {summary['time_to_target_s'][engine]:.0f} | {summary['best_at_budget'][engine]:.4f} "
                     f"| {summary['trials'][engine]:.0f} | {summary['utilisation'][engine]:.2f} |")
    (OUT / "latest.md").write_text("\n".join(lines) + "\n")
    figure, ax = plt.subplots(figsize=(7, 4.5))
    colours = dict(zip(ENGINES, ("tab:red", "tab:blue", "tab:green", "tab:gray")))
    for r in summary["runs"]:
        if r["curve"]:
            times, values = zip(*r["curve"])
            ax.step(times, values, where="post", color=colours.get(r["engine"]), alpha=0.8,
                    label=r["engine"] if r["seed"] == summary["seeds"][0] else None)
    ax.axhline(TARGET, color="black", linewidth=0.8, linestyle="--")
    ax.set(xlabel="seconds", ylabel="best objective so far", ylim=(0.5, 1.0), title="Best objective over time")
    ax.legend()
    ax.grid(alpha=0.3)
    figure.savefig(OUT / "latest.png", dpi=90, bbox_inches="tight")


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=480.0, help="wall seconds per run (default 480)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench", help="where runs and the summary go (default results/bench)")
    args = parser.parse_args()
    OUT = args.out
    for seed in args.seeds:
        for engine in args.engines:
            run(engine, seed, args.budget)
    results = [measure(p) for p in sorted((OUT / "runs").iterdir()) if (p / "bench.json").exists()]
    write(summarise(results, args.budget))
    print((OUT / "latest.md").read_text())


if __name__ == "__main__":
    main()
