"""Charging moved out of the dear hours, when the site's history says the car will still be there.

Cars do not say when they leave or how much they want. At a car park the history does: cars
plugged in around 08:30 have stayed 8-9 hours and taken up to 30 kWh, cars plugged in around
19:00 stay the night. A car like that, plugged in during the morning peak, loses nothing by
waiting for the flat hours at 11:00 and the site pays a third less for its energy; an evening
car waits for the 22:00 valley. A taxi hub, where nobody stays two hours, never defers.

A car is deferred now (offered nothing, reason TARIFF) only when all of these hold:

- at least `MIN_SIMILAR` past stays began near its arrival's time of day (`stays.py`), and the
  shortest of them (their `LEAVE_QUANTILE`) still lasted `MIN_LEAVE_S`;
- a price cheaper than now's by `CHEAPER_BY` starts before the car is expected to leave (that
  quantile of its similar stays: pessimistic), leaving enough time to deliver the most such
  cars took (`NEED_QUANTILE`), less what it has had, at `CAR_RATE` of its connector;
- the deferred cars' typical needs (the mean) fit in `SITE_SHARE` of the room the limit (and
  each phase's limit, for the cars on it) leaves above the site's own load now, each before it
  is expected to leave (earliest first); first come, first deferred;
- the site has no PV surplus (a car charging from the sun costs nothing).

Re-decided every cycle, so a car is released as soon as waiting stops being safe (its latest
start), the cheaper hours begin, or the sun comes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.control.stays import StayLog, day_seconds, quantile

MIN_SIMILAR = 5
LEAVE_QUANTILE = 0.1
NEED_QUANTILE = 0.9
MIN_LEAVE_S = 2 * 3600.0
CHEAPER_BY = 0.005  # per kWh: a price this much lower is worth waiting for
CAR_RATE = 0.75
SITE_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class WaitingCar:
    device: str
    connector_kw: float
    phases: tuple[str, ...] = ()  # the phases an AC car draws on, evenly


SITE = "site"  # the room key for the whole connection; phases use their names


@dataclass(frozen=True, slots=True)
class _Candidate:
    since: float
    device: str
    typical_kwh: float
    window_s: float  # from the cheaper price to when it probably leaves
    phases: tuple[str, ...]

    def share(self, resource: str) -> float:
        if resource == SITE:
            return 1.0
        return 1.0 / len(self.phases) if resource in self.phases else 0.0


def _fits(chosen: list[_Candidate], room_kw: Mapping[str, float]) -> bool:
    """Whether the cars' typical needs fit the room before each leaves (earliest first)."""
    ordered = sorted(chosen, key=lambda c: c.window_s)
    for resource, kw in room_kw.items():
        total = 0.0
        for car in ordered:
            total += car.typical_kwh * car.share(resource)
            if total > SITE_SHARE * max(kw, 0.0) * car.window_s / 3600:
                return False
    return True


class Deferral:
    """Which cars wait for cheaper hours this cycle."""

    def __init__(
        self, minute_prices: Sequence[float | None], zone: ZoneInfo, stays: StayLog
    ) -> None:
        self._prices = list(minute_prices)
        self._zone = zone
        self.stays = stays

    def cheaper_in_s(self, day_s: float, within_s: float) -> float | None:
        """Seconds until a price cheaper than now's by CHEAPER_BY starts, if within `within_s`."""
        minute = int(day_s // 60)
        now_price = self._prices[minute % 1440]
        if now_price is None:
            return None
        for ahead in range(1, int(within_s // 60) + 1):
            price = self._prices[(minute + ahead) % 1440]
            if price is not None and price <= now_price - CHEAPER_BY:
                return ahead * 60 - day_s % 60
        return None

    def waiting(
        self, cars: Sequence[WaitingCar], now: float, at: datetime, room_kw: Mapping[str, float]
    ) -> frozenset[str]:
        """The cars to defer now.

        `room_kw`: what the connection (SITE) and, with phase limits, each phase can carry
        above the site's own load now.
        """
        if not cars or room_kw.get(SITE, 0.0) <= 0:
            return frozenset()
        day_s = day_seconds(at, self._zone)
        candidates = []
        for car in cars:
            visit = self.stays.visit(car.device)
            if visit is None:
                continue
            similar = self.stays.similar(visit.arrived_s, now)
            if similar is None or len(similar) < MIN_SIMILAR:
                continue
            leave_s = quantile(similar.durations, LEAVE_QUANTILE)
            if leave_s < MIN_LEAVE_S:
                continue  # not a site (or an hour) of long stays: the common case, quickly
            leave_in = leave_s - (now - visit.since)
            cheaper_in = self.cheaper_in_s(day_s, leave_in)
            if cheaper_in is None:
                continue
            most = quantile(similar.energies, NEED_QUANTILE) - visit.energy_kwh
            need_s = max(most, 0.0) / (CAR_RATE * car.connector_kw) * 3600
            if cheaper_in + need_s > leave_in:
                continue
            typical = max(sum(similar.energies) / len(similar) - visit.energy_kwh, 0.0)
            candidates.append(
                _Candidate(visit.since, car.device, typical, leave_in - cheaper_in, car.phases)
            )
        chosen: list[_Candidate] = []
        for candidate in sorted(candidates, key=lambda c: c.since):  # first come, first deferred
            if _fits([*chosen, candidate], room_kw):
                chosen.append(candidate)
        return frozenset(c.device for c in chosen)
