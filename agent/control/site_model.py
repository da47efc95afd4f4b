"""The site as the controller sees it: limits, chargers and their connectors, from the config.

Built once at start-up; every strategy works on this, never on raw config sections, so the
simulator (which builds its config from a scenario) and the daemon share one view of the site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.config import AgentConfig, TariffSection
from agent.control.bms import LFP_TEMPERATURES, TemperatureWindow

Phase = Literal["L1", "L2", "L3"]
ALL_PHASES: tuple[Phase, ...] = ("L1", "L2", "L3")


@dataclass(frozen=True, slots=True)
class ConnectorModel:
    device: str  # the configured device that reads and limits this connector
    charger: str
    connector: int
    kind: Literal["dc", "ac"]
    max_kw: float
    phases: tuple[Phase, ...]  # the phases a car on it draws from
    min_a: float | None  # AC: a car gets at least this per phase, or nothing
    max_a: float | None
    weight: float = 1.0  # priority: shares of the power when it is short (max-min on kW/weight)

    def kw_from_amps(self, amps: float, voltage_v: float) -> float:
        return amps * voltage_v * len(self.phases) / 1000.0


@dataclass(frozen=True, slots=True)
class ChargerModel:
    id: str
    kind: Literal["dc", "ac"]
    max_kw: float
    connectors: tuple[ConnectorModel, ...]


@dataclass(frozen=True, slots=True)
class BatteryLimits:
    """The battery inverter's rating, the SoC and temperature windows the agent keeps it in."""

    max_charge_kw: float
    max_discharge_kw: float
    soc_min: float  # 0..1
    soc_max: float
    temperatures: TemperatureWindow = LFP_TEMPERATURES
    discharge_efficiency: float = 1.0  # the BMS's DC limits, as AC power


@dataclass(frozen=True, slots=True)
class SiteModel:
    name: str
    import_limit_kw: float
    export_limit_kw: float
    phase_limit_a: float | None
    voltage_v: float
    safety_margin_kw: float  # the most margin; the margin, unless it adapts
    reserve_kw: float  # non-controllable load the static caps leave room for
    grid_meter: str | None
    chargers: tuple[ChargerModel, ...]
    meter_max_age_s: float = 3.0  # older grid readings count as unknown: fail-safe
    safe_import_kw: float | None = None  # fail-safe budget; None: the static caps
    recovery_kw_per_s: float = 50.0  # how fast the budget grows back after a fail-safe
    charger_delay_s: float = 5.0  # chargers follow a new limit after this long
    battery: str | None = None  # the battery inverter device, if any
    inverters: tuple[str, ...] = ()
    battery_limits: BatteryLimits | None = None
    margin_floor_kw: float | None = None  # with it, the margin adapts down to this
    limit_signal: str | None = None  # a device whose import_limit (W) is in force
    limit_signal_hold_s: float = 900.0  # the last signalled limit holds this long when unknown
    tariff: TariffSection | None = None  # import prices, if the site has a time-of-use tariff
    defer_to_cheaper_hours: bool = True  # cars that stay long enough wait for cheaper hours

    @property
    def connectors(self) -> tuple[ConnectorModel, ...]:
        return tuple(c for charger in self.chargers for c in charger.connectors)

    @classmethod
    def from_config(cls, config: AgentConfig) -> SiteModel:
        chargers = []
        for charger in config.chargers:
            phases: tuple[Phase, ...] = (
                ALL_PHASES if charger.phases == 3 else (charger.phase or "L1",)
            )
            connectors = tuple(
                ConnectorModel(
                    device=c.device,
                    charger=charger.id,
                    connector=c.id,
                    kind=charger.kind,
                    max_kw=c.max_kw,
                    phases=phases,
                    min_a=charger.min_a,
                    max_a=charger.max_a,
                    weight=c.weight,
                )
                for c in charger.connectors
            )
            chargers.append(ChargerModel(charger.id, charger.kind, charger.max_kw, connectors))
        site = config.site
        return cls(
            name=site.name,
            import_limit_kw=site.grid_import_limit_kw,
            export_limit_kw=site.grid_export_limit_kw,
            phase_limit_a=site.phase_current_limit_a,
            voltage_v=site.nominal_voltage_v,
            safety_margin_kw=config.control.safety_margin_kw,
            reserve_kw=config.control.static_reserve_kw,
            grid_meter=site.grid_meter,
            chargers=tuple(chargers),
            meter_max_age_s=config.control.failsafe.meter_max_age_s,
            safe_import_kw=config.control.failsafe.safe_import_kw,
            recovery_kw_per_s=config.control.failsafe.recovery_kw_per_s,
            charger_delay_s=config.control.charger_delay_s,
            battery=next((d.id for d in config.devices if d.kind.value == "battery"), None),
            inverters=tuple(d.id for d in config.devices if d.kind.value == "inverter"),
            margin_floor_kw=config.control.margin_floor_kw,
            limit_signal=site.limit_signal,
            limit_signal_hold_s=site.limit_signal_hold_s,
            tariff=config.tariff if config.tariff.periods else None,
            defer_to_cheaper_hours=config.control.defer_to_cheaper_hours,
            battery_limits=None
            if config.battery is None
            else BatteryLimits(
                config.battery.max_charge_kw,
                config.battery.max_discharge_kw,
                config.battery.soc_min,
                config.battery.soc_max,
                TemperatureWindow(
                    config.battery.charge_min_temp_c,
                    config.battery.charge_max_temp_c,
                    config.battery.discharge_min_temp_c,
                    config.battery.discharge_max_temp_c,
                ),
                config.battery.discharge_efficiency,
            ),
        )
