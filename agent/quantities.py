"""The quantities the agent knows, each with the one unit it is kept in.

Profiles map device registers onto these names (scaling into the unit given here), and
everything downstream (state, controller, metrics, MQTT) speaks only these names. Keeping the
list in one place means a new device model cannot invent a unit the rest of the agent does not
understand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str
    unit: str
    description: str
    cumulative: bool = False  # a counter that only grows (energy), not a gauge


def _phases(stem: str, unit: str, description: str) -> list[Quantity]:
    return [Quantity(f"{stem}_l{n}", unit, f"{description}, phase L{n}") for n in (1, 2, 3)]


def _mppts() -> list[Quantity]:
    return [
        Quantity(f"mppt{n}_{stem}", unit, f"DC {stem} of MPP tracker {n}")
        for n in (1, 2, 3, 4)
        for stem, unit in (("power", "W"), ("voltage", "V"), ("current", "A"))
    ]


_ALL: list[Quantity] = [
    Quantity("power", "W", "active power, total; positive = import/consumption"),
    *_phases("power", "W", "active power"),
    *_phases("voltage", "V", "line-to-neutral voltage"),
    *_phases("current", "A", "current"),
    Quantity("frequency", "Hz", "grid frequency"),
    Quantity("power_factor", "1", "total power factor"),
    Quantity("energy_import", "Wh", "active energy imported", cumulative=True),
    Quantity("energy_export", "Wh", "active energy exported", cumulative=True),
    # PV inverters
    Quantity("dc_power", "W", "DC input power, all strings"),
    Quantity("dc_voltage", "V", "DC input voltage"),
    Quantity("dc_current", "A", "DC input current"),
    *_mppts(),
    Quantity("energy_produced", "Wh", "AC energy produced over the device's life", True),
    Quantity("rated_power", "W", "nameplate continuous active power"),
    Quantity("power_limit_pct", "%", "active-power limit in force, % of rated power"),
    Quantity("temperature", "°C", "cabinet or heat-sink temperature"),
    Quantity("operating_state", "", "the device's own state code (see the profile's labels)"),
    Quantity("alarms", "", "the device's alarm or event bits (see the profile's labels)"),
    # Batteries (battery_* are DC side; `power` of a battery inverter is AC, + = charging)
    Quantity("soc", "%", "state of charge"),
    Quantity("soh", "%", "state of health"),
    Quantity("battery_voltage", "V", "battery (pack) voltage"),
    Quantity("battery_current", "A", "battery current, positive = charging"),
    Quantity("battery_power", "W", "battery DC power, positive = charging"),
    Quantity("charge_current_limit", "A", "the BMS's present charge current limit"),
    Quantity("discharge_current_limit", "A", "the BMS's present discharge current limit"),
    Quantity("max_charge_power", "W", "the present charge power limit"),
    Quantity("max_discharge_power", "W", "the present discharge power limit"),
    Quantity("cell_voltage_min", "V", "lowest cell voltage"),
    Quantity("cell_voltage_max", "V", "highest cell voltage"),
    Quantity("cell_temperature_min", "°C", "lowest cell temperature"),
    Quantity("cell_temperature_max", "°C", "highest cell temperature"),
    Quantity("capacity", "Wh", "usable energy capacity"),
    Quantity("energy_charged", "Wh", "energy charged over the device's life", True),
    Quantity("energy_discharged", "Wh", "energy discharged over the device's life", True),
    Quantity("charge_rate_pct", "%", "charge-rate setpoint in force, % of max charge power"),
    Quantity("discharge_rate_pct", "%", "discharge-rate setpoint in force, % of max"),
    # Chargers (one configured device per connector; `power` is the car's draw)
    Quantity("charging_state", "", "the charger's state code (see the profile's labels)"),
    Quantity("current_setpoint", "A", "maximum current the charger applies now"),
    Quantity("power_setpoint", "W", "maximum power the charger applies now"),
    Quantity("setpoint_validity", "s", "seconds before the charger drops our setpoint"),
    Quantity("max_current", "A", "the charger's own maximum current"),
    Quantity("max_power", "W", "the charger's own maximum power"),
    Quantity("phases", "", "phases in use (1 or 3)"),
    Quantity("session_energy", "Wh", "energy delivered in the running session"),
    # Signals from outside the site (a utility's control box, a park controller)
    Quantity("import_limit", "W", "the grid import limit signalled now"),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _ALL}
PHASES: tuple[str, ...] = ("l1", "l2", "l3")


@dataclass(frozen=True, slots=True)
class Setpoint:
    name: str
    unit: str
    description: str


_SETPOINTS: list[Setpoint] = [
    Setpoint("current_limit", "A", "charger: most current the car may draw, per phase"),
    Setpoint("power_limit", "W", "DC charger: most power the car may draw"),
    Setpoint("phases", "", "charger: charge on 1 or 3 phases"),
    Setpoint("power_limit_pct", "%", "PV inverter: active-power limit, % of rated power"),
    Setpoint("charge_rate_pct", "%", "battery inverter: charge rate, % of max charge power"),
    Setpoint("discharge_rate_pct", "%", "battery inverter: discharge rate, % of max"),
    Setpoint("battery_power", "W", "battery inverter: AC power, positive = charge"),
]

SETPOINTS: dict[str, Setpoint] = {s.name: s for s in _SETPOINTS}
"""What the agent can command; profiles map these onto registers."""
