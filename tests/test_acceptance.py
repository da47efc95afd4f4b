"""The cars' acceptance estimate: what a car does not take goes to the others, and only that."""

from __future__ import annotations

import pytest

from agent.control.acceptance import PROBE_S, SETTLE_S, Acceptance

MAX = 120.0


def offer(acc: Acceptance, limit: float, draw: float, start: float, seconds: int) -> float:
    """Each second: ask what the car wants (given its draw), then send `limit`."""
    wants = MAX
    for t in range(int(start), int(start) + seconds):
        wants = acc.wants_kw("c1", MAX, draw, float(t))
        acc.sent("c1", limit, float(t))
    return wants


def test_a_car_is_judged_only_once_its_limit_has_been_in_force() -> None:
    acc = Acceptance()
    assert offer(acc, MAX, 65.0, 0, 5) == MAX  # 5 s after the offer: too early to tell
    assert offer(acc, MAX, 65.0, 5, int(SETTLE_S)) == pytest.approx(66.0)  # draw + 1 kW


def test_limits_that_move_a_little_every_cycle_do_not_stop_the_judgement() -> None:
    # The allocation's shares change by 0.1 kW from one second to the next; the estimate
    # must still settle (it used to restart its clock on every change).
    acc = Acceptance()
    wants = MAX
    for t in range(30):
        wants = acc.wants_kw("c1", MAX, 65.0, float(t))
        acc.sent("c1", 119.5 + 0.1 * (t % 3), float(t))
    assert wants == pytest.approx(66.0)


def test_a_raise_is_not_judged_until_it_has_settled() -> None:
    acc = Acceptance()
    offer(acc, 40.0, 40.0, 0, 20)  # held at 40 kW by the grid, drawing all of it
    # Raised to 100 kW: the car ramps; two seconds later it still draws 40.
    assert offer(acc, 100.0, 40.0, 20, 3) == MAX


class Car:
    """A car behind a charger that follows a new limit after DELAY_S: draws min(limit, takes)."""

    DELAY_S = 2

    def __init__(self, takes_kw: float) -> None:
        self.takes_kw = takes_kw
        self.sent: list[float] = []

    def draw(self) -> float:
        in_force = self.sent[-1 - self.DELAY_S] if len(self.sent) > self.DELAY_S else 0.0
        return min(in_force, self.takes_kw)


def drive(acc: Acceptance, car: Car, share_kw: float, start: int, seconds: int) -> float:
    """The strategy's loop for one car: it gets the least of its estimate and a grid share."""
    wants = MAX
    for t in range(start, start + seconds):
        wants = acc.wants_kw("c1", MAX, car.draw() if car.sent else None, float(t))
        limit = min(wants, share_kw)
        acc.sent("c1", limit, float(t))
        car.sent.append(limit)
    return wants


def test_a_car_held_below_its_estimate_by_the_grid_keeps_its_estimate() -> None:
    acc = Acceptance()
    car = Car(takes_kw=65.0)
    assert drive(acc, car, MAX, 0, 20) == pytest.approx(66.0)
    # The grid gets short: the car is cut to 40 kW and draws all of it. That says nothing
    # about what it would take, so the estimate stays (it used to fall back to 120 kW).
    assert drive(acc, car, 40.0, 20, 60) == pytest.approx(66.0)
    assert car.draw() == 40.0


def test_a_car_that_can_take_more_again_presses_against_its_estimate_and_gets_it() -> None:
    acc = Acceptance()
    car = Car(takes_kw=65.0)
    assert drive(acc, car, MAX, 0, 20) == pytest.approx(66.0)
    car.takes_kw = 100.0  # its battery warmed up
    drive(acc, car, MAX, 20, 30)
    assert car.draw() == 100.0


def test_the_estimate_follows_a_tapering_car_down_and_is_probed_again() -> None:
    acc = Acceptance()
    wants = offer(acc, MAX, 80.0, 0, 10)
    assert wants == pytest.approx(81.0)
    t = 10
    for draw in (70.0, 60.0, 50.0):
        wants = offer(acc, wants, draw, t, 10)
        t += 10
    assert wants == pytest.approx(51.0)
    # Once per probe period it is offered a step more (12 kW), not its whole maximum ...
    assert offer(acc, wants, 50.0, t, int(PROBE_S)) == pytest.approx(51.0 + 12.0)


def test_a_probed_car_that_takes_the_step_gets_its_maximum_again() -> None:
    acc = Acceptance()
    car = Car(takes_kw=50.0)
    assert drive(acc, car, MAX, 0, 20) == pytest.approx(51.0)
    car.takes_kw = 110.0  # it woke up, but its draw cannot show it under a 51 kW limit
    drive(acc, car, MAX, 20, int(PROBE_S))
    drive(acc, car, MAX, 20 + int(PROBE_S), 20)  # the probe's step, pressed against: all of it
    assert car.draw() == 110.0


def test_a_probed_car_that_leaves_the_step_unused_is_estimated_again() -> None:
    acc = Acceptance()
    car = Car(takes_kw=50.0)
    drive(acc, car, MAX, 0, 20)
    assert drive(acc, car, MAX, 20, int(PROBE_S) + 20) == pytest.approx(51.0)


def test_a_car_that_leaves_is_forgotten() -> None:
    acc = Acceptance()
    offer(acc, MAX, 65.0, 0, 10)
    acc.leave("c1")
    assert acc.wants_kw("c1", MAX, 65.0, 10.0) == MAX
