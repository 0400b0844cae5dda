"""A simulated backend: the search's own searcher and rungs, driven by a simulated clock over learning curves.

What a strategy (sampler, scheduler, epoch cap, first point) is worth shows only over many searcher seeds,
which real training cannot afford. Here each of ``workers`` slots trains one trial at a time, epoch by
epoch, on a simulated clock; each epoch's objective comes from a multi-fidelity function instead of
TensorFlow. The decisions are the real ones: Ray Tune's ``OptunaSearch`` with the project's samplers
suggests every configuration from the project's :class:`SearchSpace`, hears every epoch and every end,
and :class:`~search.engines.rungs.Rungs` (what the Ray Tune scheduler wraps) stops trials.

The function is MF-Hartmann 6 (Kandasamy et al. 2017, as mf-prior-bench implements it, Apache-2.0): the
Hartmann 6 function whose low fidelities are flattened (``bias``) and noisy (``noise``), both fading as
the fidelity (here: the epoch) grows to ``max_fidelity``. mf-prior-bench's presets run from ``good``
(bias 2.5, noise 2.0) to ``terrible`` (4.0, 5.0): the worse, the more early epochs mislead.
"""

from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search.engines.rungs import Rungs
from search.engines.samplers import make_sampler
from search.experiment.space import Param, SearchSpace

__all__ = ["PRESETS", "MFHartmann6", "Run", "Strategy", "simulate"]

PRESETS = {"good": (2.5, 2.0), "moderate": (3.0, 3.0), "bad": (3.5, 4.0), "terrible": (4.0, 5.0)}
BOHB = "bohb"  # a sampler the simulator offers besides searcher.sampler's (bench/simulate.py)
HORIZON = 100_000  # the rungs' horizon without an epoch cap, as the Ray Tune engine sets it

_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
               [17, 8, 0.05, 10, 0.1, 14]], dtype=float)
_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]], dtype=float)
_OPTIMUM = 3.32237  # -min of Hartmann 6


class MFHartmann6:
    """The objective after ``epoch`` epochs of a configuration x0..x5 in [0, 1]: 1 at the optimum, higher is better."""

    def __init__(self, preset: str = "good", *, max_fidelity: int = 100, seed: int = 1337):
        self.preset = preset
        self.bias, self.noise = PRESETS[preset]
        self.max_fidelity, self.seed = max_fidelity, seed
        self.space = SearchSpace(tuple(Param(f"x{i}", "float", low=0.0, high=1.0) for i in range(6)))

    def __call__(self, config: dict[str, Any], epoch: int) -> float:
        xs = tuple(float(config[f"x{i}"]) for i in range(6))
        z = min(epoch, self.max_fidelity)
        scaled = math.log(z) / math.log(self.max_fidelity)
        alpha = _ALPHA - self.bias * (1 - scaled)
        h = -float(np.sum(alpha * np.exp(-np.sum(_A * (np.array(xs) - _P) ** 2, axis=-1))))
        rng = np.random.default_rng(abs(hash((self.seed, z, xs))))
        h += abs(rng.normal()) * self.noise * (1 - scaled)
        return -h / _OPTIMUM


@dataclass(frozen=True)
class Strategy:
    """How a search is run: the sampler, the scheduler (None: no trial is stopped), an epoch cap, the first point."""

    name: str
    sampler: str = "tpe"
    sampler_options: tuple[tuple[str, Any], ...] = ()  # searcher.options, as (name, value) pairs
    adaptive: bool | None = True  # None: FIFO; False: ASHA from the grace period on; True: adaptive rungs
    max_epochs: int | None = None
    grace_period: int = 3
    reduction_factor: float = 3.0
    first_point: dict[str, float] | None = None  # the experiment's fixed model
    no_search: bool = False  # the first point alone, trained for the whole budget on the whole machine


