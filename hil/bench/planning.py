"""Requests per control cycle for the reference station, from the plans the drivers make.

Planning is read off the real `ModbusDevice`: before each poll its `plan_for_this_poll()` is
noted, then the poll is run against a reader that times out at once, which moves the device to
its next poll without decoding anything (so no field is dropped as "not implemented"). The
SunSpec battery has no plan before discovery, so it is first bound against a simulated battery
over loopback. `confirm_chargers` then counts what a real bus worker sends on a socket.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from agent.config import Device, DeviceKind, TcpBus
from agent.config_loader import load_config
from agent.control.loop import CycleLoop
from agent.drivers.bus_worker import BusWorker
from agent.drivers.factory import build_device
from agent.drivers.modbus_device import SLOW_EVERY, ModbusDevice
from agent.drivers.profile import FieldRole
from agent.drivers.registers import ReadBlock
from agent.state import SiteState, Snapshot
from hil.bench.simproc import SimProcess
from hil.devices.dc_charger import SITE_REGISTERS
from hil.devices.sunspec import SimulatedSunSpecBattery

TCP = TcpBus(type="tcp", name="lan", host="127.0.0.1", port=502, timeout_s=1.0)
POLL_INTERVAL_S = 1.0

# (device type, profile, kind, how many on the reference station)
REFERENCE_STATION: tuple[tuple[str, str, DeviceKind, int], ...] = (
    ("grid meter", "eastron-sdm630", DeviceKind.METER, 1),
    ("PV inverter", "huawei-sun2000", DeviceKind.INVERTER, 11),
    ("battery inverter", "sunspec-battery", DeviceKind.BATTERY, 1),
    ("charger connector", "generic-charger", DeviceKind.CHARGER, 182),
)
ASSUMPTIONS = (
    "PV: 1.1 MWp as 11 Huawei SUN2000-100KTL of 100 kW each (DC/AC ratio 1.0)",
    "battery: 2 MWh / 1 MW as one SunSpec battery inverter (models 1, 103, 124, 802)",
    "chargers: 91 dual-connector cabinets = 182 generic-charger devices (one per connector,"
    " unit id per connector), mapped with hil.devices.dc_charger.SITE_REGISTERS",
    f"all devices on Modbus TCP, polled every {POLL_INTERVAL_S:g} s; control cycle 1 s",
    f"slow fields every {SLOW_EVERY}th poll: avg/10 = 9 fast polls + 1 slow poll",
    "fields count the scale-factor registers values need; unplanned = 1 request per field",
)


class _Silent:
    """A reader whose every request times out at once: it advances a device's poll count."""

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        raise TimeoutError

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        raise TimeoutError


@dataclass(frozen=True, slots=True)
class DevicePlan:
    type: str
    profile: str
    count: int
    fields_first: int
    fields_fast: int
    fields_slow: int
    helpers_fast: int  # of fields_fast: scale-factor registers
    requests_first: int  # with planning; the battery's includes SunSpec discovery
    requests_fast: int
    requests_slow: int
    registers_fast: int  # registers the fast poll's requests carry
    blocks_fast: list[tuple[int, int]]  # (address, count) of each fast request

    @property
    def requests_avg(self) -> float:
        return ((SLOW_EVERY - 1) * self.requests_fast + self.requests_slow) / SLOW_EVERY

    @property
    def fields_avg(self) -> float:
        return ((SLOW_EVERY - 1) * self.fields_fast + self.fields_slow) / SLOW_EVERY


def charger_registers() -> dict[str, Any]:
    """The [devices.registers] table of the DC charger, parsed as a site file would be."""
    registers: dict[str, Any] = tomllib.loads(SITE_REGISTERS)["devices"]["registers"]
    return registers


def device_config(profile: str, kind: DeviceKind, unit: int, interval_s: float) -> Device:
    registers = charger_registers() if profile == "generic-charger" else {}
    return Device.model_validate({
        "id": f"{profile}-{unit}", "kind": kind, "profile": profile, "bus": "lan",
        "unit_id": unit, "poll_interval_s": interval_s, "registers": registers,
    })  # fmt: skip


def _fields(plan: list[ReadBlock]) -> int:
    return sum(len(block.fields) for block in plan)


async def _bound_battery() -> tuple[ModbusDevice, int]:
    """The battery driver after SunSpec discovery against a simulated 1 MW battery."""
    battery = SimulatedSunSpecBattery(
        time.monotonic, capacity_wh=2_000_000.0, max_power_w=1_000_000.0
    )
    port = await battery.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
    try:
        await client.connect()
        device = build_device(
            device_config("sunspec-battery", DeviceKind.BATTERY, 1, 1.0), TCP, time.monotonic
        )
        assert isinstance(device, ModbusDevice)
        link: Any = client  # the bus worker hands devices its pymodbus client the same way
        first = await device.poll(link)
        if first.error is not None:
            raise RuntimeError(f"battery binding failed: {first.error}")
        return device, first.requests
    finally:
        client.close()
        await battery.stop()


