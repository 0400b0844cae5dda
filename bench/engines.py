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

from search.experiment.metrics import OBJECTIVE, split_key

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench"
TARGET = 0.98
# Lower bars, from the same runs: how fast each engine gets to a good model when the target is out of reach.
LOWER_TARGETS = (0.95, 0.96, 0.97)
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
            "time_to_lower_targets_s": {str(bar): next((t for t, value in curve if value >= bar), meta["budget_s"])
                                        for bar in LOWER_TARGETS},
            "trials": len(records), "wall_s": meta["wall_s"], "launch_s": launch,
            # after launch (process start, data, Ray start: launch_s) and over the whole command
            "utilisation": training / ((meta["wall_s"] - launch) * slots),
            "utilisation_end_to_end": training / (meta["wall_s"] * slots),
            "startup_overhead_s": statistics.median(startup) if startup else None,
            "startup_overhead_max_s": max(startup) if startup else None,
            "slot_seconds": _where_time_goes(timed, meta, launch, slots, training, startup)}


def _where_time_goes(records: list[dict], meta: dict, launch: float, slots: int, training: float,
                     startup: list[float]) -> dict:
    """Slot-seconds after launch, split: training, start-up gaps between trials, the end (from each slot's last
    epoch end to the command's exit: a partial epoch cut by the time limit, shut-down), the rest (each trial's
    last checkpoint and report, scheduling). ``first_epochs_extra`` is part of training: what first epochs took
    beyond a later epoch (graph tracing, warm-up)."""
    total = (meta["wall_s"] - launch) * slots
    end = meta["started"] + meta["wall_s"]
    last_ends = sorted((r["history"][-1]["first_step_at"] + r["history"][-1]["train_s"] for r in records),
                       reverse=True)[:slots]
    tail = sum(end - t for t in last_ends)
    extra = 0.0
    for r in records:
        seconds = [h["train_s"] for h in r["history"]]
        if len(seconds) > 1:
            extra += max(0.0, seconds[0] - statistics.median(b - a for a, b in zip(seconds, seconds[1:])))
    gaps = sum(startup)
    return {"total": round(total, 1), "training": round(training, 1), "first_epochs_extra": round(extra, 1),
            "startup_gaps": round(gaps, 1), "end": round(tail, 1), "rest": round(total - training - gaps - tail, 1)}


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
            if h.get("first_step_at") and h.get("train_s") is not None and h.get(VAL_OBJECTIVE) is not None:
                events.append((h["first_step_at"] + h["train_s"] - started, h[VAL_OBJECTIVE]))
    return events


VAL_OBJECTIVE = split_key(OBJECTIVE, "val")  # each epoch's objective in a trial's history
OURS, PEER = "ray-asha", "kt-hyperband"


def summarise(results: list[dict], budget: float, throughput: dict | None) -> dict:
    """Medians over seeds per engine; this project's utilisation, start-up overhead and throughput at the top."""
    by_engine: dict[str, list[dict]] = {}
    for r in results:
        by_engine.setdefault(r["engine"], []).append(r)
    per_engine = {key: {} for key in ("time_to_target_s", "best_at_budget", "trials", "reached", "utilisation",
                                      "startup_overhead_s", "launch_s")}
    for engine, runs in by_engine.items():
        for key in per_engine:
            values = [r[key] for r in runs if r[key] is not None]
            per_engine[key][engine] = sum(values) if key == "reached" else statistics.median(values) if values else None
    lower = {str(bar): {engine: statistics.median(r["time_to_lower_targets_s"][str(bar)] for r in runs)
                        for engine, runs in by_engine.items()} for bar in LOWER_TARGETS}
    ours = lambda key: per_engine[key].get(OURS)  # noqa: E731
    summary = {"budget_s": budget, "target": TARGET, "seeds": sorted({r["seed"] for r in results}),
               "time_to_target_s": per_engine["time_to_target_s"], "best_at_budget": per_engine["best_at_budget"],
               "trials": per_engine["trials"], "reached_target": per_engine["reached"],
               "time_to_lower_targets_s": lower,
               "utilisation": ours("utilisation"), "startup_overhead_s": ours("startup_overhead_s"),
               "launch_s": per_engine["launch_s"], "utilisation_by_engine": per_engine["utilisation"],
               "startup_overhead_s_by_engine": per_engine["startup_overhead_s"],
               "throughput_ratio": throughput["throughput_ratio"] if throughput else None,
               "throughput": throughput, "runs": results}
    if ours("time_to_target_s") and per_engine["time_to_target_s"].get(PEER):
        summary["speedup_vs_" + PEER.replace("-", "_")] = per_engine["time_to_target_s"][PEER] / ours("time_to_target_s")
    return summary