@dataclass
class Run:
    """One simulated search: the best objective so far at each epoch's end, and how many trials it began."""

    strategy: str
    seed: int
    workers: int
    curve: list[tuple[float, float]] = field(default_factory=list)
    trials: int = 0

    def best_at(self, t: float) -> float:
        return max((v for at, v in self.curve if at <= t), default=0.0)

    def time_to(self, target: float) -> float | None:
        return next((at for at, v in self.curve if v >= target), None)


def simulate(problem: MFHartmann6, strategy: Strategy, *, seed: int, workers: int = 2, budget_s: float = 360.0,
             epoch_s: float = 1.0, startup_s: float = 0.3, alone_speedup: float = 1.5) -> Run:
    """Run one search on the simulated clock until ``budget_s``; every epoch of every trial takes ``epoch_s``.

    ``startup_s`` is each trial's start-up; the no-search strategy trains its one model ``alone_speedup``
    times faster (one model on the whole machine: 1.5x on two cores for the shapes network, bench/throughput.py).
    """
    from ray.tune.search.optuna import OptunaSearch

    logging.getLogger("optuna").setLevel(logging.WARNING)
    run = Run(strategy.name, seed, workers)
    if strategy.no_search:
        workers, epoch_s = 1, epoch_s / alone_speedup
    first = [strategy.first_point] if strategy.first_point else None
    if strategy.sampler == BOHB:
        searcher = _bohb(problem, seed, first)
    else:
        searcher = OptunaSearch(space=problem.space.sample_optuna, metric="best", mode="max", seed=seed,
                                sampler=make_sampler(strategy.sampler, seed, dict(strategy.sampler_options)),
                                points_to_evaluate=first)
    horizon = strategy.max_epochs or HORIZON
    rungs = None if strategy.adaptive is None else Rungs(min(strategy.grace_period, horizon),
                                                         strategy.reduction_factor, horizon,
                                                         adaptive=strategy.adaptive)
    events: list[tuple[float, int, str]] = []  # (epoch end, tie-breaker, trial)
    trials: dict[str, dict[str, Any]] = {}
    best = -math.inf

    def start(at: float) -> None:
        if strategy.no_search and run.trials:
            return
        trial = f"t{run.trials}"
        run.trials += 1
        config = searcher.suggest(trial) if not strategy.no_search else dict(strategy.first_point or {})
        trials[trial] = {"config": config, "epoch": 0, "best": -math.inf}
        heapq.heappush(events, (at + startup_s + epoch_s, run.trials, trial))

    for _ in range(workers):
        start(0.0)
    while events:
        at, _, trial = heapq.heappop(events)
        if at > budget_s:
            break
        state = trials[trial]
        state["epoch"] += 1
        state["best"] = max(state["best"], problem(state["config"], state["epoch"]))
        if state["best"] > best:
            best = state["best"]
            run.curve.append((round(at, 3), best))
        # hyperband_info: the budget at which BOHB files the result (its model is fitted per budget); others ignore it
        result = {"best": state["best"], "training_iteration": state["epoch"],
                  "hyperband_info": {"budget": state["epoch"]}}
        if not strategy.no_search:
            searcher.on_trial_result(trial, result)
        go = rungs is None or rungs.report(trial, state["epoch"], state["best"])
        if go and (strategy.max_epochs is None or state["epoch"] < strategy.max_epochs):
            heapq.heappush(events, (at + epoch_s, run.trials + len(events), trial))
            continue
        if not strategy.no_search:
            searcher.on_trial_complete(trial, result)
        start(at)
    return run


def _bohb(problem: MFHartmann6, seed: int, first: list[dict] | None):
    """BOHB's sampler (Falkner et al. 2018: TPE-like densities fitted on the results at the largest budget with
    enough of them, every epoch's result fed in), through Ray Tune's ``TuneBOHB``. Measured on the simulator only:
    it needs ``pip install hpbandster ConfigSpace``, which the project does not depend on."""
    from ray import tune
    from ray.tune.search.bohb import TuneBOHB

    space = {p.name: tune.uniform(p.low, p.high) for p in problem.space.params}
    return TuneBOHB(space=TuneBOHB.convert_search_space(space), metric="best", mode="max", seed=seed,
                    points_to_evaluate=first)
