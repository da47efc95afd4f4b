"""What each car actually takes: power offered and not taken goes to the others.

A car that draws clearly less than its limit, once the limit has had time to take effect, is
taking all it wants (full battery, derating, a small on-board charger); its demand is then its
draw plus a little headroom. Every `probe_s` such a car is offered its connector's maximum
again, so a car that can take more (a colder battery, a tapering that ended) is found.
"""

from __future__ import annotations

from dataclasses import dataclass

TAKES_LESS = 0.9  # drawing under 90 % of the limit in force: the car is the bottleneck
HEADROOM_KW = 2.0  # offered above a limited car's draw, so it can rise without waiting
SETTLE_S = 8.0  # after a limit change, wait this long before judging the car


@dataclass(slots=True)
class _Car:
    wants_kw: float | None = None  # None: unknown, offer the connector's maximum
    settled_at: float = 0.0  # when its current limit was sent
    limit_kw: float = 0.0
    probed_at: float = 0.0


class Acceptance:
    def __init__(self, probe_s: float = 60.0) -> None:
        self.probe_s = probe_s
        self._cars: dict[str, _Car] = {}

    def wants_kw(self, device: str, max_kw: float, draw_kw: float | None, now: float) -> float:
        car = self._cars.setdefault(device, _Car(settled_at=now, probed_at=now))
        settled = now - car.settled_at >= SETTLE_S
        if draw_kw is not None and settled and car.limit_kw > 0:
            if draw_kw < TAKES_LESS * car.limit_kw:
                car.wants_kw = min(draw_kw + HEADROOM_KW, max_kw)
            elif car.wants_kw is not None and draw_kw >= TAKES_LESS * car.wants_kw:
                car.wants_kw = None  # it takes what it gets: offer more again
        if car.wants_kw is not None and now - car.probed_at >= self.probe_s:
            car.wants_kw = None
            car.probed_at = now
        return max_kw if car.wants_kw is None else car.wants_kw

    def sent(self, device: str, limit_kw: float, now: float) -> None:
        car = self._cars.setdefault(device, _Car())
        if abs(limit_kw - car.limit_kw) > 0.05:
            car.settled_at = now
            car.limit_kw = limit_kw

    def leave(self, device: str) -> None:
        """The car left (or the connector went idle): forget what was learnt about it."""
        self._cars.pop(device, None)
