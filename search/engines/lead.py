"""The start of a time-limited search: its first trial trains alone while it learns fast.

The first trial is the experiment's fixed model (or the user's first initial point): the model the user
would have trained without a search, and the likeliest leader early on. Trials that share a machine's
cores each train at a fraction of the speed one trial has alone (on 2 cores, half: bench/throughput.py),
so a second trial training at once would halve the first one's pace while its curve is steepest. So the
other trials wait before their first epoch while the first one's best objective still rises fast, for at
most ``budget.lead`` of the time limit from its first training step: over its last ``window`` epochs
(``grace_period x reduction_factor``, the scheduler's second rung) it must rise by more than ``FLAT`` of its
average rise since its first epoch over as many epochs. A window as short as the grace period was fooled by
a late learner: glyphs' fixed model, flat for its epochs 3-5 while its ``sum`` task sat at chance, lost
its lead after 5 epochs. The test compares the trial with itself, so it holds on any task's scale; a trial that
has gained nothing is not learning fast. The lead also ends when the trial does, and the cooldown
(cooldown.py) takes over the end of the budget.

The other trials start as usual and wait in their workers, which have imported TensorFlow and built their
models by then, so the lead costs no worker start-up when it ends. The driver's searcher names the leading
trial (:meth:`Lead.began`) and its scheduler feeds :meth:`Lead.report` each epoch (both through
:mod:`search.engines.attached`); the lead is written to ``lead.json`` in the run directory, which every
node sees, and a worker :func:`waits` on it. A resumed search has no lead: its trials are past their start.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.rundir.records import atomic_write

__all__ = ["FLAT", "LEAD_FILE", "Lead", "waits"]

FLAT = 1 / 3  # the rise over the window, as a share of the average rise, at or below which the curve has flattened
LEAD_FILE = "lead.json"  # in the run directory: the leading trial, until when at most, and whether it has ended
POLL_S = 0.5  # how often a waiting worker reads it


@dataclass
class Lead:
    """The first trial's lead over the others, from its start until it ends (``ended`` says why)."""

    limit_s: float  # the longest the first trial may train alone
    window: int  # epochs over which the recent rise is measured
    until: float | None = None  # unix time at which the lead ends at the latest, from the trial's first step
    trial: str | None = None  # the first trial, once the searcher has suggested it
    started: float = field(default_factory=time.time)
    bests: list[float] = field(default_factory=list)  # the first trial's best objective after each epoch
    ended: str | None = None  # why the lead ended, once it has
    ended_at: float | None = None
    path: Path | None = None  # where the lead is written for the workers (None: nowhere)

    @classmethod
    def starting_now(cls, time_limit_s: float | None, fraction: float, window: int,
                     path: Path | None = None) -> Lead | None:
        """The lead of a search whose time limit starts counting now (None: no time limit, or no lead)."""
        if not time_limit_s or not fraction:
            return None
        return cls(limit_s=time_limit_s * fraction, window=max(1, window), path=path)

    def holds(self, now: float | None = None) -> bool:
        """Whether the other trials must wait: the first trial has begun and still leads alone."""
        if self.ended or self.trial is None:
            return False
        if self.until is not None and (time.time() if now is None else now) >= self.until:
            self._end(f"until its share of the time limit ({self.limit_s:.0f} s of training) had passed")
        return not self.ended

    def began(self, trial: str) -> None:
        """The searcher suggested ``trial``; the first one suggested leads."""
        if self.trial is None:
            self.trial = trial
            self._write()

    def report(self, trial: str, best: float, first_step_at: float | None = None) -> None:
        """The trial's best objective so far after its latest epoch (higher is better); ``first_step_at``: when
        it began training (its first report starts the lead's clock)."""
        if not self.holds() or trial != self.trial:
            return
        if self.until is None:
            self.until = (first_step_at or time.time()) + self.limit_s
            self._write()
        self.bests.append(best)
        epochs, w = len(self.bests), self.window
        if epochs <= w:
            return
        recent = self.bests[-1] - self.bests[-1 - w]
        average = (self.bests[-1] - self.bests[0]) / (epochs - 1) * w
        if recent <= FLAT * average:
            span = f"{w} epochs" if w > 1 else "epoch"
            self._end(f"until its best objective rose by {recent:.4f} over its last {span}, at most "
                      f"{FLAT:.2g} of its average rise ({average:.4f} per {span})")

    def left(self, trial: str) -> None:
        """``trial`` ended (completed, stopped or failed)."""
        if trial == self.trial and not self.ended:
            self._end("until it ended")

    def _end(self, why: str) -> None:
        self.ended_at = time.time()
        self.ended = (f"trial {self.trial} trained alone for {len(self.bests)} epochs "
                      f"({self.ended_at - self.started:.0f} s from the search's start), {why}")
        self._write()

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "until": self.until, "epochs": len(self.bests), "ended_at": self.ended_at,
                "text": self.ended}

    def _write(self) -> None:
        if self.path is not None:
            atomic_write(self.path, json.dumps(self.to_dict()) + "\n")


def waits(path: Path, trial: str) -> float:
    """Wait, in a worker, while another trial leads alone (as ``path`` says); returns the seconds waited.
    A missing or unreadable file, an ended lead or its time passed: no wait. (A leading trial that never
    trains ends the lead when it ends; the search's time limit ends everything.)"""
    started = time.time()
    while True:
        try:
            lead = json.loads(path.read_text())
        except (OSError, ValueError):
            break
        until = lead.get("until")
        if lead.get("ended_at") or lead.get("trial") in (None, trial) or (until and time.time() >= until):
            break
        time.sleep(POLL_S)
    return time.time() - started
