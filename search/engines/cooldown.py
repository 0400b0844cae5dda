"""The last stretch of a time-limited search: no trial starts, the leaders train alone, their learning rates anneal.

A trial started in the final minutes cannot overtake trials that have trained for most of the budget,
and a network trained at a constant learning rate sits above the minimum it is circling. So for the last
``budget.cooldown`` fraction of the time limit (the "decay" phase of warmup-stable-decay schedules, Hu et
al. 2024; budget-aware schedules, Li et al. 2020):

- the searcher suggests no new trial;
- a running trial goes on only while its best objective is in the top ``1/rf`` of the running trials'
  (at least the leader), so the leaders get the cores the others free;
- each epoch's learning rate is the trial's own times a scale that falls linearly from 1 at the start of
  the window to ``FLOOR`` at the deadline.

Measured before choosing (the fixed model of each built-in task trained 30 epochs at its learning rate,
then 10 more from that point, best val objective of the 10): shapes 0.9785 at x1, 0.9832 at x0.3, 0.9834 at
x0.1 (the first epoch at x0.3 already gave 0.9821, what 43 more epochs at x1 reach); glyphs 0.9610 at x1,
0.9634 at x0.3, 0.9654 at x0.1. Plain logic, no Ray: the trainable,
the searcher and the scheduler each ask the same :class:`Cooldown` (the last two through
:mod:`search.engines.attached`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping

__all__ = ["FLOOR", "Cooldown"]

FLOOR = 0.05  # the learning-rate scale at the deadline


@dataclass(frozen=True)
class Cooldown:
    """The window ``[deadline - window_s, deadline]`` (seconds since the epoch, on every node's clock)."""

    deadline: float
    window_s: float

    @classmethod
    def starting_now(cls, time_limit_s: float | None, fraction: float) -> Cooldown | None:
        """The cooldown of a search whose time limit starts counting now (None: no time limit, or no cooldown).
        A resumed search gets its whole time limit again, as Ray Tune's time budget does."""
        if not time_limit_s or not fraction:
            return None
        return cls(deadline=time.time() + time_limit_s, window_s=time_limit_s * fraction)

    @property
    def starts(self) -> float:
        return self.deadline - self.window_s

    def active(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.starts

    def lr_scale(self, now: float | None = None) -> float:
        """What an epoch starting at ``now`` multiplies its trial's learning rate by."""
        now = time.time() if now is None else now
        if now < self.starts:
            return 1.0
        left = max(0.0, self.deadline - now) / self.window_s
        return FLOOR + (1.0 - FLOOR) * left

    def keeps(self, trial: str, running: Mapping[str, float], reduction_factor: float) -> bool:
        """Whether ``trial`` trains on in the window: its best objective (higher is better) is among the top
        ``ceil(n / rf)`` of the ``running`` trials' (``trial`` included), the leader always."""
        if trial not in running:
            return True
        ranked = sorted(running, key=lambda t: _finite(running[t]), reverse=True)
        return ranked.index(trial) < max(1, math.ceil(len(ranked) / reduction_factor))

    def describe(self, reduction_factor: float) -> str:
        return (f"the last {self.window_s:.0f} s of the time limit: no trial started, only the top "
                f"1/{reduction_factor:g} of the running trials (the leader at least) trained on, and their "
                f"learning rates fell linearly to {FLOOR:g} x their own by the deadline")

    def to_dict(self, reduction_factor: float) -> dict[str, Any]:
        return {**asdict(self), "floor": FLOOR, "text": self.describe(reduction_factor)}


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
