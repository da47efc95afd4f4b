"""Charging moved out of the dear hours, when the site's history says the car will still be there.

Cars do not say when they leave or how much they want. At a car park the history does: cars
plugged in around 08:30 have stayed 8-9 hours and taken up to 30 kWh, cars plugged in around
19:00 stay the night. A car like that, plugged in during the morning peak, loses nothing by
waiting for the flat hours at 11:00 and the site pays a third less for its energy; an evening
car waits for the 22:00 valley. A taxi hub, where nobody stays two hours, never defers.

A car is deferred now (offered nothing, reason TARIFF) only when all of these hold:

- at least `MIN_SIMILAR` past stays began near its arrival's time of day (`stays.py`) and
  lasted longer than it has been there so far, and the shortest of those (their
  `LEAVE_QUANTILE`) still lasted `MIN_LEAVE_S`: on a Saturday at 17:30 shoppers and residents
  come alike, and an hour later those still there are the residents;
- a price cheaper than now's by `CHEAPER_BY` starts before the car is expected to leave (that
  quantile of its similar stays: pessimistic), and before the price is back to now's or the
  car leaves there is time to deliver the most such cars took (`NEED_QUANTILE`), less what it
  has had, at `CAR_RATE` of its connector (a commuter held through the morning peak must be
  done before the evening one);
- the deferred cars' needs (each the `TYPICAL_QUANTILE` of what such cars took) fit in
  `SITE_SHARE` of the room the limit (and each phase's limit, for the cars on it) leaves above
  the site's own load now (the battery idle), each within its cheaper hours (earliest end
  first); first come, first deferred. Where the battery planner's forecast has past days' PV
  to say how much those hours will bring, the room is that much more (or less) than now's: a
  commuter at 08:30 waits for a noon with twice the morning's PV, a resident at 19:00 for a
  night with none. A car already waiting keeps waiting while the needs fit in `KEEP_SHARE`:
  the room moves with the site's load and the PV, and a car on the edge must not be started
  and stopped every few seconds.

A waiting car still charges from PV that nothing else takes (the strategy offers it the
surplus the site, the other cars and the battery leave). Re-decided every cycle, so a car is
released as soon as waiting stops being safe or the cheaper hours begin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.control.stays import Similar, StayLog, Visit, day_seconds, quantile

MIN_SIMILAR = 5
LEAVE_QUANTILE = 0.1
NEED_QUANTILE = 0.9
TYPICAL_QUANTILE = 0.75  # what the deferred cars together are counted to need, each
MIN_LEAVE_S = 2 * 3600.0
CHEAPER_BY = 0.005  # per kWh: a price this much lower is worth waiting for
CAR_RATE = 0.75
SITE_SHARE = 0.8
KEEP_SHARE = 0.9  # > SITE_SHARE: the band that keeps a waiting car from flapping


@dataclass(frozen=True, slots=True)
class WaitingCar:
    device: str
    connector_kw: float
    phases: tuple[str, ...] = ()  # the phases an AC car draws on, evenly


SITE = "site"  # the room key for the whole connection; phases use their names


PvChange = Callable[[float, float], float]
"""(from_s, to_s) after now -> the mean PV expected then minus the PV now, kW."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    since: float
    device: str
    typical_kwh: float
    window_s: float  # the cheaper hours it will probably still be there for
    phases: tuple[str, ...]
    room_kw: Mapping[str, float]  # what the connection and the phases carry for it then

    def share(self, resource: str) -> float:
        if resource == SITE:
            return 1.0
        return 1.0 / len(self.phases) if resource in self.phases else 0.0


def _fits(chosen: list[_Candidate], share: float) -> bool:
    """Whether the cars' needs fit `share` of the room within each one's cheaper hours
    (earliest first)."""
    ordered = sorted(chosen, key=lambda c: c.window_s)
    for resource in ordered[0].room_kw if ordered else ():
        total = 0.0
        for car in ordered:
            total += car.typical_kwh * car.share(resource)
            if total > share * max(car.room_kw[resource], 0.0) * car.window_s / 3600:
                return False
    return True


