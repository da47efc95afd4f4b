"""The adaptive safety margin: the configured margin until the load is known, then twice the
largest rise of the site's own load within the chargers' delay, between a floor and the
configured margin; a new larger rise widens it in the very cycle that sees it."""

from __future__ import annotations

import pytest

from agent.control.margin import LEARN_S, MEMORY_S, AdaptiveMargin, RecentHigh

MOST, FLOOR, WINDOW = 12.0, 3.0, 4.0


def feed(margin: AdaptiveMargin, start: int, seconds: int, load: float = 60.0) -> float:
    kw = margin.margin_kw
    for t in range(start, start + seconds):
        kw = margin.update(float(t), load + 0.01 * (t % 2))  # a calm load, 10 W of noise
    return kw


def test_without_a_floor_the_margin_is_the_configured_one() -> None:
    assert feed(AdaptiveMargin(MOST, None, WINDOW), 0, int(LEARN_S) * 2) == MOST


def test_a_calm_load_brings_the_margin_down_to_the_floor_after_learning() -> None:
    margin = AdaptiveMargin(MOST, FLOOR, WINDOW)
    assert feed(margin, 0, int(LEARN_S) - 1) == MOST  # not watched long enough
    assert feed(margin, int(LEARN_S), 10) == FLOOR


def test_a_rise_widens_the_margin_at_once_and_is_remembered_for_a_day() -> None:
    margin = AdaptiveMargin(MOST, FLOOR, WINDOW)
    t = int(LEARN_S) + 10
    feed(margin, 0, t)
    assert margin.update(float(t), 62.5) == pytest.approx(5.0)  # 2.5 kW rise: twice that
    assert margin.update(float(t + 1), 70.0) == MOST  # 10 kW: capped at the configured
    assert feed(margin, t + 2, 3600, load=70.0) == MOST  # a calm hour does not forget it
    assert feed(margin, t + 3602, int(MEMORY_S), load=70.0) == FLOOR  # a calm day does


def test_a_slow_drift_is_not_a_rise() -> None:
    # 60 kW more over an hour: 0.067 kW within a 4 s window, far below the floor.
    margin = AdaptiveMargin(MOST, FLOOR, WINDOW)
    kw = MOST
    for t in range(int(LEARN_S) + 3600):
        kw = margin.update(float(t), 60.0 + t / 60)
    assert kw == FLOOR


def test_the_site_load_believes_rises_from_their_second_cycle_and_falls_after_the_delay() -> None:
    load = RecentHigh(window_s=3.0)
    assert load.update(0.0, 60.0) == 60.0
    # The meter answered a second late while the cars ramped: the derived load dips for a
    # cycle. Believing it would hand out 500 kW the site does not have.
    assert load.update(1.0, -440.0) == 60.0
    assert load.update(2.0, 60.0) == 60.0
    # ... and jumps for a cycle while they are cut: not worth cutting every car for.
    assert load.update(3.0, 560.0) == 60.0
    assert load.update(4.0, 60.0) == 60.0
    # A real step up counts from its second cycle, and stays.
    assert load.update(5.0, 160.0) == 60.0
    assert load.update(6.0, 160.0) == 160.0
    # A real step down counts once it has lasted the window.
    assert load.update(7.0, 100.0) == 160.0
    assert load.update(8.0, 100.0) == 160.0
    assert load.update(9.0, 100.0) == 160.0
    assert load.update(10.0, 100.0) == 100.0


def test_after_a_gap_the_site_load_is_taken_as_measured() -> None:
    # A meter outage: the load from before it confirms nothing about the load after it.
    load = RecentHigh(window_s=3.0)
    load.update(0.0, 60.0)
    assert load.update(90.0, 300.0) == 300.0
