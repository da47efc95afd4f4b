"""The site config a technician would write for a scenario's hardware, generated.

Both simulator modes use it: fast mode builds the controller's `SiteModel` from it, HIL mode
writes it to disk and starts the real daemon with it. The layout is the HIL one:

- the grid meter is an Eastron SDM630 on an RS-485 line (a socat pty pair in HIL);
- PV is a row of SunSpec inverters of up to 100 kW each behind one Modbus TCP gateway;
- the battery is one SunSpec battery inverter on its own TCP port;
- every charger connector is a `generic-charger` device (one unit id per connector), 32
  connectors per TCP gateway, with the register map of `hil.site.facades` (the same map as
  the simulated DC charger of `hil.devices.dc_charger`, plus a current setpoint for AC);
- when the scenario's utility curtails (`grid_limit` events), its control box is a
  `generic-limit-signal` device at unit id 247 of the first charger gateway, showing the limit
  in force as a u32 in W at holding register 300.

`Endpoints` says where each bus is; fast mode passes placeholders that are never opened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from hil.scenario import ChargerSpec, GridLimitEvent, Scenario

INVERTER_KW = 100.0
CONNECTORS_PER_GATEWAY = 32
METER_BAUD = 19200
LIMIT_SIGNAL = "utility"  # the utility's control box, when the scenario curtails
LIMIT_SIGNAL_UNIT = 247
LIMIT_SIGNAL_REGISTER = 300


@dataclass(frozen=True, slots=True)
class Endpoints:
    meter_port: str = "/dev/ttyHIL-meter"
    pv: int = 1502
    battery: int = 1503
    chargers: tuple[int, ...] = field(default_factory=tuple)  # one TCP port per gateway
    metrics_port: int = 0
    host: str = "127.0.0.1"

    def charger_port(self, gateway: int) -> int:
        return self.chargers[gateway] if gateway < len(self.chargers) else 1600 + gateway


def connector_device(charger: ChargerSpec, connector: int) -> str:
    return f"{charger.id.lower()}-{connector}"


def inverter_count(scenario: Scenario) -> int:
    if scenario.pv is None or scenario.pv.peak_kw <= 0:
        return 0
    return max(1, math.ceil(scenario.pv.peak_kw / INVERTER_KW))


def has_limit_signal(scenario: Scenario) -> bool:
    return any(isinstance(e, GridLimitEvent) for e in scenario.events)


def gateway_count(scenario: Scenario) -> int:
    connectors = sum(len(c.connectors) for c in scenario.chargers)
    return math.ceil(connectors / CONNECTORS_PER_GATEWAY)


def connector_slots(scenario: Scenario) -> list[tuple[ChargerSpec, int, int, int]]:
    """(charger, connector id, gateway index, unit id) for every connector, in file order."""
    slots = []
    for index, (charger, connector) in enumerate(
        (c, k.id) for c in scenario.chargers for k in c.connectors
    ):
        slots.append(
            (
                charger,
                connector,
                index // CONNECTORS_PER_GATEWAY,
                index % CONNECTORS_PER_GATEWAY + 1,
            )
        )
    return slots


def site_toml(
    scenario: Scenario,
    endpoints: Endpoints | None = None,
    strategy: str = "fair",
    speed: float = 1.0,
    state_file: Path | None = None,
) -> str:
    """The whole site file; `speed` > 1 shortens the agent's cycle and polls to match the
    simulated clock (the agent's own clock stays real); `state_file`: where the daemon keeps
    what it learns (the default is the system's state directory)."""
    ends = endpoints or Endpoints()
    cycle_s = max(1.0 / speed, 0.1)
    parts = [
        _site(scenario),
        _buses(scenario, ends),
        _meter(cycle_s),
        _inverters(scenario, cycle_s),
        _battery(scenario, cycle_s),
        _chargers(scenario, cycle_s),
        _limit_signal(scenario, cycle_s),
        _control(scenario, strategy, cycle_s, state_file),
        _battery_limits(scenario),
        _tariff(scenario),
        f'[prometheus]\nbind = "{ends.host}"\nport = {ends.metrics_port}\n',
    ]
    return "\n".join(part for part in parts if part)


def _site(scenario: Scenario) -> str:
    site = scenario.site
    phase = "" if site.phase_limit_a is None else (
        f"phase_current_limit_a = {min(site.phase_limit_a)}\n"
    )  # fmt: skip
    return (
        f"# Generated from scenario {scenario.name} by hil/site_config.py.\n"
        f'[site]\nname = "{scenario.name}"\n'
        f"grid_import_limit_kw = {site.grid_limit_kw}\n"
        f"grid_export_limit_kw = {site.export_limit_kw}\n"
        f"{phase}nominal_voltage_v = {site.voltage_v}\n"
        'grid_meter = "grid-meter"\n'
        + (f'limit_signal = "{LIMIT_SIGNAL}"\n' if has_limit_signal(scenario) else "")
    )


def _buses(scenario: Scenario, ends: Endpoints) -> str:
    text = (
        f'[[buses]]\nname = "meter"\ntype = "serial"\nport = "{ends.meter_port}"\n'
        f"baudrate = {METER_BAUD}\ntimeout_s = 0.3\n"
    )
    if inverter_count(scenario):
        text += _tcp_bus("pv", ends.host, ends.pv)
    if scenario.battery is not None:
        text += _tcp_bus("battery", ends.host, ends.battery)
    for gateway in range(gateway_count(scenario)):
        text += _tcp_bus(f"chargers-{gateway + 1}", ends.host, ends.charger_port(gateway))
    return text


def _tcp_bus(name: str, host: str, port: int) -> str:
    return (
        f'\n[[buses]]\nname = "{name}"\ntype = "tcp"\nhost = "{host}"\nport = {port}\n'
        "timeout_s = 0.5\n"
    )


def _device(device_id: str, kind: str, profile: str, bus: str, unit: int, poll_s: float) -> str:
    return (
        f'\n[[devices]]\nid = "{device_id}"\nkind = "{kind}"\nprofile = "{profile}"\n'
        f'bus = "{bus}"\nunit_id = {unit}\npoll_interval_s = {poll_s:g}\n'
    )


def _meter(cycle_s: float) -> str:
    return _device("grid-meter", "meter", "eastron-sdm630", "meter", 1, cycle_s)


def _inverters(scenario: Scenario, cycle_s: float) -> str:
    return "".join(
        _device(f"pv-{n:02d}", "inverter", "sunspec-inverter", "pv", n, cycle_s)
        for n in range(1, inverter_count(scenario) + 1)
    )


def _battery(scenario: Scenario, cycle_s: float) -> str:
    if scenario.battery is None:
        return ""
    return _device("battery", "battery", "sunspec-battery", "battery", 1, cycle_s)


def _chargers(scenario: Scenario, cycle_s: float) -> str:
    text = ""
    for charger, connector, gateway, unit in connector_slots(scenario):
        device = connector_device(charger, connector)
        text += _device(
            device, "charger", "generic-charger", f"chargers-{gateway + 1}", unit, cycle_s
        )
        max_kw = next(c.max_kw for c in charger.connectors if c.id == connector)
        text += _registers(charger, max_kw)
    for charger in scenario.chargers:
        text += _charger_section(charger)
    return text


def _limit_signal(scenario: Scenario, cycle_s: float) -> str:
    if not has_limit_signal(scenario):
        return ""
    device = _device(
        LIMIT_SIGNAL, "signal", "generic-limit-signal", "chargers-1", LIMIT_SIGNAL_UNIT, cycle_s
    )
    registers = f'import_limit = {{ address = {LIMIT_SIGNAL_REGISTER}, type = "u32" }}\n'
    return device + "[devices.registers]\n" + registers


def _registers(charger: ChargerSpec, max_kw: float) -> str:
    """The facade's map (hil/site/facades.py), as a technician pastes it for each connector."""
    common = (
        '[devices.registers]\ncharging_state = { address = 100, type = "enum16" }\n'
        'power = { address = 101, type = "s32", scale = 10.0 }\n'
        'energy_import = { address = 103, type = "u32" }\n'
        'max_power = { address = 107, type = "u16", scale = 100.0 }\n'
    )
    if charger.kind == "dc":
        return common + (
            'power_setpoint = { address = 108, type = "u16", scale = 100.0 }\n'
            f'power_limit = {{ address = 200, type = "u16", scale = 100.0, min = 0, '
            f"max = {max_kw * 1000:g}, renew_s = 60 }}\n"
        )
    return common + (
        'current_setpoint = { address = 109, type = "u16", scale = 0.1 }\n'
        f'current_limit = {{ address = 202, type = "u16", scale = 0.1, min = 0, '
        f"max = {charger.max_a:g}, renew_s = 60 }}\n"
    )


def _charger_section(charger: ChargerSpec) -> str:
    text = (
        f'\n[[chargers]]\nid = "{charger.id.lower()}"\nkind = "{charger.kind}"\n'
        f"max_kw = {charger.max_kw}\nphases = {charger.phases}\n"
    )
    if charger.phase is not None:
        text += f'phase = "{charger.phase}"\n'
    if charger.kind == "ac":
        text += f"min_a = {charger.min_a}\nmax_a = {charger.max_a}\n"
    connectors = ", ".join(
        f'{{ id = {c.id}, device = "{connector_device(charger, c.id)}", max_kw = {c.max_kw} }}'
        for c in charger.connectors
    )
    return text + f"connectors = [{connectors}]\n"


def _control(
    scenario: Scenario, strategy: str, cycle_s: float, state_file: Path | None = None
) -> str:
    margin = round(scenario.site.grid_limit_kw * 0.01, 3)
    floor = round(scenario.site.grid_limit_kw * 0.0025, 3)  # a meter's accuracy class
    reserve = scenario.site.base_load_kw.peak
    return (
        f'\n[control]\ncycle_s = {cycle_s:g}\nstrategy = "{strategy}"\n'
        f"safety_margin_kw = {margin}\nmargin_floor_kw = {floor}\n"
        f"static_reserve_kw = {reserve}\n"
        + ("" if state_file is None else f'state_file = "{state_file}"\n')
    )


def _battery_limits(scenario: Scenario) -> str:
    battery = scenario.battery
    if battery is None:
        return ""
    return (
        f"\n[battery]\nmax_charge_kw = {battery.max_charge_kw}\n"
        f"max_discharge_kw = {battery.max_discharge_kw}\n"
        f"soc_min = {battery.soc_min}\nsoc_max = {battery.soc_max}\n"
        f"capacity_kwh = {battery.capacity_kwh}\n"
        f"charge_efficiency = {battery.charge_efficiency}\n"
        f"discharge_efficiency = {battery.discharge_efficiency}\n"
    )


def _tariff(scenario: Scenario) -> str:
    offset = scenario.start.utcoffset() or timedelta(0)
    hours = offset.total_seconds() / 3600
    # IANA's Etc/GMT zones count the other way: UTC+8 is Etc/GMT-8.
    zone = "UTC" if hours == 0 else f"Etc/GMT{-int(hours):+d}"
    periods = ",\n".join(
        f'  {{ name = "{p.name}", start = "{_hhmm(p.start_min)}", end = "{_hhmm(p.end_min)}", '
        f"price = {p.price} }}"
        for p in scenario.tariff.periods
    )
    return (
        f'\n[tariff]\ncurrency = "{scenario.tariff.currency}"\ntimezone = "{zone}"\n'
        f"export_price = {scenario.tariff.export_price}\nperiods = [\n{periods},\n]\n"
    )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
