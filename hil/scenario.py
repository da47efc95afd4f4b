"""A site scenario (../shared/scenarios/FORMAT.md, version 1) as typed, frozen data.

`hil.scenario_loader.load_scenario` builds these from a JSON file and refuses a bad one with the
key path and the reason; the physics, the runner and the HIL site read only these types.
Units are the format's: kW, kWh, A, V, seconds from the scenario start.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Phase = Literal["L1", "L2", "L3"]
PHASES: tuple[Phase, ...] = ("L1", "L2", "L3")


@dataclass(frozen=True, slots=True)
class Curve:
    """`[[t_s, value], ...]`, linear between points, flat before the first and after the last."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def at(self, t_s: float) -> float:
        index = bisect.bisect_right(self.times, t_s)
        if index == 0:
            return self.values[0]
        if index == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[index - 1], self.times[index]
        v0, v1 = self.values[index - 1], self.values[index]
        return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)

    @property
    def peak(self) -> float:
        return max(self.values)


@dataclass(frozen=True, slots=True)
class SiteSpec:
    grid_limit_kw: float
    export_limit_kw: float
    phase_limit_a: tuple[float, float, float] | None
    voltage_v: float
    base_load_kw: Curve


@dataclass(frozen=True, slots=True)
class PvSpec:
    peak_kw: float
    profile: Curve  # fraction of peak_kw

    def available_kw(self, t_s: float) -> float:
        return self.peak_kw * self.profile.at(t_s)


@dataclass(frozen=True, slots=True)
class BatterySpec:
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    soc_init: float  # fractions 0..1
    soc_min: float
    soc_max: float
    charge_efficiency: float
    discharge_efficiency: float


@dataclass(frozen=True, slots=True)
class TariffPeriod:
    name: str
    start_min: int  # minutes after local midnight
    end_min: int  # exclusive; 1440 for "24:00"
    price: float


@dataclass(frozen=True, slots=True)
class Tariff:
    periods: tuple[TariffPeriod, ...]
    export_price: float
    currency: str

    def period_at(self, minute_of_day: float) -> TariffPeriod:
        for period in self.periods:
            if period.start_min <= minute_of_day < period.end_min:
                return period
        raise LookupError(f"no tariff period covers minute {minute_of_day}")


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    id: int
    max_kw: float


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    id: str
    kind: Literal["dc", "ac"]
    max_kw: float  # the charger's total, shared by its connectors
    phases: Literal[1, 3]
    phase: Phase | None  # the phase a 1-phase charger is wired to
    min_a: float | None  # AC only: below this per-phase current the car draws nothing
    max_a: float | None
    connectors: tuple[ConnectorSpec, ...]

    def phases_used(self) -> tuple[Phase, ...]:
        if self.phases == 3:
            return PHASES
        assert self.phase is not None
        return (self.phase,)


@dataclass(frozen=True, slots=True)
class SessionSpec:
    id: str
    charger: str
    connector: int
    arrive_s: float
    depart_s: float
    energy_kwh: float
    max_kw: float


@dataclass(frozen=True, slots=True)
class GridLimitEvent:
    t_s: float
    kw: float
    type: Literal["grid_limit"] = "grid_limit"


@dataclass(frozen=True, slots=True)
class MeterOutageEvent:
    t_s: float
    duration_s: float
    type: Literal["meter_outage"] = "meter_outage"


@dataclass(frozen=True, slots=True)
class ChargerOfflineEvent:
    t_s: float
    charger: str
    duration_s: float
    type: Literal["charger_offline"] = "charger_offline"


Event = GridLimitEvent | MeterOutageEvent | ChargerOfflineEvent


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    start: datetime  # aware: t = 0, with the offset tariff periods are local to
    duration_s: int
    site: SiteSpec
    pv: PvSpec | None
    battery: BatterySpec | None
    tariff: Tariff
    chargers: tuple[ChargerSpec, ...]
    sessions: tuple[SessionSpec, ...]
    events: tuple[Event, ...]

    def charger(self, charger_id: str) -> ChargerSpec:
        for charger in self.chargers:
            if charger.id == charger_id:
                return charger
        raise KeyError(charger_id)

    def local_minute(self, t_s: float) -> float:
        """Minutes after local midnight (of the start's offset) at scenario time t_s."""
        local = self.start + timedelta(seconds=t_s)
        return local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60

    def price_at(self, t_s: float) -> float:
        return self.tariff.period_at(self.local_minute(t_s)).price

    def grid_limit_at(self, t_s: float) -> float:
        """The import limit in force: the site's, or the last `grid_limit` event before t_s."""
        limit = self.site.grid_limit_kw
        for event in self.events:
            if isinstance(event, GridLimitEvent) and event.t_s <= t_s:
                limit = event.kw
        return limit

    def meter_out(self, t_s: float) -> bool:
        return any(
            isinstance(e, MeterOutageEvent) and e.t_s <= t_s < e.t_s + e.duration_s
            for e in self.events
        )

    def charger_offline(self, charger_id: str, t_s: float) -> bool:
        return any(
            isinstance(e, ChargerOfflineEvent)
            and e.charger == charger_id
            and e.t_s <= t_s < e.t_s + e.duration_s
            for e in self.events
        )