async def plan_device(name: str, profile: str, kind: DeviceKind, count: int) -> DevicePlan:
    """Plans for polls 1..SLOW_EVERY of one device of this type, as ModbusDevice makes them."""
    if profile == "sunspec-battery":
        device, first_requests = await _bound_battery()  # poll 0: discovery + first plan
    else:
        built = build_device(device_config(profile, kind, 1, 1.0), TCP, time.monotonic)
        assert isinstance(built, ModbusDevice)
        device, first_requests = built, len(built.plan_for_this_poll())
        await device.poll(_Silent())
    plans: list[list[ReadBlock]] = []
    for _ in range(SLOW_EVERY):
        plans.append(device.plan_for_this_poll())
        await device.poll(_Silent())
    fast, slow = plans[0], plans[-1]
    return DevicePlan(
        type=name, profile=profile, count=count,
        fields_first=len(device.profile.fields),  # the first poll reads every field
        fields_fast=_fields(fast), fields_slow=_fields(slow),
        helpers_fast=sum(1 for b in fast for f in b.fields if f.role is FieldRole.HELPER),
        requests_first=first_requests,
        requests_fast=len(fast), requests_slow=len(slow),
        registers_fast=sum(b.count for b in fast),
        blocks_fast=[(b.address, b.count) for b in fast],
    )  # fmt: skip


async def plan_reference_station() -> dict[str, Any]:
    """Per device type and for the whole site: fields and requests per 1 s cycle."""
    plans = [await plan_device(*entry) for entry in REFERENCE_STATION]
    site = {
        "devices": sum(p.count for p in plans),
        "fields_per_cycle_fast": sum(p.count * p.fields_fast for p in plans),
        "fields_per_cycle_avg": sum(p.count * p.fields_avg for p in plans),
        "requests_per_cycle_fast": sum(p.count * p.requests_fast for p in plans),
        "requests_per_cycle_avg": sum(p.count * p.requests_avg for p in plans),
    }
    devices = [
        asdict(p) | {"requests_avg": p.requests_avg, "fields_avg": p.fields_avg} for p in plans
    ]
    return {"assumptions": list(ASSUMPTIONS), "poll_interval_s": POLL_INTERVAL_S,
            "devices": devices, "site": site}  # fmt: skip


SITE_HEAD = """
[site]
name = "bench"
grid_import_limit_kw = 1200

[[buses]]
name = "chargers"
type = "tcp"
host = "127.0.0.1"
port = {port}
timeout_s = 1.0

[control]
cycle_s = 1.0
"""
CONNECTOR = """
[[devices]]
id = "dc-{unit:03d}"
kind = "charger"
profile = "generic-charger"
bus = "chargers"
unit_id = {unit}
poll_interval_s = 1.0
{registers}"""


async def confirm_chargers(connectors: int, seconds: float) -> dict[str, Any]:
    """A real worker and cycle loop against simulated chargers behind one TCP gateway."""
    with SimProcess("charger", connectors, "--tcp") as sim, tempfile.TemporaryDirectory() as tmp:
        site = SITE_HEAD.format(port=sim.port) + "".join(
            CONNECTOR.format(unit=unit, registers=SITE_REGISTERS)
            for unit in range(1, connectors + 1)
        )
        path = Path(tmp) / "site.toml"
        path.write_text(site, encoding="utf-8")
        config = load_config(path)
        bus = config.buses[0]
        assert isinstance(bus, TcpBus)
        state = SiteState(time.monotonic)
        worker = BusWorker(bus, [build_device(d, bus, time.monotonic) for d in config.devices],
                           state)  # fmt: skip
        per_cycle: list[int] = []

        def seen(snapshot: Snapshot) -> None:
            per_cycle.append(snapshot.requests_last_cycle.get(bus.name, 0))

        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(
            CycleLoop(config, state, on_cycle=seen).run()
        )]  # fmt: skip
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    health = state.snapshot().health.values()
    steady = per_cycle[2:]  # the first cycles count from nothing, then the first (full) polls
    return {
        "connectors": connectors,
        "seconds": seconds,
        "cycles": len(steady),
        "requests_last_cycle": steady,
        "requests_per_cycle_mean": sum(steady) / len(steady) if steady else 0.0,
        "requests_per_poll": sum(h.requests_total for h in health)
        / max(sum(h.polls_total for h in health), 1),
        "errors": sum(sum(h.errors_total.values()) for h in health),
    }
