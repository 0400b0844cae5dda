"""The simulated backend: the real searcher and rungs on a simulated clock, over MF-Hartmann 6 curves."""

import statistics

import pytest

from search.engines.simulated import MFHartmann6, Strategy, simulate

DEFAULT = Strategy("default")  # TPE, adaptive rungs, no epoch cap: what a time-limited search runs
RANDOM_FIFO = Strategy("random-fifo", sampler="random", adaptive=None, max_epochs=15)


def test_the_function_is_1_at_its_optimum_and_low_fidelities_flatten_it():
    problem = MFHartmann6("bad")
    optimum = dict(zip([f"x{i}" for i in range(6)], (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)))
    assert problem(optimum, 100) == pytest.approx(1.0, abs=1e-4)
    assert problem(optimum, 1) < problem(optimum, 10) < problem(optimum, 100) == problem(optimum, 500)
    assert problem(optimum, 7) == problem(optimum, 7)  # the noise is a function of the point and the epoch


def test_a_run_is_a_search_on_the_simulated_clock():
    run = simulate(MFHartmann6("good"), DEFAULT, seed=0, workers=2, budget_s=120)
    times = [t for t, _ in run.curve]
    values = [v for _, v in run.curve]
    assert times == sorted(times) and times[-1] <= 120 and values == sorted(values)
    assert run.trials >= 2 and run.best_at(120) == values[-1] and run.time_to(2.0) is None
    again = simulate(MFHartmann6("good"), DEFAULT, seed=0, workers=2, budget_s=120)
    assert again.curve == run.curve  # a seed makes a run


def test_no_search_trains_the_first_point_alone():
    point = {f"x{i}": 0.5 for i in range(6)}
    run = simulate(MFHartmann6("good"), Strategy("no-search", first_point=point, no_search=True), seed=0,
                   budget_s=60, alone_speedup=1.5)
    assert run.trials == 1 and run.best_at(60) == pytest.approx(max(MFHartmann6("good")(point, e)
                                                                       for e in range(1, 90)))  # 89 epochs of 0.67 s


def test_the_default_strategy_beats_random_search_with_fifo():
    """Over 10 searcher seeds on the 'bad' preset (early epochs mislead), 2 workers, 6 simulated minutes."""
    problem = MFHartmann6("bad")
    best = {s.name: statistics.median(simulate(problem, s, seed=k, budget_s=360).best_at(360) for k in range(10))
            for s in (DEFAULT, RANDOM_FIFO)}
    assert best["default"] > best["random-fifo"], best