def _targets(summary: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the issue's four targets."""
    rows = []
    speedup = summary.get("speedup_vs_kt_hyperband")
    if speedup is not None:
        reached = summary["reached_target"]
        rows.append(("time to target >= 3x faster than kt-hyperband",
                     f"{speedup:.2f}x (runs reaching {TARGET}: {OURS} {reached[OURS]}, {PEER} {reached[PEER]})",
                     speedup >= 3 and reached[OURS] > 0))
    best = summary["best_at_budget"]
    if OURS in best:
        peers = {e: v for e, v in best.items() if e != OURS}
        rows.append(("best at budget >= every peer", f"{best[OURS]:.4f} vs max peer {max(peers.values(), default=0):.4f}",
                     all(best[OURS] >= v for v in peers.values())))
    if summary["utilisation"] is not None:
        rows.append(("utilisation >= 90 %", f"{summary['utilisation']:.1%}", summary["utilisation"] >= 0.9))
    if summary["throughput_ratio"] is not None:
        rows.append(("throughput ratio >= 0.95", f"{summary['throughput_ratio']:.3f}", summary["throughput_ratio"] >= 0.95))
    return rows


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write(summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(summary, indent=1) + "\n")
    n = len(summary["seeds"])
    lines = [f"# Engines on shapes: {summary['budget_s']:.0f} s each, seeds {summary['seeds']}", "",
             f"Medians over {n} seeds. Time to target = first epoch end with val objective >= {TARGET}, counted from "
             "the command's start (the budget where never reached). Reproduce: `python bench/throughput.py && "
             "python bench/engines.py` (runs kept under results/bench/runs/ are not repeated).", "",
             "| engine | time to target (s) | reached | best at budget | trials | launch (s) | utilisation | "
             "start-up overhead (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for engine in summary["time_to_target_s"]:
        lines.append(f"| {engine} | {summary['time_to_target_s'][engine]:.0f} | {summary['reached_target'][engine]}/{n} "
                     f"| {summary['best_at_budget'][engine]:.4f} | {summary['trials'][engine]:.0f} "
                     f"| {_fmt(summary['launch_s'][engine], '.1f')} "
                     f"| {_fmt(summary['utilisation_by_engine'][engine], '.1%')} "
                     f"| {_fmt(summary['startup_overhead_s_by_engine'][engine], '.2f')} |")
    lines += ["", "Median seconds to lower objectives (the budget where never reached):", "",
              "| engine | " + " | ".join(summary["time_to_lower_targets_s"]) + " |",
              "|---|" + "---:|" * len(summary["time_to_lower_targets_s"])]
    for engine in summary["time_to_target_s"]:
        lines.append(f"| {engine} | " + " | ".join(f"{times[engine]:.0f}" for times in summary["time_to_lower_targets_s"].values()) + " |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if met else '**no**'} |" for name, value, met in _targets(summary)]
    throughput = summary["throughput"]
    if throughput:
        lines += ["", f"## Throughput (samples/s, epochs 2..{throughput['epochs']})", "",
                  "| run | samples/s |", "|---|---:|",
                  f"| bare model.fit, 1 thread | {throughput['bare_1_thread']['samples_per_s']:.0f} |",
                  f"| one trial, 1 CPU | {throughput['trial_1_cpu']['samples_per_s'][0]:.0f} |",
                  "| two trials at once, 1 CPU each | " + " + ".join(
                      f"{v:.0f}" for v in throughput["trials_2_concurrent"]["samples_per_s"])
                  + f" = {throughput['trials_2_concurrent']['total_samples_per_s']:.0f} |",
                  f"| bare model.fit, 2 threads | {throughput['bare_2_threads']['samples_per_s']:.0f} |",
                  f"| one trial, 2 CPUs | {throughput['trial_2_cpus']['samples_per_s'][0]:.0f} |", "",
                  f"Trial / bare: {throughput['throughput_ratio']:.3f} (1 CPU), "
                  f"{throughput['throughput_ratio_2_cpus']:.3f} (2 CPUs). Two concurrent trials: "
                  f"{throughput['concurrent_vs_alone']:.2f}x a lone trial's rate each, "
                  f"{throughput['concurrent_total_vs_alone']:.2f}x in total."]
    lines += ["", "## Runs", "", "| engine | seed | reached at (s) | best at budget | trials | utilisation |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in summary["runs"]:
        lines.append(f"| {r['engine']} | {r['seed']} | {_fmt(r['time_to_target_s'] if r['reached'] else None, '.0f')} "
                     f"| {r['best_at_budget']:.4f} | {r['trials']} | {r['utilisation']:.1%} |")
    (OUT / "latest.md").write_text("\n".join(lines) + "\n")
    figure, ax = plt.subplots(figsize=(8, 5))
    colours = dict(zip(ENGINES, ("tab:red", "tab:blue", "tab:green", "tab:gray")))
    for r in summary["runs"]:
        if r["curve"]:
            times, values = zip(*r["curve"])
            ax.step(times, values, where="post", color=colours.get(r["engine"]), alpha=0.8,
                    label=r["engine"] if r["seed"] == summary["seeds"][0] else None)
    ax.axhline(TARGET, color="black", linewidth=0.8, linestyle="--", label=f"target {TARGET}")
    ax.set(xlabel="seconds since the command started", ylabel="best val objective so far", ylim=(0.8, 1.0),
           xlim=(0, summary["budget_s"]), title=f"Best objective over time ({n} seeds per engine)")
    ax.legend(loc="lower right")
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
    throughput = OUT / "throughput.json"  # from bench/throughput.py
    write(summarise(results, args.budget, json.loads(throughput.read_text()) if throughput.exists() else None))
    print((OUT / "latest.md").read_text())


if __name__ == "__main__":
    main()
