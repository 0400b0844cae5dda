"""When to stop a trial: asynchronous successive halving whose first cut moves with the evidence.

Plain logic, no Ray: the Ray Tune scheduler (:class:`~search.engines.ray_tune.RungScheduler`) and the
simulated backend (:mod:`bench.simulate`) drive the same :class:`Rungs`.

Rungs sit at ``grace x rf^k`` epochs, below a horizon far above what a search trains when the budget
has no epoch cap, so the wall-time limit, not an epoch count, decides how long the leaders train. At a
rung that cuts, a trial goes on only while its best objective so far there is in the top ``1/rf`` of
those the rung has seen (the cutoff as Ray Tune's ``ASHAScheduler`` computes it), checked again at every
epoch as the rung fills: with no epoch cap, a trial that was merely first at a rung would otherwise keep
its slot for the whole search (ASHA's promotion rule, Li et al. 2020, applied by stopping).

Which rung cuts first is measured, not assumed (as PASHA measures ranking agreement, Bohdal et al. 2023).
The first rung lets every trial through until ``witnesses`` of them have also reached the next rung;
Spearman's rank correlation between their objectives at the two rungs then decides: at or above
``trust``, early rankings predict later ones and the rung starts cutting; below it, early epochs
mislead, the rung never cuts, and the first cut moves to the next rung (at most ``max_delay`` rungs up,
where it cuts without a further measurement: each move costs the witnesses rf times more epochs). Witnesses are unselected
trials, so the correlation is not shrunk by earlier cuts. Each decision is kept with its evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

__all__ = ["Decision", "Rungs", "milestones"]

WITNESSES = 5  # trials measured at a rung and the next before the rung may cut
TRUST = 0.5  # the rank correlation between the two at which the earlier rung starts cutting
# How many rungs the first cut may move up. Measuring a rung costs its witnesses the epochs to the next one,
# which grow by rf at every move: one move (grace -> grace x rf) costs at most 5 trials x grace x rf epochs.
MAX_DELAY = 1


def milestones(grace: int, reduction_factor: float, horizon: int) -> list[int]:
    """The epochs at which rungs sit: ``grace``, ``grace x rf``, ... below ``horizon``."""
    found, epoch = [], max(1, int(grace))
    while epoch < horizon:
        found.append(epoch)
        epoch = max(epoch + 1, round(epoch * reduction_factor))
    return found


@dataclass(frozen=True)
class Decision:
    """What the scheduler decided about the rung at ``epoch``, and on what evidence."""

    epoch: int
    next_epoch: int
    correlation: float
    witnesses: int
    cuts: bool  # True: this rung cuts from now on; False: it never does, the next rung is measured

    def describe(self) -> str:
        verdict = (f"rankings at epoch {self.epoch} predict those at {self.next_epoch}, so trials are cut from "
                   f"epoch {self.epoch}") if self.cuts else (
            f"rankings at epoch {self.epoch} mislead about epoch {self.next_epoch}, so no trial is cut at "
            f"epoch {self.epoch}")
        sign = ">=" if self.cuts else "<"
        return (f"Spearman {self.correlation:.2f} {sign} {TRUST} over {self.witnesses} trials: {verdict}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.describe()}


class Rungs:
    """Successive-halving decisions for trials that report their best objective (higher is better) each epoch."""

    def __init__(self, grace: int, reduction_factor: float, horizon: int, *, adaptive: bool = True,
                 witnesses: int = WITNESSES, trust: float = TRUST, max_delay: int = MAX_DELAY):
        self.epochs = milestones(grace, reduction_factor, horizon)
        self.rf = reduction_factor
        self.adaptive, self.witnesses, self.trust = adaptive, witnesses, trust
        self.last_first = min(max_delay, max(0, len(self.epochs) - 1))  # the latest rung the first cut may reach
        self.values: list[dict[str, float]] = [{} for _ in self.epochs]  # per rung: trial -> best objective there
        self.first = 0  # index of the first rung that may cut
        self.measured = not adaptive or self.last_first == 0  # whether the first rung is decided
        self.decisions: list[Decision] = []

    @property
    def first_cut(self) -> int | None:
        """The epoch of the first rung that cuts (None: none does, or not yet decided)."""
        return self.epochs[self.first] if self.measured and self.first < len(self.epochs) else None

    def report(self, trial: str, epoch: int, value: float) -> bool:
        """Record a trial's best objective so far after ``epoch``; True if it should go on training."""
        value = value if math.isfinite(value) else -math.inf
        for k, at in enumerate(self.epochs):
            if epoch < at or trial in self.values[k]:
                continue
            self.values[k][trial] = value
            if k == self.first + 1 and not self.measured:
                self._measure()
        # Every rung passed so far, against the trials it has seen by now: a trial that was first at a rung
        # goes on only while later arrivals leave it in the top 1/rf there (ASHA's promotion rule, kept by
        # stopping instead of pausing), so an early leader cannot keep a slot once others overtake it.
        return all(self._passes(k, values[trial]) for k, values in enumerate(self.values) if trial in values)

    def _passes(self, k: int, value: float) -> bool:
        # Below the first cut no rung cuts; while the first rung is measured, nor does the next (its witnesses
        # must reach the rung after it, should the first cut move there).
        if k < self.first or (not self.measured and k <= self.first + 1):
            return True
        seen = [v for v in self.values[k].values() if math.isfinite(v)]
        if not seen:
            return False
        cutoff = np.nanpercentile(seen, (1 - 1 / self.rf) * 100)
        return value >= cutoff

    def _measure(self) -> None:
        """Decide the first rung once ``witnesses`` trials have reached it and the next one."""
        low, high = self.values[self.first], self.values[self.first + 1]
        both = [t for t in high if t in low]
        if len(both) < self.witnesses:
            return
        a, b = [low[t] for t in both], [high[t] for t in both]
        correlation = float(spearmanr(a, b).statistic) if len(set(a)) > 1 and len(set(b)) > 1 else 0.0
        correlation = 0.0 if math.isnan(correlation) else correlation
        cuts = correlation >= self.trust
        self.decisions.append(Decision(self.epochs[self.first], self.epochs[self.first + 1], round(correlation, 3),
                                       len(both), cuts))
        if cuts:
            self.measured = True
            return
        self.first += 1
        if self.first >= self.last_first:  # as late as the first cut may go: it cuts there, unmeasured
            self.measured = True
        else:
            self._measure()  # the witnesses may already have reached the rung after

    def state(self) -> dict[str, Any]:
        """What to show a user: the rungs, the first cut and every decision with its evidence."""
        return {"rungs": self.epochs[:8], "first_cut_epoch": self.first_cut, "adaptive": self.adaptive,
                "decisions": [d.to_dict() for d in self.decisions]}
