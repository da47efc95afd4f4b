"""What the controller can trust in a snapshot: the grid, each connector, the battery, the PV.

A value the snapshot does not vouch for (stale, failed, missing) is `None` here, never 0: the
grid meter older than the fail-safe age is unknown, a connector that does not answer has an
unknown draw. Everything downstream decides what "unknown" costs; this module only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from agent.control.bms import NO_BMS_LIMITS, BmsLimits, bms_limits
from agent.control.site_model import ALL_PHASES, Phase, SiteModel
from agent.state import Quality, Snapshot

STATE_AVAILABLE, STATE_PREPARING, STATE_CHARGING, STATE_FINISHED = 0, 1, 2, 3
PLUGGED_IN_KW = 0.05  # drawing more than this means a car is there, whatever the state says


@dataclass(frozen=True, slots=True)
class ConnectorView:
    power_kw: float | None  # None: the charger does not answer
    state: int | None  # the generic charger codes; None if the profile has none

    @property
    def answering(self) -> bool:
        return self.power_kw is not None

    @property
    def plugged_in(self) -> bool | None:
        """A car is there (charging, waiting or full); None when the charger does not answer."""
        if self.power_kw is None:
            return None
        if self.state is not None and self.state != STATE_AVAILABLE:
            return True
        return self.power_kw > PLUGGED_IN_KW

    @property
    def wants_power(self) -> bool:
        """A car is plugged in and not full."""
        if self.power_kw is None:
            return False
        if self.state is None:
            return self.power_kw > PLUGGED_IN_KW
        return self.state in (STATE_PREPARING, STATE_CHARGING) or self.power_kw > PLUGGED_IN_KW


@dataclass(frozen=True, slots=True)
class Observation:
    grid_kw: float | None  # None: the grid meter is unknown (fail-safe)
    grid_age_s: float | None
    phase_a: Mapping[Phase, float] | None
    connectors: Mapping[str, ConnectorView]
    battery_kw: float | None  # + = discharge (the grid's view)
    battery_soc: float | None  # 0..1
    pv_kw: float | None
    at: datetime | None = None  # the grid reading's wall-clock time, for the planner
    bms: BmsLimits = NO_BMS_LIMITS  # what the battery's BMS allows now
    signalled_limit_kw: float | None = None  # the limit signal's import limit, if known

    def ev_kw(self) -> float:
        """What the answering connectors draw now."""
        return sum(c.power_kw for c in self.connectors.values() if c.power_kw is not None)


def observe(snapshot: Snapshot, site: SiteModel) -> Observation:
    grid_kw, grid_age, phases = _grid(snapshot, site)
    connectors = {}
    for connector in site.connectors:
        power = snapshot.value(connector.device, "power")
        state = snapshot.value(connector.device, "charging_state")
        connectors[connector.device] = ConnectorView(
            None if power is None else power / 1000, None if state is None else int(state)
        )
    battery_kw = battery_soc = None
    bms = NO_BMS_LIMITS
    if site.battery is not None:
        if (limits := site.battery_limits) is not None:
            efficiency = limits.discharge_efficiency
            bms = bms_limits(snapshot, site.battery, limits.temperatures, efficiency)
        power = snapshot.value(site.battery, "power")
        battery_kw = None if power is None else -power / 1000  # agent quantity: + = charging
        soc = snapshot.value(site.battery, "soc")
        battery_soc = None if soc is None else soc / 100
    pv = [snapshot.value(inverter, "power") for inverter in site.inverters]
    pv_kw = sum(p for p in pv if p is not None) / 1000 if any(p is not None for p in pv) else None
    entry = snapshot.values.get((site.grid_meter, "power")) if site.grid_meter else None
    at = None if entry is None else entry.reading.timestamp
    signalled = None
    if site.limit_signal is not None:
        watts = snapshot.value(site.limit_signal, "import_limit")
        signalled = None if watts is None else watts / 1000
    return Observation(
        grid_kw, grid_age, phases, connectors, battery_kw, battery_soc, pv_kw, at, bms, signalled
    )


def _grid(
    snapshot: Snapshot, site: SiteModel
) -> tuple[float | None, float | None, Mapping[Phase, float] | None]:
    if site.grid_meter is None:
        return None, None, None
    entry = snapshot.values.get((site.grid_meter, "power"))
    if entry is None or entry.quality is not Quality.GOOD or entry.age_s > site.meter_max_age_s:
        return None, None if entry is None else entry.age_s, None
    currents = {}
    for phase in ALL_PHASES:
        amps = snapshot.value(site.grid_meter, f"current_{phase.lower()}")
        if amps is None:
            return entry.reading.value / 1000, entry.age_s, None
        currents[phase] = amps
    return entry.reading.value / 1000, entry.age_s, currents
