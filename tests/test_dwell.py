"""Dwell times learnt from departures: who is likely to leave soon weighs more."""

from __future__ import annotations

import pytest

from agent.control.dwell import (
    FLOOR_S,
    MAX_MIXED_WEIGHT,
    MAX_WEIGHT,
    MIN_SAMPLES,
    MIN_SIMILAR,
    DwellTimes,
)
from agent.control.stays import Similar, Stay


def learn(dwell: DwellTimes, stays: list[float]) -> None:
    t = 0.0
    for n, stay in enumerate(stays):
        device = f"past-{n}"
        dwell.update(device, True, t)
        dwell.update(device, False, t + stay)
        t += stay


def test_no_opinion_before_enough_stays_have_been_seen() -> None:
    dwell = DwellTimes()
    learn(dwell, [1800.0] * (MIN_SAMPLES - 1))
    dwell.update("car", True, 0.0)
    assert dwell.weight("car", 3000.0) == 1.0
    assert dwell.weight("unknown", 3000.0) == 1.0


def test_the_expected_rest_of_a_stay_comes_from_the_longer_stays() -> None:
    dwell = DwellTimes()
    learn(dwell, [1200.0] * 10 + [3600.0] * 10)
    assert dwell.samples == 20
    assert dwell.remaining_s(0.0) == pytest.approx(2400.0)  # mean stay
    assert dwell.remaining_s(1800.0) == pytest.approx(1800.0)  # only the long stays remain
    assert dwell.remaining_s(3500.0) == FLOOR_S  # past nearly everyone: about to leave


def test_a_car_that_has_stayed_longer_weighs_more_within_bounds() -> None:
    dwell = DwellTimes()
    learn(dwell, [1200.0 + 60.0 * k for k in range(40)])  # 20 to 59 minutes
    dwell.update("new", True, 10_000.0)
    dwell.update("old", True, 10_000.0 - 2700.0)  # plugged in 45 minutes ago
    now = 10_000.0
    assert dwell.weight("new", now) == 1.0
    assert 1.0 < dwell.weight("old", now) <= MAX_WEIGHT
    weights = [dwell.weight("old", now + s) for s in range(0, 1200, 60)]
    assert weights == sorted(weights)  # it only grows while the car stays


def test_a_departure_is_recorded_once_and_only_for_a_known_arrival() -> None:
    dwell = DwellTimes()
    dwell.update("c1", False, 5.0)  # never seen arriving: nothing to record
    dwell.update("c1", True, 10.0)
    dwell.update("c1", True, 20.0)  # still there: the stay started at 10
    dwell.update("c1", False, 1210.0)
    dwell.update("c1", False, 1300.0)
    assert dwell.samples == 1
    learn(dwell, [1200.0] * MIN_SAMPLES)
    assert dwell.remaining_s(0.0) == pytest.approx(1200.0)


def test_stays_from_the_same_time_of_day_speak_for_a_car_once_enough_were_seen() -> None:
    dwell = DwellTimes()
    learn(dwell, [8 * 3600.0] * 20 + [3600.0] * 20)  # commuters and visitors, all mixed up
    dwell.update("visitor", True, 0.0)
    # All stays say a car 40 minutes in has hours left; the visitors' hour says 25 minutes.
    assert dwell.weight("visitor", 2400.0) == 1.2
    visitors = [Stay(39_600.0, 3600.0 + 60 * i, 5.0) for i in range(MIN_SIMILAR)]
    assert dwell.mixed
    assert dwell.weight("visitor", 2400.0, Similar.of(visitors)) == MAX_MIXED_WEIGHT
    too_few = Similar.of(visitors[: MIN_SIMILAR - 1])
    assert dwell.weight("visitor", 2400.0, too_few) == 1.2


def test_at_a_site_of_one_kind_of_stay_the_time_of_day_is_not_asked() -> None:
    dwell = DwellTimes()
    learn(dwell, [1200.0 + 60.0 * k for k in range(40)])  # taxis: 20 to 59 minutes
    dwell.update("taxi", True, 0.0)
    assert not dwell.mixed
    short = Similar.of([Stay(39_600.0, 1300.0 + i, 20.0) for i in range(MIN_SIMILAR)])
    # the similar stays would say it leaves in 12 minutes; the site's stays say 30
    assert dwell.weight("taxi", 600.0, short) == dwell.weight("taxi", 600.0) == 1.3
