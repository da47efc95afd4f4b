"""The slice over real sockets: simulated SDM630 -> driver -> SiteState -> /metrics."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.app import Agent
from agent.config_loader import load_config
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from tests.sites import METER_VALUES, WriteSite, site_toml

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def grid(name: str, phase: str | None = None) -> tuple[str, frozenset[tuple[str, str]]]:
    labels = {"site": "test-site"} | ({"phase": phase} if phase else {})
    return name, frozenset(labels.items())


def device(name: str, **extra: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(({"site": "test-site", "device": "grid-meter"} | extra).items())


async def wait_for(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def polls(agent: Agent) -> int:
    health = agent.state.snapshot().health.get("grid-meter")
    return 0 if health is None else health.polls_total


def f32(value: float) -> float:
    """The value as the meter's float32 register pair carries it."""
    import struct

    return float(struct.unpack(">f", struct.pack(">f", value))[0])


async def test_metrics_equal_what_the_meter_holds(
    fixed_meter: tuple[SimulatedSdm630, FixedMeter, int],
    write_site: WriteSite,
) -> None:
    _, _, port = fixed_meter
    agent = Agent(load_config(write_site(site_toml(meter_port=port))))
    running = asyncio.create_task(agent.run())
    try:
        # Two polls recorded by the agent (the meter counting two reads is not enough: the
        # second reply may still be on its way into SiteState).
        await wait_for(lambda: polls(agent) >= 2 and agent.metrics_port is not None)
        assert agent.metrics_port is not None
        samples = await asyncio.to_thread(scrape, agent.metrics_port)
    finally:
        agent.stop()
        await running

    values = METER_VALUES
    assert samples[grid("edge_agent_grid_power_watts")] == f32(values.total_power)
    for index, phase in enumerate(("L1", "L2", "L3")):
        assert samples[grid("edge_agent_grid_phase_voltage_volts", phase)] == f32(
            values.voltage[index]
        )
        assert samples[grid("edge_agent_grid_phase_current_amperes", phase)] == f32(
            values.current[index]
        )
        assert samples[grid("edge_agent_grid_phase_power_watts", phase)] == f32(values.power[index])
    assert samples[grid("edge_agent_grid_frequency_hertz")] == f32(values.frequency)
    # kWh in the meter, joules at /metrics.
    assert samples[grid("edge_agent_grid_import_energy_joules_total")] == pytest.approx(
        f32(values.import_kwh) * 3_600_000
    )
    assert samples[grid("edge_agent_grid_export_energy_joules_total")] == pytest.approx(
        f32(values.export_kwh) * 3_600_000
    )
    assert samples[device("edge_agent_device_up")] == 1.0
    assert samples[device("edge_agent_device_polls_total")] >= 2
    # The whole SDM630 map (0x0000-0x004B) is one planned read per poll.
    assert (
        samples[device("edge_agent_modbus_requests_total")]
        == samples[device("edge_agent_device_polls_total")]
    )
    assert samples[device("edge_agent_device_poll_duration_seconds_count")] >= 2
    assert samples[grid("edge_agent_grid_import_limit_watts")] == 1_200_000
    # One SDM630 polled at the cycle rate: one request per cycle, give or take a slot.
    per_cycle = samples[
        ("edge_agent_bus_requests_per_cycle", frozenset({("site", "test-site"), ("bus", "lan")}))
    ]
    assert 0 <= per_cycle <= 2
    restarts = (
        "edge_agent_part_restarts_total",
        frozenset({("site", "test-site"), ("part", "bus:lan")}),
    )
    assert samples[restarts] == 0


async def test_dead_meter_is_down_and_its_values_vanish(
    write_site: WriteSite,
) -> None:
    meter = SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic)
    port = await meter.start()
    agent = Agent(load_config(write_site(site_toml(meter_port=port))))
    running = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: agent.state.snapshot().value("grid-meter", "power") is not None)
        await meter.stop()
        await wait_for(lambda: not agent.state.snapshot().health["grid-meter"].up)
        assert agent.metrics_port is not None
        samples = await asyncio.to_thread(scrape, agent.metrics_port)
    finally:
        agent.stop()
        await running

    assert samples[device("edge_agent_device_up")] == 0.0
    errors = {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "edge_agent_device_read_errors_total"
    }
    assert set(errors) <= {"connection", "timeout"}
    assert sum(errors.values()) >= 1
    # Unknown is never exported as a value, least of all as zero.
    assert grid("edge_agent_grid_power_watts") not in samples
    assert agent.state.snapshot().value("grid-meter", "power") is None
