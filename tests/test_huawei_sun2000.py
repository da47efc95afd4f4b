"""The simulated SUN2000 against Huawei's register map, then through the agent's own driver.

The raw tests decode with struct at the document's addresses, independent of the agent's
decoder and profile. Values are chosen so that a wrong gain, word order or address shows:
78.8 kW AC is 0x0001_33D0 in W, which read with its words swapped is 0x33D0_0001.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from agent.config import Device
from agent.drivers.modbus_device import ModbusDevice
from agent.drivers.profile import load_profile
from agent.drivers.setpoints import check_setpoint, write_setpoint
from agent.state import utc_now
from hil.devices.faults import Fault
from hil.devices.huawei_sun2000 import DayCurve, FixedPv, SimulatedSun2000
from hil.pty import PtyPair

OFFERED_W = 80_000.0  # DC from the array; 98.5 % of it is 78.8 kW AC, under the 100 kW rating


class FakeClock:
    def __init__(self, now: float = 5_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    inverter: SimulatedSun2000
    pv: FixedPv
    clock: FakeClock
    client: AsyncModbusTcpClient


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    pv, clock = FixedPv(OFFERED_W), FakeClock()
    inverter = SimulatedSun2000(pv, clock, unit_id=1)
    port = await inverter.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    await client.connect()
    try:
        yield Rig(inverter, pv, clock, client)
    finally:
        client.close()
        await inverter.stop()


async def read(client: AsyncModbusTcpClient, address: int, count: int) -> list[int]:
    response = await client.read_holding_registers(address, count=count, device_id=1)
    assert not response.isError(), response
    return list(response.registers)


def u32(words: list[int]) -> int:
    return int(struct.unpack(">I", struct.pack(">HH", *words))[0])


def s32(words: list[int]) -> int:
    return int(struct.unpack(">i", struct.pack(">HH", *words))[0])


def s16(word: int) -> int:
    return int(struct.unpack(">h", struct.pack(">H", word))[0])


def text(words: list[int]) -> str:
    return b"".join(struct.pack(">H", w) for w in words).rstrip(b"\0").decode("ascii")


async def test_registers_at_the_documents_addresses(rig: Rig) -> None:
    nameplate = await read(rig.client, 30000, 25)
    assert text(nameplate[:15]) == "SUN2000-100KTL-M1"
    assert text(nameplate[15:25]) == "TA2290017531"
    rated = await read(rig.client, 30071, 4)
    assert rated[:2] == [20, 10]  # PV inputs, MPP trackers
    assert u32(rated[2:4]) == 100_000  # kW x 1000

    ac = await read(rig.client, 32064, 26)  # 32064 .. 32089 in one read
    shown = rig.inverter.values
    assert shown.active_power_w == pytest.approx(OFFERED_W * 0.985)
    assert s32(ac[0:2]) == round(shown.input_power_w)
    for phase in range(3):
        assert ac[5 + phase] / 10 == pytest.approx(shown.phase_voltage[phase], abs=0.05)
        current = s32(ac[8 + 2 * phase : 10 + 2 * phase]) / 1000
        assert current == pytest.approx(shown.phase_current[phase], abs=0.0005)
    assert s32(ac[16:18]) == round(shown.active_power_w)  # 32080
    assert s16(ac[20]) / 1000 == pytest.approx(shown.power_factor)  # 32084
    assert ac[21] / 100 == pytest.approx(shown.frequency_hz)  # 32085
    assert s16(ac[23]) / 10 == pytest.approx(shown.temperature_c, abs=0.05)  # 32087
    assert ac[25] == 0x0200  # 32089 on-grid

    strings = await read(rig.client, 32016, 8)
    for n in range(4):
        assert s16(strings[2 * n]) / 10 == pytest.approx(shown.pv_voltage[n], abs=0.05)
        assert s16(strings[2 * n + 1]) / 100 == pytest.approx(shown.pv_current[n], abs=0.005)
    dc_from_strings = sum(v * i for v, i in zip(shown.pv_voltage, shown.pv_current, strict=True))
    assert dc_from_strings == pytest.approx(shown.input_power_w)

    energy = await read(rig.client, 32106, 2)
    assert u32(energy) / 100 == pytest.approx(123_456.78)


async def test_derating_caps_the_power_and_reads_back(rig: Rig) -> None:
    reply = await rig.client.write_register(40125, 375, device_id=1)  # 37.5 %
    assert not reply.isError(), reply
    assert await read(rig.client, 40125, 1) == [375]
    ac = await read(rig.client, 32080, 10)
    assert s32(ac[0:2]) == 37_500
    assert ac[9] == 0x0201  # 32089: on-grid, power limited
    assert rig.inverter.derating_pct == 37.5


@pytest.mark.parametrize("raw", [1001, 0xFFFF, 0x8000])  # 100.1 %, -0.1 %, -3276.8 %
async def test_derating_out_of_range_is_illegal_data_value(rig: Rig, raw: int) -> None:
    reply = await rig.client.write_register(40125, raw, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 3
    assert rig.inverter.derating_pct == 100.0
    assert await read(rig.client, 40125, 1) == [1000]


async def test_measurements_cannot_be_written(rig: Rig) -> None:
    reply = await rig.client.write_register(32080, 1, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 2


async def test_energy_counter_integrates_the_power_shown(rig: Rig) -> None:
    before = u32(await read(rig.client, 32106, 2))
    rig.clock.now += 1800  # half an hour at 78.8 kW
    after = u32(await read(rig.client, 32106, 2))
    assert (after - before) / 100 == pytest.approx(39.4, abs=0.01)


async def test_night_is_standby_without_power(rig: Rig) -> None:
    rig.pv.watts = 0.0
    ac = await read(rig.client, 32080, 10)
    assert s32(ac[0:2]) == 0
    assert ac[9] == 0xA000  # standby: no irradiation


async def test_fault_switch_answers_device_failure(rig: Rig) -> None:
    rig.inverter.faults.set(Fault.EXCEPTION)
    reply = await rig.client.read_holding_registers(32080, count=2, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 4


def test_day_curve_follows_the_hour() -> None:
    hour = [0.0]
    curve = DayCurve(peak_w=120_000, hour_of_day=lambda: hour[0], sunrise_h=6, sunset_h=20)
    for night in (0.0, 5.9, 20.0, 23.5):
        hour[0] = night
        assert curve() == 0.0
    hour[0] = 13.0
    assert curve() == pytest.approx(120_000)
    hour[0] = 9.0
    assert 0 < curve() < 120_000 * math.sin(math.pi * 3 / 14)


async def test_rtu_on_a_pty(tmp_path: Path) -> None:
    with PtyPair(tmp_path) as line:
        inverter = SimulatedSun2000(FixedPv(OFFERED_W), FakeClock(), unit_id=3)
        await inverter.start_serial(str(line.device_end), baudrate=19200)
        client = AsyncModbusSerialClient(str(line.agent_end), baudrate=19200, timeout=1)
        try:
            await client.connect()
            reply = await client.read_holding_registers(32080, count=2, device_id=3)
        finally:
            client.close()
            await inverter.stop()
    assert s32(list(reply.registers)) == 78_800


# --- Through the agent's driver --------------------------------------------------------


# One register step in the agent's unit, by name stem (W and codes: 1): a wrong gain is off
# by far more.
RESOLUTION = {
    "voltage": 0.1,
    "current": 0.01,  # PV inputs; phase currents are 0.001, checked at 0.01
    "power_factor": 0.001,
    "frequency": 0.01,
    "temperature": 0.1,
    "energy_produced": 10.0,
    "pct": 0.1,
}


def inverter_config(unit_id: int = 1) -> Device:
    return Device.model_validate(
        {
            "id": "pv-roof",
            "kind": "inverter",
            "profile": "huawei-sun2000",
            "bus": "lan",
            "unit_id": unit_id,
        }
    )


async def test_agent_driver_decodes_every_quantity(rig: Rig) -> None:
    rig.inverter.alarms = (0b0000_0000_1000_0000, 0b0000_0000_0000_1000, 0)  # grid loss, overtemp
    reply = await rig.client.write_register(40125, 900, device_id=1)  # 90.0 %
    assert not reply.isError()
    profile = load_profile("huawei-sun2000")
    device = ModbusDevice(inverter_config(), profile, time.monotonic, utc_now)
    link: Any = rig.client  # the bus worker hands devices its pymodbus client the same way

    result = await device.poll(link)

    assert result.error is None, result
    got = {r.quantity: r.value for r in result.readings}
    shown, plate = rig.inverter.values, rig.inverter.nameplate
    expected = {
        "rated_power": plate.rated_power_w,
        "alarms": (1 << (16 + 7)) | (1 << 3),
        "dc_power": shown.input_power_w,
        "power": shown.active_power_w,
        "power_factor": shown.power_factor,
        "frequency": shown.frequency_hz,
        "temperature": shown.temperature_c,
        "operating_state": 0x0200,  # 72 kW offered after losses is under the 90 kW cap
        "energy_produced": shown.total_yield_kwh * 1000,
        "power_limit_pct": 90.0,
    }
    for n in range(4):
        expected[f"mppt{n + 1}_voltage"] = shown.pv_voltage[n]
        expected[f"mppt{n + 1}_current"] = shown.pv_current[n]
    for index, phase in enumerate(("l1", "l2", "l3")):
        expected[f"voltage_{phase}"] = shown.phase_voltage[index]
        expected[f"current_{phase}"] = shown.phase_current[index]
    assert set(got) == set(expected)
    for quantity, value in expected.items():
        step = next((v for stem, v in RESOLUTION.items() if stem in quantity), 1.0)
        assert got[quantity] == pytest.approx(value, abs=step / 2 + 1e-9), quantity
    assert result.info["model"] == "SUN2000-100KTL-M1"
    assert result.info["serial_number"] == "TA2290017531"
    assert result.info["pv_inputs"] == "20"
    assert result.info["mpp_trackers"] == "10"


async def test_agent_setpoint_write_derates_the_inverter(rig: Rig) -> None:
    profile = load_profile("huawei-sun2000")
    setpoint = check_setpoint(profile, "power_limit_pct", 42.5)
    link: Any = rig.client
    outcome = await write_setpoint(link, 1, setpoint, 42.5, {})
    assert outcome.ok, outcome
    assert rig.inverter.derating_pct == 42.5
    assert rig.inverter.advance().active_power_w == pytest.approx(42_500)
