"""Site load and PV forecasts for the battery planner, from the site's own recent history.

`LoadHistory` keeps 15-minute bins (mean site load without the battery, charging included, and
mean PV) for the last `days` days (8 by default: at most 768 bins, whatever the sample rate).
Bins are aligned to UTC quarter hours, which are local quarter hours too (every zone offset
in use is a multiple of 15 minutes). Samples are averaged per bin by count, so the feeder
should sample at a steady rate (once per cycle or per minute). A sample older than the window
is dropped; a non-finite one is ignored (a stale reading must not poison the means); a sample
far in the future moves the window and drops what falls out of it.

`forecast(now)` gives, per step, the mean of the 15-minute slices the step covers (one slice
for 15-minute steps), each estimated at the slice's centre t:

Load, first that has data:
  1. same weekday: mean of the bins at t - 7 d, t - 14 d, ... (within the window; with 8 days
     that is last week's bin), in local wall-clock time, so DST shifts do not shift the day;
  2. same time of day: mean of the bins at t - 1 d ... t - `days` d;
  3. recent: mean of the bins of the last hour before `now`, net of their PV (a new install's
     first day; such a step has no PV history either, so its PV forecast is 0);
  4. 0 kW.
The source of each step is reported (`Forecast.load_source`). Where 1 or 2 apply, the last
hour's departure from them carries on for a while: with d = measured load - what 1/2 said for
the last hour's bins, load(t) = max(0, history(t) + d exp(-lead / 1 h)). A car park's evening
is a handful of cars, so one past Saturday says little about this one; the cars charging now
will mostly still be charging in an hour, and the replan every 15 minutes follows them.

PV: the gateway knows neither the site's position nor its panels' orientation, so the clear-sky
shape is learned: env(t) = the highest bin at the same time of day over the previous days (the
clearest of the last week, which carries the season, orientation and shading). With
mean(t) = the mean of those same bins (the typical day):
  r      = measured PV / env over the last hour's bins (how clear it is now), in [0, 1.5],
           only when env there is at least 10 % of the highest PV seen (else undefined)
  w      = exp(-lead / 2 h)  (today's weather persists for a while, then the typical day wins)
  pv(t)  = max(0, mean(t) + (r env(t) - mean(t)) w), or mean(t) when r is undefined.
Night is zero because every previous night was. With no history at a time of day the PV
forecast is 0: the planner never counts on production it has not seen.

Everything here is pure and deterministic: no clock, no I/O; `now` comes from the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

BIN_S = 900
BINS_PER_DAY = 86400 // BIN_S
RECENT_S = 3600.0  # "recent": the last hour
PV_PERSISTENCE_S = 7200.0  # how long today's clearness carries into the forecast
LOAD_PERSISTENCE_S = 3600.0  # how long the last hour's departure from the history carries
PV_RATIO_MAX = 1.5  # a clearer day than any in the window, but not an unbounded one
PV_RATIO_MIN_SHARE = 0.1  # r needs env >= this share of the highest PV seen


class LoadSource(StrEnum):
    """Where a step's load forecast came from."""

    WEEKDAY = "weekday"
    TIME_OF_DAY = "time_of_day"
    RECENT = "recent"
    NONE = "none"

    @property
    def from_history(self) -> bool:
        """Made from the same weekday's or time of day's past, not just the last hour."""
        return self in (LoadSource.WEEKDAY, LoadSource.TIME_OF_DAY)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Per step of `step_s` from `start`: expected non-battery load and PV, in kW."""

    start: datetime
    step_s: int
    load_kw: tuple[float, ...]  # site load without the battery, charging included
    pv_kw: tuple[float, ...]  # PV the inverters could produce (before any curtailment)
    load_source: tuple[LoadSource, ...] = ()  # empty when not made from a history
    pv_known: tuple[bool, ...] = ()  # per step: the PV forecast rests on past days' PV

    def __post_init__(self) -> None:
        if len(self.pv_kw) != len(self.load_kw):
            raise ValueError(f"{len(self.load_kw)} load steps but {len(self.pv_kw)} PV steps")
        if self.load_source and len(self.load_source) != len(self.load_kw):
            raise ValueError("load_source must have one entry per step (or none)")
        if self.pv_known and len(self.pv_known) != len(self.load_kw):
            raise ValueError("pv_known must have one entry per step (or none)")
        if self.step_s <= 0:
            raise ValueError(f"step_s must be positive, got {self.step_s}")

    @property
    def steps(self) -> int:
        return len(self.load_kw)


@dataclass(slots=True)
class _Bin:
    load_sum: float = 0.0
    pv_sum: float = 0.0
    count: int = 0

    @property
    def load_kw(self) -> float:
        return self.load_sum / self.count

    @property
    def pv_kw(self) -> float:
        return self.pv_sum / self.count


class LoadHistory:
    """15-minute bins of site load and PV for the last `days` days (bounded memory)."""

    def __init__(self, tz: tzinfo = UTC, days: int = 8) -> None:
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        self.tz = tz  # the site's local time: weekdays and times of day are local
        self.days = days
        self.max_bins = days * BINS_PER_DAY
        self._bins: dict[int, _Bin] = {}
        self._newest: int | None = None

    def __len__(self) -> int:
        return len(self._bins)

    def copy(self) -> LoadHistory:
        """An independent copy (for a planner thread while the control loop keeps recording)."""
        other = LoadHistory(self.tz, self.days)
        other._bins = {k: _Bin(b.load_sum, b.pv_sum, b.count) for k, b in self._bins.items()}
        other._newest = self._newest
        return other

    def bins(self) -> list[tuple[int, float, float, int]]:
        """(bin index, load sum, PV sum, samples) per bin: what a restart should not lose."""
        return [(k, b.load_sum, b.pv_sum, b.count) for k, b in sorted(self._bins.items())]

    def restore(self, bins: list[tuple[int, float, float, int]]) -> None:
        """Start from bins kept before a restart (those outside the window are dropped)."""
        newest = max((b[0] for b in bins), default=None)
        if newest is not None and (self._newest is None or newest > self._newest):
            self._newest = newest
        for index, load_sum, pv_sum, count in bins:
            if self._newest is not None and index > self._newest - self.max_bins and count > 0:
                self._bins[index] = _Bin(load_sum, pv_sum, count)

    def record(self, ts: datetime, load_kw: float, pv_kw: float) -> None:
        """Add one sample: site load without the battery (charging included) and PV, in kW."""
        if not (math.isfinite(load_kw) and math.isfinite(pv_kw)):
            return
        index = _bin_index(ts)
        if self._newest is None or index > self._newest:
            self._newest = index
            oldest = index - self.max_bins + 1
            for stale in [k for k in self._bins if k < oldest]:
                del self._bins[stale]
        elif index <= self._newest - self.max_bins:
            return  # older than the window
        slot = self._bins.setdefault(index, _Bin())
        slot.load_sum += load_kw
        slot.pv_sum += max(pv_kw, 0.0)
        slot.count += 1

    def forecast(self, now: datetime, steps: int = 96, step_s: int = 900) -> Forecast:
        """Expected load and PV per step from `now` (see the module docstring for how)."""
        if steps < 0 or step_s <= 0:
            raise ValueError(f"need steps >= 0 and step_s > 0, got {steps} and {step_s}")
        now_ts = _timestamp(now)
        recent = self._recent_load(now_ts)
        deviation = self._load_deviation(now_ts)
        ratio = self._clearness(now_ts)
        slice_s = min(step_s, BIN_S)
        slices = max(1, math.ceil(step_s / slice_s))
        loads: list[float] = []
        pvs: list[float] = []
        sources: list[LoadSource] = []
        pv_known: list[bool] = []
        for step in range(steps):
            step_loads, step_pvs, step_sources = [], [], []
            known = True
            for part in range(slices):
                offset = step * step_s + (part + 0.5) * step_s / slices
                at = now + timedelta(seconds=offset)
                load, source = self._load_at(at, recent)
                if deviation is not None and source.from_history:
                    load = max(0.0, load + deviation * math.exp(-offset / LOAD_PERSISTENCE_S))
                step_loads.append(load)
                step_sources.append(source)
                pv = self._pv_at(at, offset, ratio)
                known = known and pv is not None
                step_pvs.append(0.0 if pv is None else pv)
            loads.append(sum(step_loads) / slices)
            pvs.append(sum(step_pvs) / slices)
            sources.append(_weakest(step_sources))
            pv_known.append(known)
        return Forecast(now, step_s, tuple(loads), tuple(pvs), tuple(sources), tuple(pv_known))

    def _days_back(self, at: datetime, days: range) -> list[_Bin]:
        """The bins at the same local wall-clock time `days` days before `at`."""
        local = at.astimezone(self.tz)
        found = []
        for k in days:
            slot = self._bins.get(_bin_index(local - timedelta(days=k)))
            if slot is not None:
                found.append(slot)
        return found

    def _load_at(self, at: datetime, recent: float | None) -> tuple[float, LoadSource]:
        same_weekday = self._days_back(at, range(7, self.days + 1, 7))
        if same_weekday:
            return _mean(b.load_kw for b in same_weekday), LoadSource.WEEKDAY
        any_day = self._days_back(at, range(1, self.days + 1))
        if any_day:
            return _mean(b.load_kw for b in any_day), LoadSource.TIME_OF_DAY
        if recent is not None:
            return recent, LoadSource.RECENT
        return 0.0, LoadSource.NONE

    def _pv_envelope(self, at: datetime) -> tuple[float, float] | None:
        """(clear-sky estimate, typical) PV at `at`'s time of day, from the previous days."""
        bins = self._days_back(at, range(1, self.days + 1))
        if not bins:
            return None
        return max(b.pv_kw for b in bins), _mean(b.pv_kw for b in bins)

    def _pv_at(self, at: datetime, lead_s: float, ratio: float | None) -> float | None:
        """None where no past day has PV at this time of day (the forecast then counts 0)."""
        shape = self._pv_envelope(at)
        if shape is None:
            return None
        envelope, typical = shape
        if ratio is None:
            return typical
        weight = math.exp(-lead_s / PV_PERSISTENCE_S)
        return max(0.0, typical + (ratio * envelope - typical) * weight)

    def _recent_bins(self, now_ts: float) -> list[tuple[int, _Bin]]:
        first = math.floor((now_ts - RECENT_S) / BIN_S)
        last = math.floor(now_ts / BIN_S)
        return [(k, b) for k in range(first, last + 1) if (b := self._bins.get(k)) is not None]

    def _recent_load(self, now_ts: float) -> float | None:
        """The last hour's load net of PV: a step with no history forecasts no PV either, so
        the load the PV carried now must not reappear there as load the grid has to carry."""
        bins = self._recent_bins(now_ts)
        return _mean(b.load_kw - b.pv_kw for _, b in bins) if bins else None

    def _load_deviation(self, now_ts: float) -> float | None:
        """The last hour's measured load minus what the history says for the same bins;
        None where the history says nothing."""
        gaps = []
        for index, slot in self._recent_bins(now_ts):
            said, source = self._load_at(_bin_centre(index), None)
            if source.from_history:
                gaps.append(slot.load_kw - said)
        return _mean(gaps) if gaps else None

    def _clearness(self, now_ts: float) -> float | None:
        """Measured PV over the clear-sky estimate in the last hour; None when too dark."""
        if not self._bins:
            return None
        peak = max(b.pv_kw for b in self._bins.values())
        measured = envelope = 0.0
        counted = 0
        for index, slot in self._recent_bins(now_ts):
            shape = self._pv_envelope(_bin_centre(index))
            if shape is None:
                continue
            measured += slot.pv_kw
            envelope += shape[0]
            counted += 1
        if counted == 0 or peak <= 0 or envelope < PV_RATIO_MIN_SHARE * peak * counted:
            return None
        return min(measured / envelope, PV_RATIO_MAX)


_STRENGTH = (LoadSource.WEEKDAY, LoadSource.TIME_OF_DAY, LoadSource.RECENT, LoadSource.NONE)


def _weakest(sources: list[LoadSource]) -> LoadSource:
    return max(sources, key=_STRENGTH.index)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


def _timestamp(ts: datetime) -> float:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"need an aware datetime, got naive {ts.isoformat()}")
    return ts.timestamp()


def _bin_centre(index: int) -> datetime:
    return datetime.fromtimestamp((index + 0.5) * BIN_S, UTC)


def _bin_index(ts: datetime) -> int:
    return math.floor(_timestamp(ts) / BIN_S)
