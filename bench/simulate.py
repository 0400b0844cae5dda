"""Strategies compared over many searcher seeds on the simulated backend (run by hand, not in CI).

    python bench/simulate.py                          # 50 seeds x 11 strategies x 3 problems, then workers 1..64
    python bench/simulate.py --seeds 10 --problems bad-100

The real searcher (Ray Tune's OptunaSearch with the project's samplers) and the real rungs
(search/engines/rungs.py) on a simulated clock over MF-Hartmann 6 curves (search/engines/simulated.py):
every epoch takes 1 s, a trial's start-up 0.3 s (what reused workers measured), 2 workers, 6 minutes.
Problems: ``<preset>-<max fidelity>``: mf-prior-bench's ``good`` and ``bad`` presets (how much early epochs
mislead) and the epoch at which a curve stops improving (100, or 1,000: a network that improves for as
long as it trains, as the shapes network does over a 6-minute budget). Each run is one line of
results/bench/simulated/runs.jsonl, kept: a run already there is not repeated, so the benchmark runs
in pieces. The summary goes to results/bench/simulated/latest.{json,md} and a PNG of time to target
against workers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.engines.simulated import MFHartmann6, Strategy, simulate

OUT = ROOT / "results" / "bench" / "simulated"
BUDGET_S = 360.0
STRATEGIES = {s.name: s for s in (
    Strategy("default"),  # TPE, adaptive rungs, no epoch cap
    Strategy("tpe-asha-nocap", adaptive=False),
    Strategy("tpe-adaptive-cap15", max_epochs=15),
    Strategy("tpe-asha-cap15", adaptive=False, max_epochs=15),  # the previous default
    Strategy("random-fifo-cap15", sampler="random", adaptive=None, max_epochs=15),
    # The other model-based samplers `searcher.sampler` offers, with the default's scheduling (gp needs torch).
    Strategy("cmaes", sampler="cmaes"),
    Strategy("qmc", sampler="qmc"),
    # TPE with fewer random start-up trials than Optuna's 10 (a 6-minute search begins 15-20), and TPE that models
    # each parameter alone (Optuna 5's TPE is multivariate by default in a single-objective study).
    Strategy("tpe-startup3", sampler_options=(("n_startup_trials", 3),)),
    Strategy("tpe-startup5", sampler_options=(("n_startup_trials", 5),)),
    Strategy("tpe-independent", sampler_options=(("multivariate", False),)),
    # BOHB's sampler, fed every epoch's result, with the default's scheduling (needs hpbandster and ConfigSpace).
    Strategy("bohb", sampler="bohb"),
)}
PROBLEMS = ("good-100", "bad-100", "good-1000")
WORKERS = (1, 2, 4, 8, 16, 32, 64)


def problem(name: str) -> MFHartmann6:
    preset, fidelity = name.split("-")
    return MFHartmann6(preset, max_fidelity=int(fidelity))


def _key(row: dict) -> tuple:
    return row["problem"], row["strategy"], row["seed"], row["workers"]


def run_all(seeds: int, problems: list[str], workers: list[int]) -> list[dict]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "runs.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    done = {_key(r) for r in rows}
    todo = [(p, s, k, 2) for p in problems for s in STRATEGIES for k in range(seeds)]
    if importlib.util.find_spec("hpbandster") is None:
        print("bohb left out: it needs `pip install hpbandster ConfigSpace`", flush=True)
        todo = [t for t in todo if t[1] != "bohb"]
    todo += [(p, "default", k, w) for p in problems[:1] for w in workers for k in range(min(seeds, 10))]
    with path.open("a") as out:
        for i, (p, s, k, w) in enumerate(todo):
            if (p, s, k, w) in done:
                continue
            run = simulate(problem(p), STRATEGIES[s], seed=k, workers=w, budget_s=BUDGET_S)
            row = {"problem": p, "strategy": s, "seed": k, "workers": w, "trials": run.trials, "curve": run.curve}
            out.write(json.dumps(row) + "\n")
            out.flush()
            rows.append(row)
            done.add((p, s, k, w))
            print(f"[{i + 1}/{len(todo)}] {p} {s} seed {k} x{w}: {run.best_at(BUDGET_S):.3f}", flush=True)
    return rows


def _best_at(row: dict, t: float) -> float:
    return max((v for at, v in row["curve"] if at <= t), default=0.0)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def summarise(rows: list[dict]) -> dict:
    summary: dict = {"budget_s": BUDGET_S, "problems": {}, "workers": {}}
    for p in sorted({r["problem"] for r in rows}):
        table = {}
        for s in STRATEGIES:
            runs = [r for r in rows if r["problem"] == p and r["strategy"] == s and r["workers"] == 2]
            if runs:
                table[s] = {"seeds": len(runs), **{f"best_at_{int(t)}s": _quartiles([_best_at(r, t) for r in runs])
                                                     for t in (BUDGET_S / 2, BUDGET_S)},
                            "trials": statistics.median(r["trials"] for r in runs)}
        summary["problems"][p] = table
    target_problem = PROBLEMS[0]
    two = [r for r in rows if r["problem"] == target_problem and r["strategy"] == "default" and r["workers"] == 2]
    if two:  # the target: what the default reaches at the budget with 2 workers (median), for the workers sweep
        target = statistics.median(_best_at(r, BUDGET_S) for r in two)
        summary["target"] = {"problem": target_problem, "value": target}
        for w in WORKERS:
            runs = [r for r in rows if r["problem"] == target_problem and r["strategy"] == "default"
                    and r["workers"] == w]
            if runs:
                times = [next((at for at, v in r["curve"] if v >= target), BUDGET_S) for r in runs]
                summary["workers"][w] = {"seeds": len(runs), "time_to_target_s": statistics.median(times)}
    return summary


def write(summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (OUT / "latest.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = ["# Strategies on the simulated backend (MF-Hartmann 6, 2 workers, 1 s per epoch, 6 minutes)", "",
             ("Best objective at 3 and 6 minutes: median [quartiles] over searcher seeds (1.0 is the optimum). "
              "Reproduce: `python bench/simulate.py`."), ""]
    for p, table in summary["problems"].items():
        lines += [f"## {p}", "", "| strategy | seeds | best at 3 min | best at 6 min | trials |", "|---|---:|---:|---:|---:|"]
        for s, row in table.items():
            cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for lo, m, hi in (row["best_at_180s"], row["best_at_360s"])]
            lines.append(f"| {s} | {row['seeds']} | {cells[0]} | {cells[1]} | {row['trials']:.0f} |")
        lines.append("")
    if summary["workers"]:
        target = summary["target"]
        lines += [f"## Workers ({target['problem']}, default strategy)", "",
                  (f"Median seconds to {target['value']:.3f} (what 2 workers reach at 6 minutes; the budget where "
                   "never reached), against the linear ideal from 2 workers."), "", "| workers | seeds | time to target (s) | ideal (s) |",
                  "|---:|---:|---:|---:|"]
        base = summary["workers"].get(2, {}).get("time_to_target_s")
        for w, row in summary["workers"].items():
            ideal = f"{base * 2 / int(w):.0f}" if base else "-"
            lines.append(f"| {w} | {row['seeds']} | {row['time_to_target_s']:.0f} | {ideal} |")
        figure, ax = plt.subplots(figsize=(6, 4))
        ws = [int(w) for w in summary["workers"]]
        ax.loglog(ws, [summary["workers"][w]["time_to_target_s"] for w in summary["workers"]], "o-", label="measured")
        if base:
            ax.loglog(ws, [base * 2 / w for w in ws], "--", color="gray", label="linear from 2 workers")
        ax.set(xlabel="workers", ylabel="seconds to target (median)", title="Time to target against workers")
        ax.legend()
        figure.savefig(OUT / "workers.png", dpi=90, bbox_inches="tight")
    (OUT / "latest.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    args = parser.parse_args()
    rows = run_all(args.seeds, args.problems, args.workers)
    write(summarise(rows))
    print((OUT / "latest.md").read_text())


if __name__ == "__main__":
    main()
