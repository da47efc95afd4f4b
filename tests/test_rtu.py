"""Modbus RTU over a real tty pair: the same meter and profile as on TCP, paced frames."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agent.app import Agent
from agent.config_loader import load_config
from agent.drivers.rtu_pacing import PacedReader, character_bits, inter_frame_gap_s
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from hil.pty import PtyPair
from tests.sites import METER_VALUES, WriteSite


def test_gap_is_three_and_a_half_characters_up_to_19200_baud() -> None:
    assert character_bits(8, "N", 1) == 10
    assert character_bits(8, "E", 1) == 11
    assert inter_frame_gap_s(9600, 11) == pytest.approx(0.0040104, rel=1e-4)
    assert inter_frame_gap_s(19200, 10) == pytest.approx(0.0018229, rel=1e-4)
    assert inter_frame_gap_s(38400, 11) == 0.00175
    assert inter_frame_gap_s(115200, 10) == 0.00175


class InstantReader:
    """Answers at once and records when each request was sent."""

    def __init__(self) -> None:
        self.sent: list[float] = []

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        self.sent.append(time.monotonic())
        return None

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return await self.read_input_registers(address, count=count, device_id=device_id)

    async def write_registers(self, address: int, values: list[int], *, device_id: int) -> Any:
        return await self.read_input_registers(address, count=len(values), device_id=device_id)


async def test_requests_keep_the_gap_between_frames() -> None:
    inner = InstantReader()
    paced = PacedReader(inner, gap_s=0.02)
    for _ in range(4):
        await paced.read_input_registers(0, count=2, device_id=1)
    await paced.write_registers(0, [1, 2], device_id=1)  # writes are paced too
    gaps = [b - a for a, b in zip(inner.sent, inner.sent[1:], strict=False)]
    assert len(gaps) == 4
    assert min(gaps) >= 0.02


SERIAL_SITE = """
[site]
name = "test-site"
grid_import_limit_kw = 63
grid_meter = "grid-meter"

[[buses]]
name = "rs485"
type = "serial"
port = "{port}"
baudrate = 19200
parity = "N"
timeout_s = 0.5

[[devices]]
id = "grid-meter"
kind = "meter"
profile = "eastron-sdm630"
bus = "rs485"
unit_id = 7
poll_interval_s = 0.2

[prometheus]
enabled = false
"""


async def test_sdm630_over_rtu_on_a_pty(tmp_path: Path, write_site: WriteSite) -> None:
    with PtyPair(tmp_path) as line:
        meter = SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic, unit_id=7)
        await meter.start_serial(str(line.device_end), baudrate=19200)
        agent = Agent(load_config(write_site(SERIAL_SITE.format(port=line.agent_end))))
        running = asyncio.create_task(agent.run())
        try:
            deadline = time.monotonic() + 10
            while agent.state.snapshot().value("grid-meter", "energy_export") is None:
                assert time.monotonic() < deadline, agent.state.snapshot().health
                await asyncio.sleep(0.05)
            snapshot = agent.state.snapshot()
        finally:
            agent.stop()
            await running
            await meter.stop()

    assert snapshot.value("grid-meter", "voltage_l1") == 231.25
    assert snapshot.value("grid-meter", "current_l3") == 64.125
    assert snapshot.value("grid-meter", "power_l2") == -1250.5
    assert snapshot.value("grid-meter", "energy_export") == 789.25 * 1000
    assert snapshot.health["grid-meter"].up
