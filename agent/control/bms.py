"""What the battery's own management system allows now: its current limits, its power limits and
its cells' temperature, as the most charge and discharge power (kW, AC side).

A limit the battery's profile does not read at all is no limit here (the rating and the SoC
window still apply); a limit it reads but that is unknown now (stale, failed: a dead BMS) is
zero: the controller never spends power it cannot vouch for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.state import Snapshot


@dataclass(frozen=True, slots=True)
class TemperatureWindow:
    """The cell temperatures (°C) between which the battery may charge, and discharge."""

    charge_min_c: float = 0.0
    charge_max_c: float = 50.0
    discharge_min_c: float = -10.0
    discharge_max_c: float = 50.0


@dataclass(frozen=True, slots=True)
class BmsLimits:
    charge_kw: float = math.inf
    discharge_kw: float = math.inf


LFP_TEMPERATURES = TemperatureWindow()
NO_BMS_LIMITS = BmsLimits()


def bms_limits(
    snapshot: Snapshot, device: str, window: TemperatureWindow, efficiency: float = 1.0
) -> BmsLimits:
    """The least of what the BMS says now; `efficiency` turns its DC discharge into AC."""
    charge = min(
        _current_limit_kw(snapshot, device, "charge_current_limit"),
        _reading_kw(snapshot, device, "max_charge_power"),
    )
    discharge = min(
        _current_limit_kw(snapshot, device, "discharge_current_limit") * efficiency,
        _reading_kw(snapshot, device, "max_discharge_power"),
    )
    coldest = _reading(snapshot, device, "cell_temperature_min")
    hottest = _reading(snapshot, device, "cell_temperature_max")
    if coldest is not None and hottest is not None:
        if math.isnan(coldest) or math.isnan(hottest):
            return BmsLimits(0.0, 0.0)
        if coldest < window.charge_min_c or hottest > window.charge_max_c:
            charge = 0.0
        if coldest < window.discharge_min_c or hottest > window.discharge_max_c:
            discharge = 0.0
    return BmsLimits(max(charge, 0.0), max(discharge, 0.0))


def _reading(snapshot: Snapshot, device: str, quantity: str) -> float | None:
    """None when the profile does not read it; NaN when it does but the value is unknown."""
    if (device, quantity) not in snapshot.values:
        return None
    value = snapshot.value(device, quantity)
    return math.nan if value is None else value


def _reading_kw(snapshot: Snapshot, device: str, quantity: str) -> float:
    watts = _reading(snapshot, device, quantity)
    if watts is None:
        return math.inf
    return 0.0 if math.isnan(watts) else watts / 1000


def _current_limit_kw(snapshot: Snapshot, device: str, quantity: str) -> float:
    amps = _reading(snapshot, device, quantity)
    if amps is None:
        return math.inf
    volts = _reading(snapshot, device, "battery_voltage")
    if math.isnan(amps) or volts is None or math.isnan(volts):
        return 0.0  # a current limit without the voltage to turn it into power: unknown
    return amps * volts / 1000
