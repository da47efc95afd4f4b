"""SunSpec devices through the agent's own driver: discovery, binding, decoding and writes.

The simulators build their register images with pysunspec2's own model classes; the agent
places points with its own layout code. The values are chosen with scale factors that are not
zero (W_SF 1, A_SF -2, V_SF -1), so a profile or binder that ignored or misplaced a scale
factor would decode visibly wrong numbers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from agent.config import Device, DeviceKind, SerialBus, TcpBus
from agent.drivers.bus_worker import BusWorker
from agent.drivers.factory import build_device
from agent.drivers.modbus_device import ModbusDevice, PollResult
from agent.drivers.setpoints import SetpointError
from agent.state import SiteState
from hil.devices.sdm630 import FixedMeter
from hil.devices.sunspec import (
    FixedPv,
    SimulatedSunSpecBattery,
    SimulatedSunSpecInverter,
    SimulatedSunSpecMeter,
)
from hil.pty import PtyPair
from tests.sites import METER_VALUES

TCP = TcpBus(type="tcp", name="lan", host="127.0.0.1", port=502, timeout_s=0.5)


def config(kind: DeviceKind, profile: str, unit_id: int = 1) -> Device:
    return Device(id="dev", kind=kind, profile=profile, bus="lan", unit_id=unit_id)


def driver(kind: DeviceKind, profile: str, bus: TcpBus | SerialBus = TCP) -> ModbusDevice:
    device = build_device(config(kind, profile), bus, time.monotonic)
    assert isinstance(device, ModbusDevice)
    return device


def values(result: PollResult) -> dict[str, float]:
    return {r.quantity: r.value for r in result.readings}


async def tcp_client(port: int) -> Any:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
    assert await client.connect()
    return client


@pytest.mark.parametrize("base", [40000, 0, 50000])
async def test_meter_is_found_at_every_base_and_decoded_with_scale_factors(base: int) -> None:
    meter = SimulatedSunSpecMeter(FixedMeter(METER_VALUES), time.monotonic, base=base)
    port = await meter.start()
    client = await tcp_client(port)
    try:
        device = driver(DeviceKind.METER, "sunspec-meter")
        result = await device.poll(client)
    finally:
        client.close()
        await meter.stop()
    assert result.error is None
    got = values(result)
    # W_SF = 1: the meter carries tens of watts; A_SF = -2 and V_SF = -1.
    assert got["power"] == pytest.approx(round(METER_VALUES.total_power, -1))
    assert got["power_l1"] == pytest.approx(22_500.0)
    assert got["power_l2"] == pytest.approx(-1_250.0)
    assert got["current_l1"] == pytest.approx(101.5)
    assert got["current_l3"] == pytest.approx(64.125, abs=0.006)
    assert got["voltage_l1"] == pytest.approx(231.2, abs=0.051)
    assert got["frequency"] == pytest.approx(49.98)
    assert got["power_factor"] == pytest.approx(0.965, abs=0.0006)
    assert got["energy_import"] == pytest.approx(123_456_500.0, rel=1e-6)
    assert result.info["manufacturer"]
    # Discovery and all reads together, and the next poll is the planned reads only.
    first_requests = result.requests
    assert first_requests >= 4


async def test_inverter_values_labels_and_curtailment_write() -> None:
    inverter = SimulatedSunSpecInverter(FixedPv(7_350.0), time.monotonic, rated_w=10_000)
    port = await inverter.start()
    bus = TcpBus(type="tcp", name="lan", host="127.0.0.1", port=port, timeout_s=0.5)
    state = SiteState(time.monotonic)
    device = driver(DeviceKind.INVERTER, "sunspec-inverter", bus)
    worker = BusWorker(bus, [device], state)
    running = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: state.snapshot().value("dev", "power") is not None)
        snap = state.snapshot()
        assert snap.value("dev", "power") == pytest.approx(7_350.0, abs=10)
        assert snap.value("dev", "rated_power") == pytest.approx(10_000.0)
        assert snap.value("dev", "mppt1_power") is not None
        state_code = snap.value("dev", "operating_state")
        assert state_code is not None
        assert device.profile.field("operating_state").labels[int(state_code)] == "MPPT"
        with pytest.raises(SetpointError, match=r"outside 0\.\.100"):
            worker.submit_write("dev", "power_limit_pct", 120.0)
        assert inverter.limit_pct == 100.0  # nothing reached the device
        worker.submit_write("dev", "power_limit_pct", 40.0)
        await wait_until(lambda: state.snapshot().health["dev"].writes_total.get("ok", 0) == 1)
        assert inverter.limit_enabled
        assert inverter.limit_pct == pytest.approx(40.0)
        await wait_until(lambda: inverter.ac_power_w <= 4_000.0 + 1)
        await wait_until(lambda: (state.snapshot().value("dev", "power") or 1e9) <= 4_010.0)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await inverter.stop()


async def test_battery_over_rtu_with_its_sign_convention(tmp_path: Path) -> None:
    battery = SimulatedSunSpecBattery(time.monotonic, unit_id=3, soc_pct=61.5)
    battery.demand_w = 2_000.0  # charging on its own
    with PtyPair(tmp_path) as pty:
        await battery.start_serial(str(pty.device_end), baudrate=38400)
        bus = SerialBus(
            type="serial", name="rs485", port=str(pty.agent_end), baudrate=38400, timeout_s=0.5
        )
        client = AsyncModbusSerialClient(str(pty.agent_end), baudrate=38400, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            device = build_device(
                config(DeviceKind.BATTERY, "sunspec-battery", unit_id=3), bus, time.monotonic
            )
            result = await device.poll(client)
        finally:
            client.close()
            await battery.stop()
    got = values(result)
    assert result.error is None
    assert got["soc"] == pytest.approx(61.5, abs=0.11)
    assert got["battery_power"] > 0  # charging is positive in the agent
    assert got["battery_current"] > 0
    assert got["capacity"] == pytest.approx(10_000.0, abs=10)


async def test_a_device_without_sunspec_is_reported_not_crashed() -> None:
    from hil.devices.sdm630 import SimulatedSdm630

    meter = SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic)
    port = await meter.start()
    client = await tcp_client(port)
    try:
        result = await driver(DeviceKind.METER, "sunspec-meter").poll(client)
    finally:
        client.close()
        await meter.stop()
    assert result.error == "not_sunspec"
    assert "power" in result.failed
    assert result.readings == []


async def wait_until(condition: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_failed_write_is_counted_and_retried_next_cycle() -> None:
    from hil.devices.faults import Fault

    inverter = SimulatedSunSpecInverter(FixedPv(5_000.0), time.monotonic, rated_w=10_000)
    port = await inverter.start()
    bus = TcpBus(type="tcp", name="lan", host="127.0.0.1", port=port, timeout_s=0.5)
    state = SiteState(time.monotonic)
    worker = BusWorker(bus, [driver(DeviceKind.INVERTER, "sunspec-inverter", bus)], state)
    running = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: state.snapshot().value("dev", "power") is not None)
        inverter.faults.set(Fault.EXCEPTION)
        worker.submit_write("dev", "power_limit_pct", 30.0)
        await wait_until(
            lambda: state.snapshot().health["dev"].writes_total.get("exception", 0) >= 1
        )
        assert inverter.limit_pct == 100.0
        inverter.faults.clear()
        # Retried at the next cycle (1 s) without anyone submitting it again.
        await wait_until(lambda: state.snapshot().health["dev"].writes_total.get("ok", 0) == 1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await inverter.stop()
    assert inverter.limit_pct == pytest.approx(30.0)
