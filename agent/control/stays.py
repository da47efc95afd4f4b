"""The site's stays: when in the day each car came, how long it stayed, how much it took.

What the controller knows about a car that has just plugged in comes from the cars that came
at the same time of day before: at a car park those plugged in around 08:30 are commuters
staying 8-9 hours, those around 11:00 visitors gone within two, those around 19:00 residents
staying the night. `StayLog` follows every connector, records each finished stay, and groups
the recent ones by the quarter hour of the day they began (with `SIMILAR_S` either side, across
midnight) for the dwell weights (`dwell.py`) and the tariff deferral (`deferral.py`).

Weekdays and weekends are told apart: at 18:15 on a Tuesday the cars are residents home for
the night, at 18:15 on a Saturday shoppers gone within the hour, and mixing the two would make
the residents look like short stays. A car's similar stays are the first of these with at
least `ENOUGH` stays: its kind of day (Monday-Friday or Saturday-Sunday) within `SIMILAR_S` of
its time of day, the same within `WIDER_S` (a few residents a day spread over two and a half
hours leave any 90 minutes of one week thin), then every day within each width; else the
last. Stays restored from a file written before day kinds were recorded count for both kinds.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from zoneinfo import ZoneInfo

DAY_S = 86_400
KEEP = 2_000  # recent stays kept: weeks of a car park, three days of a busy taxi hub
SIMILAR_S = 45 * 60  # stays that began within this of a time of day are alike
WIDER_S = 90 * 60  # ... or within this, when too few began that close
BUCKET_S = 15 * 60  # ... looked up by quarter hour
RELEARN_S = 900.0  # regrouped at most this often after departures (a sort of all stays)
ENOUGH = 5  # stays needed before a narrower group (or the car's kind of day alone) decides
WEEKEND_DAYS = (5, 6)  # Saturday, Sunday (datetime.weekday())


@dataclass(frozen=True, slots=True)
class Stay:
    arrived_s: float  # local time of day the car arrived, seconds after midnight
    stay_s: float
    energy_kwh: float
    weekend: bool | None = None  # the kind of day it began; None: not recorded (older files)


@dataclass(frozen=True, slots=True)
class Visit:
    """A car there now."""

    since: float  # the controller's clock
    arrived_s: float  # local time of day
    energy_kwh: float  # what it has had so far
    weekend: bool = False  # it came on a Saturday or Sunday


@dataclass(frozen=True, slots=True)
class LocalTime:
    """Where in the site's week a moment falls: its time of day and its kind of day."""

    day_s: float  # seconds after local midnight
    weekend: bool

    @classmethod
    def of(cls, at: datetime, zone: ZoneInfo) -> LocalTime:
        return cls(day_seconds(at, zone), at.astimezone(zone).weekday() in WEEKEND_DAYS)


@dataclass(frozen=True, slots=True)
class Similar:
    """Stays sorted by length: those that began near one time of day (or all recent ones)."""

    durations: tuple[float, ...]
    energies: tuple[float, ...]
    _suffix: tuple[float, ...]  # _suffix[i] = sum(durations[i:])

    @classmethod
    def of(cls, stays: Sequence[Stay]) -> Similar:
        return cls.of_lengths([s.stay_s for s in stays], [s.energy_kwh for s in stays])

    @classmethod
    def of_lengths(cls, durations: Iterable[float], energies: Iterable[float] = ()) -> Similar:
        ordered = sorted(durations)
        suffix = list(accumulate(reversed(ordered), initial=0.0))[::-1]
        return cls(tuple(ordered), tuple(sorted(energies)), tuple(suffix))

    def __len__(self) -> int:
        return len(self.durations)

    def lasting_past(self, stayed_s: float) -> tuple[float, ...]:
        """The lengths of the stays that lasted longer than `stayed_s`, shortest first."""
        return self.durations[bisect.bisect_right(self.durations, stayed_s) :]

    def longer_than(self, stayed_s: float) -> tuple[int, float]:
        """How many of these stays lasted longer than `stayed_s`, and their total length."""
        first = bisect.bisect_right(self.durations, stayed_s)
        return len(self.durations) - first, self._suffix[first]


