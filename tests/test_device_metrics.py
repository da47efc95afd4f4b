"""A mixed site through the daemon: SunSpec inverter and template-mapped DC charger at /metrics.

The site file is what a technician writes: an inverter found by SunSpec discovery, a DC
charger whose registers are given in `[devices.registers]`. Values travel from the simulated
devices over loopback TCP, through the drivers and SiteState, to Prometheus names in base
units.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.app import Agent
from agent.config_loader import load_config
from hil.devices.dc_charger import SITE_REGISTERS, SimulatedDcCharger
from hil.devices.sunspec import FixedPv, SimulatedSunSpecInverter
from tests.sites import WriteSite
from tests.test_meter_slice import scrape, wait_for

SITE = """
[site]
name = "test-site"
grid_import_limit_kw = 1200

[[buses]]
name = "pv"
type = "tcp"
host = "127.0.0.1"
port = {pv_port}
timeout_s = 0.5

[[buses]]
name = "chargers"
type = "tcp"
host = "127.0.0.1"
port = {charger_port}
timeout_s = 0.5

[[devices]]
id = "pv-1"
kind = "inverter"
profile = "sunspec-inverter"
bus = "pv"
unit_id = 1
poll_interval_s = 0.2

[[devices]]
id = "dc-01-1"
kind = "charger"
profile = "generic-charger"
bus = "chargers"
unit_id = 1
poll_interval_s = 0.2
{registers}

[control]
cycle_s = 0.2

[prometheus]
bind = "127.0.0.1"
port = 0
"""


def series(name: str, device: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({("site", "test-site"), ("device", device)})


async def test_inverter_and_charger_values_reach_metrics_in_base_units(
    write_site: WriteSite,
) -> None:
    inverter = SimulatedSunSpecInverter(FixedPv(6_420.0), time.monotonic, rated_w=10_000)
    charger = SimulatedDcCharger(time.monotonic)
    charger.plug_in(1, wants_w=42_300.0)
    pv_port = await inverter.start()
    charger_port = await charger.start()
    site = SITE.format(pv_port=pv_port, charger_port=charger_port, registers=SITE_REGISTERS)
    agent = Agent(load_config(write_site(site)))
    running = asyncio.create_task(agent.run())
    try:
        await wait_for(
            lambda: (
                agent.state.snapshot().value("pv-1", "power") is not None
                and agent.state.snapshot().value("dc-01-1", "power") is not None
            )
        )
        assert agent.metrics_port is not None
        samples = await asyncio.to_thread(scrape, agent.metrics_port)
    finally:
        agent.stop()
        await running
        await inverter.stop()
        await charger.stop()

    assert samples[series("edge_agent_inverter_power_watts", "pv-1")] == pytest.approx(
        6_420.0, abs=10
    )
    assert samples[series("edge_agent_inverter_rated_power_watts", "pv-1")] == 10_000.0
    assert samples[series("edge_agent_inverter_power_limit_ratio", "pv-1")] == 1.0
    # The charger runs at its safe power (10 kW) until the agent writes a limit.
    assert samples[series("edge_agent_charger_power_watts", "dc-01-1")] == pytest.approx(10_000)
    assert samples[series("edge_agent_charger_energy_import_joules_total", "dc-01-1")] >= 0
    info = {
        dict(labels)["device"]: dict(labels)
        for (name, labels), _ in samples.items()
        if name == "edge_agent_device_info"
    }
    assert info["pv-1"]["profile"] == "sunspec-inverter"
    assert info["pv-1"]["serial_number"]
    requests = samples[
        ("edge_agent_bus_requests_per_cycle", frozenset({("site", "test-site"), ("bus", "pv")}))
    ]
    assert requests >= 0
