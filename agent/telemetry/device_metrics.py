"""Metrics for inverters, batteries and chargers, named from the quantity registry.

`edge_agent_<kind>_<quantity>_<base unit>{site, device}`: inverter power in watts, battery
state of charge as a ratio, energy counters in joules. Meters keep their own names (grid_* and
meter_*, in `prometheus.py`). Only good values are exported; stale ones are left out.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.config import AgentConfig, DeviceKind
from agent.quantities import QUANTITIES
from agent.state import Quality, Snapshot

# quantity unit -> (metric suffix, factor to the base unit)
_BASE_UNITS: dict[str, tuple[str, float]] = {
    "W": ("_watts", 1.0),
    "V": ("_volts", 1.0),
    "A": ("_amperes", 1.0),
    "Hz": ("_hertz", 1.0),
    "Wh": ("_joules", 3600.0),
    "%": ("_ratio", 0.01),
    "°C": ("_celsius", 1.0),
    "s": ("_seconds", 1.0),
    "": ("", 1.0),
    "1": ("", 1.0),
}


def metric_name(kind: DeviceKind, quantity: str) -> str:
    base = QUANTITIES[quantity].unit
    suffix, _ = _BASE_UNITS[base]
    return f"edge_agent_{kind.value}_{quantity.removesuffix('_pct')}{suffix}"


def device_quantities(config: AgentConfig, snap: Snapshot) -> Iterator[Metric]:
    """One family per (kind, quantity) with a series per device."""
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
    site = config.site.name
    for device in config.devices:
        if device.kind is DeviceKind.METER:
            continue
        for quantity, value in sorted(snap.device_values(device.id).items()):
            if value.quality is not Quality.GOOD:
                continue
            definition = QUANTITIES[quantity]
            name = metric_name(device.kind, quantity)
            family = families.get(name)
            if family is None:
                kind = CounterMetricFamily if definition.cumulative else GaugeMetricFamily
                family = kind(name, definition.description, labels=["site", "device"])
                families[name] = family
            factor = _BASE_UNITS[definition.unit][1]
            family.add_metric([site, device.id], value.reading.value * factor)
    yield from families.values()


def device_extras(config: AgentConfig, snap: Snapshot) -> Iterator[Metric]:
    """Device identity, setpoint writes and the bus load per control cycle."""
    site = config.site.name
    info = GaugeMetricFamily(
        "edge_agent_device_info",
        "What the device says it is (serial number, firmware), read once",
        labels=["site", "device", "profile", "serial_number", "firmware"],
    )
    writes = CounterMetricFamily(
        "edge_agent_setpoint_writes",
        "Setpoint writes by result: ok, timeout, exception, readback_mismatch, ...",
        labels=["site", "device", "result"],
    )
    profiles = {d.id: d.profile for d in config.devices}
    for device, health in sorted(snap.health.items()):
        serial = health.info.get("serial_number", "")
        firmware = health.info.get("firmware_version", "")
        info.add_metric([site, device, profiles.get(device, ""), serial, firmware], 1)
        for result, count in sorted(health.writes_total.items()):
            writes.add_metric([site, device, result], count)
    per_cycle = GaugeMetricFamily(
        "edge_agent_bus_requests_per_cycle",
        "Requests sent on the bus during the last control cycle",
        labels=["site", "bus"],
    )
    for bus, count in sorted(snap.requests_last_cycle.items()):
        per_cycle.add_metric([site, bus], count)
    yield from (info, writes, per_cycle)
