"""The simulated Alfen NG9xx against its vendor document, then through the agent's own driver.

Raw reads decode the document's addresses by hand (big-endian float32/float64), with values
chosen so that a swapped word, a shifted address or a wrong unit id gives a different number:
231.25 V is 0x43674000 and reads about 2.0 with its words swapped.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from agent.config import Device
from agent.drivers.modbus_device import ModbusDevice
from agent.drivers.profile import load_profile
from agent.drivers.setpoints import SetpointError, check_setpoint, write_setpoint
from agent.state import utc_now
from hil.devices.alfen import Car, SimulatedAlfen


class Clock:
    """Monotonic seconds that only move when the test moves them."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Station:
    sim: SimulatedAlfen
    clock: Clock
    client: AsyncModbusTcpClient

    @property
    def link(self) -> Any:
        """The client as the bus worker hands it to devices and setpoint writes."""
        return self.client


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    clock = Clock()
    sim = SimulatedAlfen(clock, sockets=2)
    left, right = sim.sockets
    left.car = Car(connected=True, wants_a=13.5, phases=3)
    right.car = Car(connected=True, wants_a=10.25, phases=1)
    right.voltage = (227.5, 228.75, 226.125)
    right.energy_wh = [88_001.5, 0.0, 0.0]
    port = await sim.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    try:
        yield Station(sim, clock, client)
    finally:
        client.close()
        await sim.stop()


