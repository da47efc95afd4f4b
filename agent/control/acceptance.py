"""What each car actually takes: power offered and not taken goes to the others.

A car is judged against the lowest limit it has been offered throughout the last `SETTLE_S`
(a limit raised a second ago proves nothing yet: the charger and the car take time to follow).
A car that leaves more than its headroom of that limit unused is taking all it wants (full
battery, derating, a small on-board charger): its demand becomes its draw plus the headroom,
and it follows the draw down as the car tapers. A car that presses against its estimate (draws
within half the headroom of it) can take more and is offered its connector's maximum again (one
held below its estimate by the grid presses against that limit and proves nothing). Once per
`probe_s` an estimated car is offered a step more (a car that woke up presses against it and
gets its maximum; a tapering one leaves it unused for a few seconds, not a whole maximum).

The limits the allocation sends change by small amounts almost every cycle; an estimate that
reset on each of them would never settle, and the power the tapering cars leave unused would
stay reserved for them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SETTLE_S = 8.0  # a limit must have been in force this long before the car is judged by it
HEADROOM_KW = 1.0  # offered above a car's draw, so it can rise without waiting
HEADROOM_SHARE = 0.1  # ... but never more than this share of the connector's maximum (AC)
UNUSED_SHARE = 0.015  # and it must leave this share of the limit unused, above the noise
PROBE_S = 300.0
PROBE_SHARE = 0.1  # the probe's step, as a share of the connector's maximum


def headroom_kw(max_kw: float) -> float:
    return min(HEADROOM_KW, HEADROOM_SHARE * max_kw)


def probe_step_kw(max_kw: float) -> float:
    return max(PROBE_SHARE * max_kw, 2 * headroom_kw(max_kw))


@dataclass(slots=True)
class _Car:
    probed_at: float
    wants_kw: float | None = None  # None: unknown, offer the connector's maximum
    # (sent at, limit) for the limits sent within the last SETTLE_S, after the one then in force
    offered: deque[tuple[float, float]] = field(default_factory=deque)

    def limit_kw(self) -> float:
        return self.offered[-1][1] if self.offered else 0.0

    def settled_limit_kw(self, now: float) -> float | None:
        """The lowest limit in force throughout the last SETTLE_S; None if too recent to tell."""
        cutoff = now - SETTLE_S
        offered = self.offered
        while len(offered) > 1 and offered[1][0] <= cutoff:
            offered.popleft()  # the one after it was already in force at the cutoff
        if not offered or offered[0][0] > cutoff:
            return None
        return min(kw for _, kw in offered)


class Acceptance:
    def __init__(self, probe_s: float = PROBE_S) -> None:
        self.probe_s = probe_s
        self._cars: dict[str, _Car] = {}

    def wants_kw(self, device: str, max_kw: float, draw_kw: float | None, now: float) -> float:
        """The power worth offering this car now: its estimate, or the connector's maximum."""
        car = self._cars.get(device)
        if car is None:
            car = self._cars[device] = _Car(probed_at=now)
        headroom = headroom_kw(max_kw)
        settled = car.settled_limit_kw(now)
        if draw_kw is not None and settled is not None and settled > 0:
            # A car already estimated is followed down as soon as it leaves its headroom
            # unused; one at an offered limit must leave more than the noise first.
            tolerance = headroom if car.wants_kw is not None else UNUSED_SHARE * settled
            if draw_kw < settled - max(headroom, tolerance):
                car.wants_kw = min(draw_kw + headroom, max_kw)
            elif car.wants_kw is not None and draw_kw >= car.wants_kw - headroom / 2:
                car.wants_kw = None  # it presses against its estimate: offer more again
        if car.wants_kw is not None and now - car.probed_at >= self.probe_s:
            car.wants_kw = min(car.wants_kw + probe_step_kw(max_kw), max_kw)
            car.probed_at = now
        return max_kw if car.wants_kw is None else car.wants_kw

    def sent(self, device: str, limit_kw: float, now: float) -> None:
        car = self._cars.get(device)
        if car is None:
            car = self._cars[device] = _Car(probed_at=now)
        if not car.offered or abs(limit_kw - car.limit_kw()) > 0.05:
            car.offered.append((now, limit_kw))

    def leave(self, device: str) -> None:
        """The car left (or the connector went idle): forget what was learnt about it."""
        self._cars.pop(device, None)
