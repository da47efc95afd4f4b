"""The simulated DC charger over Modbus, then through the agent's `generic-charger` template.

The raw tests decode at the charger's own addresses (the table in hil/devices/dc_charger.py)
with struct, independent of the agent. A fake clock drives the setpoint watchdog. The agent
part loads a site file with the charger's SITE_REGISTERS pasted in, as a technician would, and
builds the drivers as the agent does.
"""

from __future__ import annotations

import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from agent.config_loader import load_config
from agent.drivers.factory import build_device
from agent.drivers.modbus_device import ModbusDevice
from agent.drivers.setpoints import SetpointError, check_setpoint, write_setpoint
from hil.devices.dc_charger import SITE_REGISTERS, ConnectorState, SimulatedDcCharger
from hil.devices.faults import Fault
from tests.sites import WriteSite


class FakeClock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    charger: SimulatedDcCharger
    clock: FakeClock
    client: AsyncModbusTcpClient
    port: int


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock()
    charger = SimulatedDcCharger(clock, watchdog_s=60, safe_power_w=10_000)
    port = await charger.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    await client.connect()
    try:
        yield Rig(charger, clock, client, port)
    finally:
        client.close()
        await charger.stop()


@dataclass(frozen=True)
class Shown:
    state: int
    power_w: float
    energy_wh: int
    session_wh: int
    max_power_w: float
    limit_in_force_w: float
    limit_written_w: float
    watchdog_s: int


async def read(rig: Rig, unit: int) -> Shown:
    """Decode registers 100-108 and 200-201 of one connector."""
    main = await rig.client.read_holding_registers(100, count=9, device_id=unit)
    setpoint = await rig.client.read_holding_registers(200, count=2, device_id=unit)
    assert not main.isError(), main
    assert not setpoint.isError(), setpoint
    r = list(main.registers)
    return Shown(
        state=r[0],
        power_w=struct.unpack(">i", struct.pack(">HH", r[1], r[2]))[0] * 10.0,
        energy_wh=struct.unpack(">I", struct.pack(">HH", r[3], r[4]))[0],
        session_wh=struct.unpack(">I", struct.pack(">HH", r[5], r[6]))[0],
        max_power_w=r[7] * 100.0,
        limit_in_force_w=r[8] * 100.0,
        limit_written_w=setpoint.registers[0] * 100.0,
        watchdog_s=setpoint.registers[1],
    )


async def set_limit(rig: Rig, unit: int, watts: float) -> None:
    reply = await rig.client.write_register(200, round(watts / 100), device_id=unit)
    assert not reply.isError(), reply


async def test_registers_decode_to_the_connectors_values(rig: Rig) -> None:
    rig.charger.plug_in(1, wants_w=47_350)
    await set_limit(rig, 1, 60_000)
    rig.clock.now += 45  # 45 s at 47.35 kW, inside the 60 s watchdog

    one, two = await read(rig, 1), await read(rig, 2)

    connector = rig.charger.connectors[1]
    assert one.state == ConnectorState.CHARGING
    assert one.power_w == 47_350 == connector.power_w
    assert one.session_wh == round(47_350 * 45 / 3600) == round(connector.session_wh)
    assert one.energy_wh == round(connector.energy_wh)
    assert one.energy_wh > 0xFFFF  # both words of the counter carry something
    assert one.max_power_w == 120_000
    assert one.limit_in_force_w == one.limit_written_w == 60_000
    assert one.watchdog_s == 60
    assert two.state == ConnectorState.AVAILABLE
    assert two.power_w == 0
    assert two.energy_wh == round(rig.charger.connectors[2].energy_wh) != one.energy_wh


