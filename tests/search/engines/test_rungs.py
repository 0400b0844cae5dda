"""The rungs' decisions on made-up learning curves: where early epochs predict, where they mislead."""

import random

import numpy as np
import pytest

from search.engines.rungs import TRUST, WITNESSES, Rungs, milestones


def _run(rungs: Rungs, curves: dict[str, list[float]]) -> dict[str, int]:
    """Feed each trial's curve (best so far) epoch by epoch, one trial after another; epochs each trained."""
    trained = {}
    for trial, curve in curves.items():
        best = -np.inf
        for epoch, value in enumerate(curve, start=1):
            best = max(best, value)
            trained[trial] = epoch
            if not rungs.report(trial, epoch, best):
                break
    return trained


def _curves(n: int, *, misleading: bool, epochs: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """Trials whose final quality q is what counts. Predictive: every epoch ranks trials by q. Misleading: for the
    first 10 epochs the value is noise unrelated to q (a task still at chance), then it climbs towards q."""
    rng = random.Random(seed)
    curves = {}
    for i in range(n):
        q, noise = rng.random(), [rng.random() * 0.2 for _ in range(10)]
        curves[f"t{i}"] = [noise[e] if misleading and e < 10 else q * (1 - 1 / (e + 2)) for e in range(epochs)]
    return curves


def test_milestones_grow_by_the_reduction_factor_below_the_horizon():
    assert milestones(3, 3, 100) == [3, 9, 27, 81]
    assert milestones(1, 2, 4) == [1, 2]
    assert milestones(2, 1.5, 10) == [2, 3, 4, 6, 9]  # never the same epoch twice


def test_where_early_epochs_predict_the_first_rung_cuts_after_its_witnesses():
    rungs = Rungs(3, 3, 100_000)
    trained = _run(rungs, _curves(30, misleading=False))
    assert rungs.first_cut == 3
    [decision] = rungs.decisions
    assert decision.cuts and decision.epoch == 3 and decision.witnesses == WITNESSES and decision.correlation >= TRUST
    # The witnesses trained past the first two rungs; most later trials were cut at epoch 3.
    assert all(trained[f"t{i}"] >= 9 for i in range(WITNESSES))
    assert sum(epochs == 3 for epochs in trained.values()) >= 15


def test_where_early_epochs_mislead_the_first_cut_moves_to_a_later_rung():
    rungs = Rungs(3, 3, 100_000)
    trained = _run(rungs, _curves(30, misleading=True))
    assert rungs.first_cut == 9, rungs.state()  # one rung up, as far as MAX_DELAY lets it go
    assert [d.cuts for d in rungs.decisions] == [False] and rungs.decisions[0].correlation < TRUST
    assert min(trained.values()) >= 9  # nobody was cut on the misleading third epoch
    assert "mislead" in rungs.decisions[0].describe() and "Spearman" in rungs.decisions[0].describe()
    # Allowed further, it measures each rung in turn until one predicts (the curves are noise to epoch 10).
    rungs = Rungs(3, 3, 100_000, max_delay=3)
    trained = _run(rungs, _curves(30, misleading=True))
    assert rungs.first_cut == 27 and [d.cuts for d in rungs.decisions] == [False, False, True]
    assert min(trained.values()) >= 27


def test_plain_mode_cuts_from_the_grace_period_as_asha_does():
    rungs = Rungs(3, 3, 100_000, adaptive=False)
    trained = _run(rungs, _curves(30, misleading=True))
    assert rungs.first_cut == 3 and rungs.decisions == []
    assert sum(epochs == 3 for epochs in trained.values()) >= 15
    # ASHA's rule: the first trial at a rung always goes on; one below the top third of those seen stops.
    rungs = Rungs(1, 3, 100, adaptive=False)
    assert rungs.report("a", 1, 0.5)
    assert rungs.report("b", 1, 0.9)
    assert not rungs.report("c", 1, 0.1)


def test_the_leaders_train_until_the_horizon_when_there_is_no_epoch_cap():
    rungs = Rungs(3, 3, 100_000)
    trained = _run(rungs, _curves(12, misleading=False, epochs=400))
    assert max(trained.values()) == 400  # no rung between 243 and 400 stopped the best one
    assert rungs.epochs[:6] == [3, 9, 27, 81, 243, 729]


def test_a_non_finite_objective_never_passes_a_cutting_rung():
    rungs = Rungs(1, 2, 100, adaptive=False)
    assert rungs.report("a", 1, 0.5)
    assert not rungs.report("b", 1, float("nan"))


@pytest.mark.parametrize("adaptive", [True, False])
def test_the_state_says_what_was_decided(adaptive):
    rungs = Rungs(3, 3, 100_000, adaptive=adaptive)
    _run(rungs, _curves(12, misleading=True))
    state = rungs.state()
    assert state["adaptive"] is adaptive and state["rungs"][:3] == [3, 9, 27]
    assert len(state["decisions"]) == (1 if adaptive else 0)  # epoch 3 misleads; the cut moves to 9
    assert all(d["text"].startswith("Spearman") for d in state["decisions"])
