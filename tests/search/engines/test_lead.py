"""The first trial's lead (search/engines/lead.py): on curves, without Ray."""

import json
import threading

import pytest

from search.engines.lead import FLAT, Lead, waits


def _lead(**kw):
    return Lead(limit_s=kw.pop("limit_s", 1e9), window=kw.pop("window", 3), started=0.0, **kw)


def test_no_lead_without_a_time_limit_or_with_lead_zero():
    assert Lead.starting_now(None, 0.5, 3) is None and Lead.starting_now(60, 0.0, 3) is None
    lead = Lead.starting_now(60, 0.5, 0)
    assert lead.window == 1 and lead.limit_s == 30 and lead.until is None


def test_nothing_waits_before_the_first_trial_and_others_wait_while_it_learns_fast():
    lead = _lead()
    assert not lead.holds()  # the first trial may start
    lead.began("a")
    lead.began("b")  # a later suggestion does not take the lead
    assert lead.trial == "a" and lead.holds()
    for best in (0.1, 0.3, 0.5, 0.6, 0.7):  # a steep curve: the last 3 epochs rose 0.4, the average rise 0.45
        lead.report("a", best)
        lead.report("b", 0.99)  # other trials' epochs do not count
    assert lead.holds() and lead.bests == [0.1, 0.3, 0.5, 0.6, 0.7]


def test_the_lead_ends_when_the_curve_flattens_and_says_why():
    lead = _lead()
    lead.began("a")
    curve = [0.1, 0.5, 0.8, 0.9, 0.92, 0.93, 0.935]
    for epoch, best in enumerate(curve, start=1):
        lead.report("a", best)
        recent, average = best - curve[max(0, epoch - 4)], (best - curve[0]) / max(1, epoch - 1) * 3
        assert lead.holds() == (epoch <= 3 or recent > FLAT * average), epoch
        if not lead.holds():
            break
    assert epoch == 6  # 0.93 - 0.8 = 0.13 <= 1/3 x (0.83 / 5 x 3 = 0.498)
    assert "trained alone for 6 epochs" in lead.ended and "rose by 0.1300 over its last 3 epochs" in lead.ended
    assert lead.to_dict()["trial"] == "a" and lead.to_dict()["epochs"] == 6 and lead.to_dict()["ended_at"]
    lead.report("a", 0.99)  # after the end nothing changes
    assert lead.to_dict()["epochs"] == 6


def test_a_trial_that_learns_nothing_does_not_keep_the_machine():
    lead = _lead(window=2)
    lead.began("a")
    for best in (0.1, 0.1, 0.1):
        lead.report("a", best)
    assert not lead.holds() and "rose by 0.0000" in lead.ended


def test_the_lead_ends_at_its_share_of_the_time_limit_counted_from_its_first_step_or_with_its_trial():
    lead = _lead(limit_s=100.0)
    lead.began("a")
    assert lead.holds(now=1e12)  # not trained yet: its clock has not started
    lead.report("a", 0.1, first_step_at=50.0)
    assert lead.until == 150.0 and lead.holds(now=149.0) and not lead.holds(now=150.0)
    assert "share of the time limit (100 s of training)" in lead.ended
    other = _lead()
    other.began("a")
    other.left("b")
    assert other.holds()
    other.left("a")
    assert not other.holds() and other.ended.endswith("until it ended")


def test_workers_wait_on_the_file_while_another_trial_leads(tmp_path):
    path = tmp_path / "lead.json"
    assert waits(path, "b") < 0.1  # no lead written: no wait
    lead = _lead(path=path)
    lead.began("a")
    assert json.loads(path.read_text())["trial"] == "a"
    assert waits(path, "a") < 0.1  # the leader itself never waits
    ender = threading.Timer(1.0, lead.left, args=("a",))
    ender.start()
    waited = waits(path, "b")
    ender.join()
    assert 0.9 <= waited < 3 and json.loads(path.read_text())["ended_at"]
    expired = _lead(path=tmp_path / "expired.json", limit_s=0.0)
    expired.began("a")
    expired.report("a", 0.1, first_step_at=1.0)  # its share ran out long ago
    assert waits(tmp_path / "expired.json", "b") < 0.1
