"""The BMS's own limits: current limits times pack voltage, power limits, the cells' temperature
window, and a BMS that stops answering, which means no battery power at all."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from agent.control.bms import BmsLimits, TemperatureWindow, bms_limits
from agent.state import Quality, Reading, Snapshot, SnapshotValue

NOW = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = TemperatureWindow(charge_min_c=0.0, charge_max_c=50.0, discharge_min_c=-10.0,
                           discharge_max_c=50.0)  # fmt: skip


def snapshot(values: Mapping[str, float | None]) -> Snapshot:
    """The battery's readings; None stands for a value the BMS no longer delivers (stale)."""
    entries = {}
    for quantity, value in values.items():
        quality = Quality.GOOD if value is not None else Quality.STALE
        reading = Reading("battery", quantity, 0.0 if value is None else value, 0.0, NOW)
        entries[("battery", quantity)] = SnapshotValue(reading, 0.0, quality)
    return Snapshot(0.0, MappingProxyType(entries), MappingProxyType({}))


def test_a_profile_without_bms_limits_leaves_the_rating_alone() -> None:
    assert bms_limits(snapshot({"soc": 50.0}), "battery", WINDOW) == BmsLimits(math.inf, math.inf)


def test_current_limits_become_power_at_the_pack_voltage() -> None:
    readings = {"battery_voltage": 800.0, "charge_current_limit": 250.0,
                "discharge_current_limit": 500.0}  # fmt: skip
    limits = bms_limits(snapshot(readings), "battery", WINDOW, efficiency=0.95)
    assert limits.charge_kw == 200.0
    assert limits.discharge_kw == 400.0 * 0.95  # DC out, less the conversion loss


def test_the_lowest_of_current_and_power_limits_wins() -> None:
    readings = {"battery_voltage": 800.0, "charge_current_limit": 250.0,
                "discharge_current_limit": 500.0, "max_charge_power": 150_000.0}  # fmt: skip
    limits = bms_limits(snapshot(readings), "battery", WINDOW)
    assert (limits.charge_kw, limits.discharge_kw) == (150.0, 400.0)


def test_cold_cells_may_discharge_but_not_charge() -> None:
    readings = {"cell_temperature_min": -4.0, "cell_temperature_max": 2.0}
    limits = bms_limits(snapshot(readings), "battery", WINDOW)
    assert limits.charge_kw == 0.0
    assert limits.discharge_kw == math.inf


def test_hot_cells_do_neither() -> None:
    readings = {"cell_temperature_min": 45.0, "cell_temperature_max": 53.0}
    assert bms_limits(snapshot(readings), "battery", WINDOW) == BmsLimits(0.0, 0.0)


def test_a_dead_bms_means_no_battery_power() -> None:
    for dead in ("charge_current_limit", "battery_voltage", "cell_temperature_max"):
        readings: dict[str, float | None] = {
            "battery_voltage": 800.0, "charge_current_limit": 250.0,
            "discharge_current_limit": 500.0, "cell_temperature_min": 20.0,
            "cell_temperature_max": 25.0,
        }  # fmt: skip
        readings[dead] = None
        limits = bms_limits(snapshot(readings), "battery", WINDOW)
        assert limits.charge_kw == 0.0, dead
        if dead != "charge_current_limit":
            assert limits.discharge_kw == 0.0, dead