async def test_limit_above_the_connectors_maximum_is_illegal_data_value(rig: Rig) -> None:
    reply = await rig.client.write_register(200, 1201, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 3
    assert rig.charger.connectors[1].limit_w is None


async def test_measurements_cannot_be_written(rig: Rig) -> None:
    reply = await rig.client.write_register(101, 0, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 2


async def test_until_the_first_write_the_connector_runs_at_safe_power(rig: Rig) -> None:
    rig.charger.plug_in(2, wants_w=150_000)
    shown = await read(rig, 2)
    assert shown.power_w == 10_000
    assert shown.limit_in_force_w == 10_000


async def test_watchdog_falls_back_to_safe_power(rig: Rig) -> None:
    rig.charger.plug_in(1, wants_w=100_000)
    await set_limit(rig, 1, 80_000)
    rig.clock.now += 59
    assert (await read(rig, 1)).power_w == 80_000

    rig.clock.now += 2  # the limit was written 61 s ago and lapsed at 60 s
    lapsed = await read(rig, 1)
    assert lapsed.power_w == 10_000
    assert lapsed.limit_in_force_w == 10_000
    assert lapsed.limit_written_w == 80_000  # the register still reads back the last write
    # 60 s at 80 kW, then 1 s at the safe 10 kW: the energy follows the lapse exactly.
    assert lapsed.session_wh == round(80_000 * 60 / 3600 + 10_000 * 1 / 3600)

    await set_limit(rig, 1, 80_000)  # rewriting renews it
    assert (await read(rig, 1)).power_w == 80_000


async def test_connectors_share_the_cabinets_120_kw(rig: Rig) -> None:
    for unit in (1, 2):
        rig.charger.plug_in(unit, wants_w=100_000)
        await set_limit(rig, unit, 120_000)
    assert [(await read(rig, unit)).power_w for unit in (1, 2)] == [60_000, 60_000]

    rig.charger.plug_in(2, wants_w=30_000)  # a small car takes less than half
    assert [(await read(rig, unit)).power_w for unit in (1, 2)] == [90_000, 30_000]

    await set_limit(rig, 1, 45_000)  # a limit below the share frees power for the other
    rig.charger.plug_in(2, wants_w=100_000)
    assert [(await read(rig, unit)).power_w for unit in (1, 2)] == [45_000, 75_000]

    rig.charger.unplug(2)
    one, two = await read(rig, 1), await read(rig, 2)
    assert (one.power_w, two.power_w, two.state) == (45_000, 0, ConnectorState.AVAILABLE)


async def test_session_finishes_and_faults_stop_power(rig: Rig) -> None:
    rig.charger.plug_in(1, wants_w=50_000, energy_wh=500)
    await set_limit(rig, 1, 50_000)
    rig.clock.now += 30
    assert (await read(rig, 1)).state == ConnectorState.CHARGING
    rig.clock.now += 30  # 500 Wh at 50 kW take 36 s
    done = await read(rig, 1)
    assert (done.state, done.power_w, done.session_wh) == (ConnectorState.FINISHED, 0, 500)

    rig.charger.plug_in(2, wants_w=20_000)
    rig.charger.set_faulted(2)
    faulted = await read(rig, 2)
    assert (faulted.state, faulted.power_w) == (ConnectorState.FAULTED, 0)


async def test_fault_switches_per_connector_and_cabinet(rig: Rig) -> None:
    rig.charger.connectors[2].faults.set(Fault.EXCEPTION)
    assert not (await rig.client.read_holding_registers(100, count=1, device_id=1)).isError()
    assert (await rig.client.read_holding_registers(100, count=1, device_id=2)).isError()
    rig.charger.faults.set(Fault.EXCEPTION)
    reply = await rig.client.read_holding_registers(100, count=1, device_id=1)
    assert reply.isError()
    assert reply.exception_code == 4


# --- Through the agent's generic-charger template --------------------------------------


SITE = """
[site]
name = "test-site"
grid_import_limit_kw = 200
grid_meter = "grid-meter"

[[buses]]
name = "lan"
type = "tcp"
host = "127.0.0.1"
port = 5020

[[buses]]
name = "chargers"
type = "tcp"
host = "127.0.0.1"
port = {port}

[[devices]]
id = "grid-meter"
kind = "meter"
profile = "eastron-sdm630"
bus = "lan"
{connectors}
[prometheus]
enabled = false
"""

CONNECTOR = """
[[devices]]
id = "dc-01{letter}"
kind = "charger"
profile = "generic-charger"
bus = "chargers"
unit_id = {unit}
{registers}"""


@pytest.fixture
def connectors(rig: Rig, write_site: WriteSite) -> dict[int, ModbusDevice]:
    """Both connectors as a site file declares them, SITE_REGISTERS pasted in as documented."""
    declared = "".join(
        CONNECTOR.format(letter="ab"[unit - 1], unit=unit, registers=SITE_REGISTERS)
        for unit in (1, 2)
    )
    config = load_config(write_site(SITE.format(port=rig.port, connectors=declared)))
    bus = next(b for b in config.buses if b.name == "chargers")
    devices = {}
    for declared_device in config.devices:
        if declared_device.bus == "chargers":
            device = build_device(declared_device, bus, time.monotonic)
            assert isinstance(device, ModbusDevice)
            devices[declared_device.unit_id] = device
    return devices


async def test_agent_reads_each_connector_through_the_template(
    rig: Rig, connectors: dict[int, ModbusDevice]
) -> None:
    rig.charger.plug_in(1, wants_w=100_000)
    rig.charger.plug_in(2, wants_w=100_000)
    await set_limit(rig, 1, 37_500)
    await set_limit(rig, 2, 110_000)
    rig.clock.now += 45
    link: Any = rig.client  # the bus worker hands devices its pymodbus client the same way

    for unit, power in ((1, 37_500), (2, 82_500)):
        result = await connectors[unit].poll(link)
        assert result.error is None, result
        got = {r.quantity: r.value for r in result.readings}
        connector = rig.charger.connectors[unit]
        assert connector.power_w == power
        assert got == {
            "power": power,
            "energy_import": round(connector.energy_wh),
            "charging_state": ConnectorState.CHARGING,
            "power_setpoint": rig.charger.limit_in_force(connector, rig.clock.now),
            "max_power": 120_000,
        }


async def test_agent_power_limit_is_range_checked_then_written(
    rig: Rig, connectors: dict[int, ModbusDevice]
) -> None:
    rig.charger.plug_in(1, wants_w=100_000)
    profile = connectors[1].profile
    with pytest.raises(SetpointError):
        check_setpoint(profile, "power_limit", 120_100)  # above the site file's max
    setpoint = check_setpoint(profile, "power_limit", 75_000)
    link: Any = rig.client

    outcome = await write_setpoint(link, 1, setpoint, 75_000, {})

    assert outcome.ok, outcome
    assert rig.charger.connectors[1].limit_w == 75_000
    assert (await read(rig, 1)).power_w == 75_000