def _with_pv(room_kw: Mapping[str, float], change_kw: float) -> dict[str, float]:
    """The room with `change_kw` more PV: all of it for the connection, a third per phase
    (three-phase inverters)."""
    return {r: kw + (change_kw if r == SITE else change_kw / 3) for r, kw in room_kw.items()}


class Deferral:
    """Which cars wait for cheaper hours this cycle."""

    def __init__(
        self, minute_prices: Sequence[float | None], zone: ZoneInfo, stays: StayLog
    ) -> None:
        self._prices = list(minute_prices)
        self._zone = zone
        self.stays = stays
        self._waiting: frozenset[str] = frozenset()  # the last cycle's answer

    def cheaper_window_s(self, day_s: float, within_s: float) -> tuple[float, float] | None:
        """(start, end) in seconds from now of the next stretch priced below now's by
        CHEAPER_BY, if it starts within `within_s`; it ends where the price is back to now's
        (energy moved past that end saves nothing) or at `within_s`."""
        minute = int(day_s // 60)
        now_price = self._prices[minute % 1440]
        if now_price is None:
            return None
        into = day_s % 60
        last = int(within_s // 60)
        start = None
        for ahead in range(1, last + 1):
            price = self._prices[(minute + ahead) % 1440]
            if start is None and price is not None and price <= now_price - CHEAPER_BY:
                start = ahead * 60 - into
            elif start is not None and (price is None or price >= now_price):
                return start, ahead * 60 - into
        return None if start is None else (start, within_s)

    def waiting(
        self,
        cars: Sequence[WaitingCar],
        now: float,
        at: datetime,
        room_kw: Mapping[str, float],
        pv_change: PvChange | None = None,
    ) -> frozenset[str]:
        """The cars to defer now.

        `room_kw`: what the connection (SITE) and, with phase limits, each phase can carry
        above the site's own load now. `pv_change`: the PV forecast, if there is one.
        """
        if not cars or room_kw.get(SITE, 0.0) <= 0:
            self._waiting = frozenset()
            return self._waiting
        day_s = day_seconds(at, self._zone)
        candidates = []
        for car in cars:
            outlook = self._outlook(car, now)
            if outlook is None:
                continue
            visit, similar, leave_in, need_s = outlook
            window = self.cheaper_window_s(day_s, leave_in)
            if window is None:
                continue
            cheaper_in, cheaper_until = window
            if cheaper_in + need_s > cheaper_until:
                continue
            typical = max(quantile(similar.energies, TYPICAL_QUANTILE) - visit.energy_kwh, 0.0)
            room = room_kw
            if pv_change is not None:
                room = _with_pv(room_kw, pv_change(cheaper_in, cheaper_until))
            window_s = cheaper_until - cheaper_in
            candidates.append(
                _Candidate(visit.since, car.device, typical, window_s, car.phases, room)
            )
        chosen: list[_Candidate] = []
        for candidate in sorted(candidates, key=lambda c: c.since):  # first come, first deferred
            share = KEEP_SHARE if candidate.device in self._waiting else SITE_SHARE
            if _fits([*chosen, candidate], share):
                chosen.append(candidate)
        self._waiting = frozenset(c.device for c in chosen)
        return self._waiting

    def _outlook(self, car: WaitingCar, now: float) -> tuple[Visit, Similar, float, float] | None:
        """What stays like this car's say: (its visit, the similar stays, how long it will
        probably stay from now, how long the most such cars take at CAR_RATE); None when
        they say nothing or the car's kind stays short."""
        visit = self.stays.visit(car.device)
        if visit is None:
            return None
        similar = self.stays.similar(visit, now)
        if similar is None:
            return None
        stayed_s = now - visit.since
        staying = similar.lasting_past(stayed_s)
        if len(staying) < MIN_SIMILAR:
            return None
        leave_s = quantile(staying, LEAVE_QUANTILE)
        if leave_s < MIN_LEAVE_S:
            return None  # not a site (or an hour) of long stays: the common case, quickly
        most = quantile(similar.energies, NEED_QUANTILE) - visit.energy_kwh
        need_s = max(most, 0.0) / (CAR_RATE * car.connector_kw) * 3600
        return visit, similar, leave_s - stayed_s, need_s
