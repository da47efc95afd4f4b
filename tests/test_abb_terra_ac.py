"""The simulated ABB Terra AC against its vendor document (TCP and RTU), then through the driver.

Raw reads decode the document's addresses by hand: unsigned 32-bit values high word first, mA
and 0.1 V. Values are chosen so that a swapped word (16250 mA reads as 1.06e9), an address off
by one register or a wrong scale gives a different number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from agent.config import Device
from agent.drivers.modbus_device import ModbusDevice
from agent.drivers.profile import load_profile
from agent.drivers.setpoints import SetpointError, check_setpoint, write_setpoint
from agent.state import Reading, utc_now
from hil.devices.abb_terra_ac import Car, SimulatedTerraAc
from hil.pty import PtyPair


class Clock:
    """Monotonic seconds that only move when the test moves them."""

    def __init__(self) -> None:
        self.now = 7_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Wallbox:
    sim: SimulatedTerraAc
    clock: Clock
    client: AsyncModbusTcpClient


def simulated(clock: Clock, unit_id: int = 1) -> SimulatedTerraAc:
    sim = SimulatedTerraAc(clock, unit_id=unit_id)
    sim.wallbox.car = Car(connected=True, wants_a=20.5, phases=3)
    sim.wallbox.session_wh = 4_321.0
    return sim


@pytest.fixture
async def wallbox() -> AsyncIterator[Wallbox]:
    clock = Clock()
    sim = simulated(clock)
    port = await sim.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        yield Wallbox(sim, clock, client)
    finally:
        client.close()
        await sim.stop()


def u32(words: list[int]) -> int:
    return (words[0] << 16) | words[1]


def u32_words(value: int) -> list[int]:
    return [value >> 16, value & 0xFFFF]


async def read_block(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient, unit: int = 1
) -> dict[int, int]:
    """4000h-4025h by address, one register each."""
    reply = await client.read_holding_registers(0x4000, count=0x26, device_id=unit)
    assert not reply.isError(), reply
    return {0x4000 + n: word for n, word in enumerate(reply.registers)}


def dword(regs: dict[int, int], address: int) -> int:
    return u32([regs[address], regs[address + 1]])


def check_registers(regs: dict[int, int], sim: SimulatedTerraAc) -> None:
    box = sim.wallbox
    amps = box.currents()
    assert dword(regs, 0x4006) == box.rated_current_a * 1000
    assert dword(regs, 0x4008) == box.error_code()
    assert dword(regs, 0x400C) == box.state_word()
    assert dword(regs, 0x400E) == round(box.limit_a() * 1000)
    assert [dword(regs, 0x4010 + 2 * n) for n in range(3)] == [round(a * 1000) for a in amps]
    assert [dword(regs, 0x4016 + 2 * n) for n in range(3)] == [round(v * 10) for v in box.voltage]
    assert dword(regs, 0x401C) == round(box.power_w())
    assert dword(regs, 0x401E) == round(box.session_wh)
    assert regs[0x4020] == box.communication_timeout_s


async def test_registers_decode_to_the_simulated_values(wallbox: Wallbox) -> None:
    reply = await wallbox.client.write_registers(0x4100, u32_words(16_250), device_id=1)
    assert not reply.isError(), reply
    regs = await read_block(wallbox.client)
    check_registers(regs, wallbox.sim)
    assert dword(regs, 0x400E) == 16_250
    assert dword(regs, 0x4010) == 16_250  # the car wants 20.5 A, the limit is 16.25 A
    assert dword(regs, 0x4016) == 2317
    assert regs[0x400D] == 0x0400  # C2, charging at the commanded current
    assert dword(regs, 0x400A) == 0x111  # cable in the wallbox, locked, in the car


async def test_state_word_marks_charging_below_the_commanded_current(wallbox: Wallbox) -> None:
    await wallbox.client.write_registers(0x4100, u32_words(25_000), device_id=1)
    regs = await read_block(wallbox.client)
    assert regs[0x400D] == 0x8400  # C2, bit 15: the car takes less (20.5 A) than offered
    await wallbox.client.write_registers(0x4100, u32_words(5_000), device_id=1)
    regs = await read_block(wallbox.client)
    assert regs[0x400D] == 0x0300  # C1: below 6 A no PWM, the car waits
    assert dword(regs, 0x4010) == 0


async def test_refused_requests_answer_an_exception(wallbox: Wallbox) -> None:
    client = wallbox.client
    cases = [
        (0x4100, u32_words(32_001), 3),  # above the rated current
        (0x4100, [0], 2),  # half a u32
        (0x4106, [5], 3),  # communication timeout below 10 s
        (0x4105, [7], 3),  # neither start nor stop
        (0x4006, [0, 1], 2),  # read-only
    ]
    for address, words, code in cases:
        reply = await client.write_registers(address, words, device_id=1)
        assert reply.isError(), (address, words)
        assert reply.exception_code == code, (address, words)
    assert wallbox.sim.writes == []
    reply = await client.read_holding_registers(0x4100, count=2, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 2  # write-only
    reply = await client.read_input_registers(0x4006, count=2, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 1  # holding registers only


async def test_silence_past_the_timeout_drops_the_limit_to_the_fallback(wallbox: Wallbox) -> None:
    sim, clock, client = wallbox.sim, wallbox.clock, wallbox.client
    await client.write_registers(0x4109, [6], device_id=1)  # fall-back limit 6 A
    await client.write_registers(0x4100, u32_words(16_250), device_id=1)
    watts = sum(sim.wallbox.voltage)
    session_before = sim.wallbox.session_wh

    clock.now += 59  # a poll just inside the timeout keeps the bus healthy
    regs = await read_block(client)
    assert dword(regs, 0x400E) == 16_250
    assert dword(regs, 0x4008) == 0

    clock.now += 90  # silence: 60 s more at 16.25 A, then 30 s at the 6 A fall-back
    regs = await read_block(client)
    assert dword(regs, 0x400E) == 6_000
    assert dword(regs, 0x4010) == 6_000
    assert dword(regs, 0x4008) == 1 << 14  # Modbus communication lost
    expected = watts * (16.25 * 119 + 6.0 * 30) / 3600
    assert sim.wallbox.session_wh - session_before == pytest.approx(expected)

    await client.write_registers(0x4100, u32_words(10_000), device_id=1)
    regs = await read_block(client)
    assert dword(regs, 0x400E) == 10_000
    assert dword(regs, 0x4008) == 0
    check_registers(regs, sim)


async def test_a_new_car_starts_a_new_session(wallbox: Wallbox) -> None:
    sim = wallbox.sim
    total = sim.wallbox.total_wh
    sim.plug_in(Car(wants_a=10.0, phases=1))
    regs = await read_block(wallbox.client)
    assert dword(regs, 0x401E) == 0
    assert [dword(regs, 0x4010 + 2 * n) for n in range(3)] == [10_000, 0, 0]
    assert sim.wallbox.total_wh == total


async def test_rtu_on_a_pty_pair_reads_and_writes(tmp_path: Path) -> None:
    clock = Clock()
    sim = simulated(clock, unit_id=7)
    with PtyPair(tmp_path) as line:
        await sim.start_serial(str(line.device_end), baudrate=19200)
        client = AsyncModbusSerialClient(str(line.agent_end), baudrate=19200, timeout=1, retries=1)
        await client.connect()
        try:
            reply = await client.write_registers(0x4100, u32_words(12_500), device_id=7)
            assert not reply.isError(), reply
            regs = await read_block(client, unit=7)
            check_registers(regs, sim)
            assert dword(regs, 0x4010) == 12_500

            profile = load_profile("abb-terra-ac")
            config = Device(id="abb-rtu", kind="charger", profile="abb-terra-ac", bus="rs485",
                            unit_id=7)  # fmt: skip
            link: Any = client  # the bus worker hands devices its pymodbus client the same way
            result = await ModbusDevice(config, profile, clock, utc_now).poll(link)
            assert result.error is None, result
            assert expected_readings(sim) == readings(result.readings)
        finally:
            client.close()
            await sim.stop()


def expected_readings(sim: SimulatedTerraAc) -> dict[str, object]:
    box = sim.wallbox
    amps = box.currents()
    return {
        "max_current": box.rated_current_a,
        "alarms": float(box.error_code()),
        "charging_state": float(box.state_word()),
        "current_setpoint": pytest.approx(box.limit_a()),
        "current_l1": pytest.approx(amps[0]),
        "current_l2": pytest.approx(amps[1]),
        "current_l3": pytest.approx(amps[2]),
        "voltage_l1": pytest.approx(box.voltage[0]),
        "voltage_l2": pytest.approx(box.voltage[1]),
        "voltage_l3": pytest.approx(box.voltage[2]),
        "power": float(round(box.power_w())),
        "session_energy": float(round(box.session_wh)),
    }


def readings(items: Sequence[Reading]) -> dict[str, float]:
    return {reading.quantity: reading.value for reading in items}


async def test_the_agent_driver_decodes_every_quantity(wallbox: Wallbox) -> None:
    profile = load_profile("abb-terra-ac")
    config = Device(id="abb", kind="charger", profile="abb-terra-ac", bus="lan", unit_id=1)
    device = ModbusDevice(config, profile, wallbox.clock, utc_now)
    wallbox.sim.wallbox.errors = 1 << 7  # over temperature
    await wallbox.client.write_registers(0x4100, u32_words(16_250), device_id=1)
    link: Any = wallbox.client  # the bus worker hands devices its pymodbus client the same way
    result = await device.poll(link)
    assert result.error is None, result
    got = readings(result.readings)
    assert got == expected_readings(wallbox.sim)
    assert got["current_l1"] == 16.25
    assert profile.field("charging_state").labels[int(got["charging_state"])] == "C2"
    assert profile.field("alarms").labels[7] == "over temperature"
    assert got["alarms"] == 128
    assert result.info == {"socket_lock_state": "273", "communication_timeout_s": "60"}


async def test_the_agent_writes_the_current_limit_in_milliamps(wallbox: Wallbox) -> None:
    profile = load_profile("abb-terra-ac")
    with pytest.raises(SetpointError):
        check_setpoint(profile, "current_limit", 33.0)
    setpoint = check_setpoint(profile, "current_limit", 13.375)
    link: Any = wallbox.client
    outcome = await write_setpoint(link, 1, setpoint, 13.375, {})
    assert outcome.ok, outcome
    assert wallbox.sim.writes == [(0x4100, [0, 13_375])]
    assert wallbox.sim.wallbox.limit_a() == 13.375
    assert setpoint.renew_s == wallbox.sim.wallbox.communication_timeout_s