def f32(words: list[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", *words))[0])


def f64(words: list[int]) -> float:
    return float(struct.unpack(">d", struct.pack(">HHHH", *words))[0])


def as_f32(value: float) -> float:
    """The value as a float32 register pair carries it."""
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


def f32_words(value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", value)))


async def holding(station: Station, address: int, count: int, unit: int) -> list[int]:
    reply = await station.client.read_holding_registers(address, count=count, device_id=unit)
    assert not reply.isError(), reply
    return list(reply.registers)


async def test_socket_meter_registers_decode_to_the_simulated_values(station: Station) -> None:
    for unit in (1, 2):
        await station.client.write_registers(1210, f32_words(16.0), device_id=unit)
    for unit in (1, 2):
        socket = station.sim.socket(unit)
        limit = station.sim.station_max_a
        regs = await holding(station, 300, 125, unit)

        def at(address: int, words: int, regs: list[int] = regs) -> list[int]:
            return regs[address - 300 : address - 300 + words]

        assert [f32(at(306 + 2 * n, 2)) for n in range(3)] == list(socket.voltage)
        currents = socket.currents(limit)
        assert [f32(at(320 + 2 * n, 2)) for n in range(3)] == [as_f32(a) for a in currents]
        powers = socket.powers(limit)
        assert [f32(at(338 + 2 * n, 2)) for n in range(3)] == [as_f32(p) for p in powers]
        assert f32(at(344, 2)) == as_f32(sum(powers))
        assert f32(at(336, 2)) == as_f32(socket.frequency)
        assert f32(at(334, 2)) == socket.power_factor
        assert f64(at(374, 4)) == sum(socket.energy_wh)
        assert f64(at(362, 4)) == socket.energy_wh[0]

    # Under a 16 A limit socket 1 charges on three phases at what its car wants, socket 2 on one.
    assert station.sim.socket(1).currents(32.0) == (13.5, 13.5, 13.5)
    assert station.sim.socket(2).currents(32.0) == (10.25, 0.0, 0.0)


async def test_status_registers_show_state_setpoint_and_phases(station: Station) -> None:
    regs = await holding(station, 1200, 16, 1)
    assert regs[0] == 1  # 1200 availability: operative
    state = b"".join(w.to_bytes(2, "big") for w in regs[1:6])
    assert state == b"C2" + b"\0" * 8  # 1201-1205 mode 3 state, zero-terminated
    assert f32(regs[6:8]) == 6.0  # 1206 applied max current: the safe current until we write
    assert regs[8:10] == [0, 0]  # 1208 remaining valid time
    assert f32(regs[12:14]) == 6.0  # 1212 safe current
    assert regs[14] == 0  # 1214 setpoint accounted for: no
    assert regs[15] == 3  # 1215 phases


async def test_station_registers_answer_on_unit_200(station: Station) -> None:
    regs = await holding(station, 100, 79, 200)
    text = b"".join(w.to_bytes(2, "big") for w in regs[17:22]).rstrip(b"\0")
    assert text == b"Alfen NV"  # 117-121 manufacturer
    assert regs[22] == 1  # 122 Modbus table version
    regs = await holding(station, 1100, 6, 200)
    assert f32(regs[0:2]) == 32.0  # 1100 station active max current
    assert regs[5] == 2  # 1105 number of sockets


async def test_max_current_expires_after_the_validity_time(station: Station) -> None:
    sim, clock, client = station.sim, station.clock, station.client
    reply = await client.write_registers(1210, f32_words(10.5), device_id=1)
    assert not reply.isError(), reply
    regs = await holding(station, 1206, 10, 1)
    assert f32(regs[0:2]) == 10.5  # applied
    assert regs[2:4] == [0, 60]  # remaining valid time restarts at the validity time
    assert f32(regs[4:6]) == 10.5  # 1210 reads back what we wrote
    assert regs[8] == 1  # accounted for
    assert sim.socket(1).draw_a(32.0) == 10.5
    assert sim.socket(2).applied_current_a(32.0) == 6.0  # the other socket is untouched

    energy_before = sum(sim.socket(1).energy_wh)
    clock.now += 10
    regs = await holding(station, 1206, 10, 1)
    assert regs[2:4] == [0, 50]  # the document's example: written 10 s ago of 60 -> 50

    clock.now += 80  # 50 s more at 10.5 A, then 30 s at the 6 A safe current
    regs = await holding(station, 1206, 10, 1)
    assert f32(regs[0:2]) == 6.0
    assert regs[2:4] == [0, 0]
    assert regs[8] == 0
    watts_per_amp = sum(v * sim.socket(1).power_factor for v in sim.socket(1).voltage)
    expected = watts_per_amp * (10.5 * 60 + 6.0 * 30) / 3600
    assert sum(sim.socket(1).energy_wh) - energy_before == pytest.approx(expected)


async def test_writes_the_station_would_refuse_answer_an_exception(station: Station) -> None:
    client = station.client
    cases = [
        (1210, f32_words(40.0), 1, 3),  # above the station's maximum
        (1210, f32_words(-1.0), 1, 3),
        (1210, f32_words(float("nan")), 2, 3),
        (1210, f32_words(10.0)[:1], 1, 2),  # half a float32
        (1211, [0], 1, 2),
        (1215, [2], 1, 3),  # only 1 or 3 phases
        (1206, f32_words(10.0), 1, 2),  # read-only
        (1100, f32_words(10.0), 200, 2),
    ]
    for address, words, unit, code in cases:
        reply = await client.write_registers(address, words, device_id=unit)
        assert reply.isError(), (address, words)
        assert reply.exception_code == code, (address, words)
    assert station.sim.writes == []
    reply = await client.read_input_registers(1200, count=2, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 1  # only functions 3, 6 and 16


async def test_the_agent_driver_decodes_every_quantity(station: Station) -> None:
    profile = load_profile("alfen-ng9xx")
    sim = station.sim
    await station.client.write_registers(1210, f32_words(12.0), device_id=2)
    for unit in (1, 2):
        config = Device(id=f"alfen-{unit}", kind="charger", profile="alfen-ng9xx", bus="lan",
                        unit_id=unit)  # fmt: skip
        device = ModbusDevice(config, profile, station.clock, utc_now)
        result = await device.poll(station.link)
        assert result.error is None, result
        got = {reading.quantity: reading.value for reading in result.readings}
        socket = sim.socket(unit)
        limit = sim.station_max_a
        currents, powers = socket.currents(limit), socket.powers(limit)
        expected = {
            "voltage_l1": socket.voltage[0],
            "voltage_l2": socket.voltage[1],
            "voltage_l3": socket.voltage[2],
            "current_l1": as_f32(currents[0]),
            "current_l2": as_f32(currents[1]),
            "current_l3": as_f32(currents[2]),
            "power_l1": as_f32(powers[0]),
            "power_l2": as_f32(powers[1]),
            "power_l3": as_f32(powers[2]),
            "power": as_f32(sum(powers)),
            "power_factor": as_f32(socket.power_factor),
            "frequency": as_f32(socket.frequency),
            "energy_import": sum(socket.energy_wh),
            "operating_state": 1.0,
            "charging_state": float(0x4332),  # "C2"
            "current_setpoint": socket.applied_current_a(limit),
            "setpoint_validity": float(socket.remaining_valid_s(station.clock(), 60.0)),
            "phases": float(socket.phases_setting),
        }
        assert got == expected
        assert profile.field("charging_state").labels[int(got["charging_state"])] == "C2"
        accounted = "1" if unit == 2 else "0"
        assert result.info == {"safe_current_a": "6", "setpoint_accounted_for": accounted}
    assert sim.socket(2).applied_current_a(32.0) == 12.0
    assert got["setpoint_validity"] == 60.0


async def test_the_agent_writes_its_setpoints_within_the_profile_range(station: Station) -> None:
    profile = load_profile("alfen-ng9xx")
    with pytest.raises(SetpointError):
        check_setpoint(profile, "current_limit", 32.5)
    limit = check_setpoint(profile, "current_limit", 11.0)
    outcome = await write_setpoint(station.link, 1, limit, 11.0, {})
    assert outcome.ok, outcome
    phases = check_setpoint(profile, "phases", 1)
    outcome = await write_setpoint(station.link, 1, phases, 1, {})
    assert outcome.ok, outcome
    socket = station.sim.socket(1)
    assert socket.setpoint_a == 11.0
    assert socket.phases_setting == 1
    assert socket.currents(32.0) == (11.0, 0.0, 0.0)
    # 2 phases passes the profile's range but not the station: the write fails, reported.
    outcome = await write_setpoint(station.link, 1, phases, 2, {})
    assert not outcome.ok
    assert outcome.reason == "exception"
    assert profile.setpoint("current_limit").renew_s == station.sim.validity_s
