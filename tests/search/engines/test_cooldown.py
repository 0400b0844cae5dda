"""The cooldown's plain logic: when it begins, what it does to learning rates, which trials train on."""

import math

import pytest

from search.engines.attached import attach, attached
from search.engines.cooldown import FLOOR, Cooldown


def test_a_search_without_a_time_limit_or_with_cooldown_zero_has_none():
    assert Cooldown.starting_now(None, 0.2) is None
    assert Cooldown.starting_now(60, 0) is None
    cooldown = Cooldown.starting_now(60, 0.25)
    assert cooldown.window_s == 15 and cooldown.starts == pytest.approx(cooldown.deadline - 15)
    assert not cooldown.active()  # it has only just started


def test_the_learning_rate_falls_linearly_from_the_window_to_the_floor_at_the_deadline():
    cooldown = Cooldown(deadline=1000.0, window_s=100.0)
    assert [cooldown.active(t) for t in (899.9, 900.0, 1000.0)] == [False, True, True]
    assert cooldown.lr_scale(500) == 1.0 and cooldown.lr_scale(900) == pytest.approx(1.0)
    assert cooldown.lr_scale(950) == pytest.approx(FLOOR + (1 - FLOOR) / 2)
    assert cooldown.lr_scale(1000) == pytest.approx(FLOOR) and cooldown.lr_scale(2000) == pytest.approx(FLOOR)
    scales = [cooldown.lr_scale(t) for t in range(900, 1001, 10)]
    assert scales == sorted(scales, reverse=True)


def test_only_the_top_third_of_the_running_trials_train_on_and_the_leader_always():
    cooldown = Cooldown(deadline=1000.0, window_s=100.0)
    two = {"a": 0.9, "b": 0.95}
    assert [cooldown.keeps(t, two, 3) for t in two] == [False, True]
    seven = {t: v for t, v in zip("abcdefg", (0.1, 0.7, 0.2, 0.6, 0.5, 0.3, math.nan))}
    assert {t for t in seven if cooldown.keeps(t, seven, 3)} == {"b", "d", "e"}  # ceil(7 / 3) = 3
    assert cooldown.keeps("g", {"g": math.nan}, 3)  # alone, it leads
    assert cooldown.keeps("new", two, 3)  # a trial not yet seen running is not judged


def test_a_run_sees_the_cooldown_its_fit_attached_and_none_after():
    cooldown = Cooldown(deadline=1000.0, window_s=100.0)
    with attach("/runs/a", cooldown=cooldown, lead=None):
        assert attached("/runs/a", "cooldown") is cooldown and attached("/runs/a", "lead") is None
        assert attached("/runs/b", "cooldown") is None and attached(None, "cooldown") is None
    assert attached("/runs/a", "cooldown") is None