def day_seconds(at: datetime, zone: ZoneInfo) -> float:
    """The local time of day of `at`, in seconds after midnight."""
    local = at.astimezone(zone)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted, non-empty values (the lower one: no interpolation)."""
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@dataclass(slots=True)
class _Visit:
    since: float
    arrived: LocalTime
    last: float
    energy_kwh: float = 0.0


class StayLog:
    """Every connector's stays, and the recent ones grouped by the time of day they began."""

    def __init__(self, keep: int = KEEP) -> None:
        self._stays: deque[Stay] = deque(maxlen=keep)
        self._visits: dict[str, _Visit] = {}
        # by (weekend, width): None is every day; each a Similar per quarter hour of the day
        self._similar: dict[tuple[bool | None, float], list[Similar]] = {}
        self._grouped_at: float | None = None
        self._changed = False

    def stays(self) -> list[Stay]:
        return list(self._stays)

    def restore(self, stays: Sequence[Stay]) -> None:
        """Start from stays recorded before (a restart); later departures push them out."""
        self._stays.extend(stays)
        self._changed = True

    def update(
        self, device: str, plugged_in: bool, power_kw: float, now: float, local: LocalTime
    ) -> None:
        """Follow one connector each cycle; `local` is where in the site's week `now` falls."""
        visit = self._visits.get(device)
        if plugged_in and visit is None:
            self._visits[device] = _Visit(since=now, arrived=local, last=now)
        elif plugged_in and visit is not None:
            visit.energy_kwh += max(power_kw, 0.0) * (now - visit.last) / 3600
            visit.last = now
        elif visit is not None:
            del self._visits[device]
            if now > visit.since:
                arrived = visit.arrived
                stay = Stay(arrived.day_s, now - visit.since, visit.energy_kwh, arrived.weekend)
                self._stays.append(stay)
                self._changed = True

    def visit(self, device: str) -> Visit | None:
        visit = self._visits.get(device)
        if visit is None:
            return None
        arrived = visit.arrived
        return Visit(visit.since, arrived.day_s, visit.energy_kwh, arrived.weekend)

    def similar(self, visit: Visit, now: float) -> Similar | None:
        """The stays that began near the visit's time of day (see the module docstring for
        which); None before any were seen."""
        due = self._grouped_at is None or now - self._grouped_at >= RELEARN_S
        if self._changed and due:
            stays = list(self._stays)
            kinds = {
                False: [s for s in stays if s.weekend is not True],
                True: [s for s in stays if s.weekend is not False],
                None: stays,
            }
            self._similar = {
                (kind, width): _group(of_kind, width)
                for kind, of_kind in kinds.items()
                for width in (SIMILAR_S, WIDER_S)
            }
            self._grouped_at = now
            self._changed = False
        if not self._similar:
            return None
        bucket = int(visit.arrived_s // BUCKET_S) % (DAY_S // BUCKET_S)
        for kind in (visit.weekend, None):
            for width in (SIMILAR_S, WIDER_S):
                found = self._similar[kind, width][bucket]
                if len(found) >= ENOUGH:
                    return found
        return found


def _group(stays: list[Stay], width_s: float) -> list[Similar]:
    ordered = sorted(stays, key=lambda s: s.arrived_s)
    keys = [s.arrived_s for s in ordered]
    groups = []
    for bucket in range(DAY_S // BUCKET_S):
        centre = (bucket + 0.5) * BUCKET_S
        similar: list[Stay] = []
        for low, high in _windows(centre - width_s, centre + width_s):
            similar += ordered[bisect.bisect_left(keys, low) : bisect.bisect_right(keys, high)]
        groups.append(Similar.of(similar))
    return groups


def _windows(low: float, high: float) -> list[tuple[float, float]]:
    """[low, high] as ranges within one day, split where it wraps past midnight."""
    if low < 0:
        return [(0.0, high), (low + DAY_S, float(DAY_S))]
    if high > DAY_S:
        return [(low, float(DAY_S)), (0.0, high - DAY_S)]
    return [(low, high)]
