"""SunSpec: model layouts from the standard's definitions, discovery, and the simulators."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException

from agent.drivers.sunspec_discovery import (
    DiscoveryError,
    ModelInstance,
    SunSpecChain,
    discover,
)
from agent.drivers.sunspec_models import (
    PointNotPresentError,
    UnknownModelError,
    UnknownPointError,
    model_layout,
    resolve_point,
)
from hil.devices.faults import Fault
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from hil.devices.sunspec import (
    DayCurvePv,
    FixedPv,
    SimulatedSunSpecBattery,
    SimulatedSunSpecInverter,
    SimulatedSunSpecMeter,
    SunSpecSimulator,
)
from hil.pty import PtyPair
from tests.sites import METER_VALUES

# Model lengths L from the SunSpec model definitions (160 with two modules: 8 + 2 x 20).
METER_CHAIN = ((1, 66), (203, 105))
INVERTER_CHAIN = ((1, 66), (103, 50), (120, 26), (123, 24), (160, 48))
BATTERY_CHAIN = ((1, 66), (103, 50), (124, 24), (802, 62))


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- layouts -----------------------------------------------------------------------------


def test_model_103_points_sit_where_the_definition_puts_them() -> None:
    layout = model_layout(103)
    # Model 103: ID, L, A, AphA..C, A_SF, PPVphAB..CA, PhVphA..C, V_SF, then W at offset 14.
    w = layout.resolve("W", 50)
    assert (w.offset, w.size, w.type, w.sf, w.units) == (14, 1, "int16", "W_SF", "W")
    assert layout.resolve("W_SF", 50).offset == 15
    wh = layout.resolve("WH", 50)
    assert (wh.offset, wh.size, wh.type) == (24, 2, "acc32")
    assert layout.resolve("St", 50).symbols is not None
    assert layout.resolve("St", 50).symbols == {
        1: "OFF",
        2: "SLEEPING",
        3: "STARTING",
        4: "MPPT",
        5: "THROTTLED",
        6: "SHUTTING_DOWN",
        7: "FAULT",
        8: "STANDBY",
    }
    assert layout.fixed_length == 52
    assert layout.group is None


def test_model_123_controls_are_writable_with_their_scale_factor() -> None:
    limit = resolve_point(123, "WMaxLimPct", 24)
    assert (limit.offset, limit.access, limit.sf) == (5, "RW", "WMaxLimPct_SF")
    assert resolve_point(123, "WMaxLimPct_SF", 24).offset == 23


def test_model_160_repeating_group_resolves_per_module() -> None:
    layout = model_layout(160)
    assert layout.fixed_length == 10
    assert layout.group is not None
    assert layout.group.length == 20
    assert layout.repeats(48) == 2
    # Fixed part 10 registers, module 1 at 10..29, module 2 at 30; DCW is 11 into a module.
    dcw = layout.resolve("module[2].DCW", 48)
    assert (dcw.offset, dcw.type) == (41, "uint16")
    assert dcw.sf == "DCW_SF"  # named in the group, found in the fixed part
    assert layout.resolve(dcw.sf, 48).offset == 4
    assert layout.resolve("module[1].DCWH", 48).offset == 22


def test_a_path_beyond_the_repeats_is_an_error_naming_it() -> None:
    with pytest.raises(PointNotPresentError) as error:
        resolve_point(160, "module[3].DCW", 48)
    assert (error.value.model_id, error.value.point) == (160, "module[3].DCW")
    with pytest.raises(PointNotPresentError):
        resolve_point(160, "module[0].DCW", 48)  # indices start at 1


def test_unknown_models_and_points_are_typed_errors() -> None:
    with pytest.raises(UnknownModelError) as model_error:
        model_layout(9999)
    assert model_error.value.model_id == 9999
    with pytest.raises(UnknownPointError) as point_error:
        resolve_point(103, "Watts", 50)
    assert (point_error.value.model_id, point_error.value.point) == (103, "Watts")
    with pytest.raises(UnknownPointError):
        resolve_point(160, "string[1].DCW", 48)


def test_a_short_legacy_model_lacks_its_last_points() -> None:
    assert resolve_point(1, "DA", 65).offset == 66
    with pytest.raises(PointNotPresentError):
        resolve_point(1, "Pad", 65)  # early devices ship model 1 with L = 65


def test_chain_prefers_the_first_listed_model_present() -> None:
    chain = SunSpecChain(40000, (ModelInstance(1, 40002, 66), ModelInstance(101, 40070, 50)))
    assert chain.model_ids == (1, 101)
    assert chain.find([103, 102, 101]) == ModelInstance(101, 40070, 50)
    assert chain.find([203]) is None


def test_day_curve_is_dark_at_night_and_peaks_at_noon() -> None:
    pv = DayCurvePv(peak_w=8_000)
    assert pv(3 * 3600) == 0.0
    assert pv(20 * 3600) == 0.0
    assert pv(12 * 3600) == pytest.approx(8_000)
    assert 0 < pv(8 * 3600) < pv(11 * 3600)
    assert DayCurvePv(peak_w=8_000, day_offset_s=-6 * 3600)(18 * 3600) == pytest.approx(8_000)


# --- discovery over the wire -------------------------------------------------------------


async def _client(port: int, timeout_s: float = 1.0) -> Any:
    """A connected pymodbus client (typed Any: its methods return Awaitable, not coroutines)."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=timeout_s, retries=0)
    await client.connect()
    return client


def _expected(device: SunSpecSimulator, chain: Sequence[tuple[int, int]]) -> list[ModelInstance]:
    models, address = [], device.base + 2
    for model_id, length in chain:
        models.append(ModelInstance(model_id, address, length))
        address += 2 + length
    return models


@pytest.mark.parametrize("base", [40000, 0, 50000])
async def test_discovery_finds_the_marker_and_the_models_at_each_base(base: int) -> None:
    clock = FakeClock()
    devices: list[tuple[SunSpecSimulator, tuple[tuple[int, int], ...]]] = [
        (SimulatedSunSpecMeter(FixedMeter(METER_VALUES), clock, base=base), METER_CHAIN),
        (SimulatedSunSpecInverter(FixedPv(6_000), clock, base=base), INVERTER_CHAIN),
        (SimulatedSunSpecBattery(clock, base=base), BATTERY_CHAIN),
    ]
    for device, served in devices:
        port = await device.start()
        client = await _client(port)
        try:
            chain = await discover(client, device.unit_id)
        finally:
            client.close()
            await device.stop()
        assert chain.base == base
        assert list(chain.models) == _expected(device, served)
        assert chain.model_ids == tuple(model_id for model_id, _ in served)


async def test_a_device_without_sunspec_is_not_sunspec() -> None:
    meter = SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic)
    port = await meter.start()
    client = await _client(port)
    try:
        with pytest.raises(DiscoveryError) as error:
            await discover(client, meter.unit_id)
    finally:
        client.close()
        await meter.stop()
    assert error.value.reason == "not_sunspec"


async def test_a_silent_device_times_out() -> None:
    meter = SimulatedSunSpecMeter(FixedMeter(METER_VALUES), FakeClock())
    port = await meter.start()
    meter.faults.set(Fault.SILENT)
    client = await _client(port, timeout_s=0.3)
    try:
        with pytest.raises(DiscoveryError) as error:
            await discover(client, meter.unit_id)
    finally:
        client.close()
        await meter.stop()
    assert error.value.reason == "timeout"


class ScriptedReader:
    """Answers holding reads from a dict of register values; anything else is an exception."""

    def __init__(self, registers: dict[int, int], raise_at: int | None = None) -> None:
        self.registers = registers
        self.raise_at = raise_at
        self.reads = 0

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        self.reads += 1
        if address == self.raise_at:
            raise ConnectionException("peer closed")
        values = [self.registers.get(address + i) for i in range(count)]
        return _Reply([v for v in values if v is not None], None in values)

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return _Reply([], True)


class _Reply:
    def __init__(self, registers: list[int], error: bool) -> None:
        self.registers = registers
        self._error = error

    def isError(self) -> bool:  # pymodbus' name
        return self._error


def _marker_at(base: int) -> dict[int, int]:
    return {base: 0x5375, base + 1: 0x6E53}


async def test_a_chain_that_never_ends_is_garbage() -> None:
    registers = _marker_at(0)
    for n in range(200):  # 200 empty models, no end marker
        registers |= {2 + 2 * n: 1, 3 + 2 * n: 0}
    reader = ScriptedReader(registers)
    with pytest.raises(DiscoveryError) as error:
        await discover(reader, 1)
    assert error.value.reason == "garbage"
    assert reader.reads <= 2 + 101


async def test_a_chain_running_past_the_address_space_is_garbage() -> None:
    registers = _marker_at(50000) | {50002: 1, 50003: 20000}
    with pytest.raises(DiscoveryError) as error:
        await discover(ScriptedReader(registers), 1)
    assert error.value.reason == "garbage"


async def test_an_exception_inside_the_chain_and_a_lost_connection() -> None:
    registers = _marker_at(40000) | {40002: 1, 40003: 66}  # nothing where model 2 should be
    with pytest.raises(DiscoveryError) as error:
        await discover(ScriptedReader(registers), 1)
    assert error.value.reason == "exception"
    with pytest.raises(DiscoveryError) as lost:
        await discover(ScriptedReader(registers, raise_at=40002), 1)
    assert lost.value.reason == "connection"


async def test_discovery_over_rtu_on_a_pty(tmp_path: Path) -> None:
    with PtyPair(tmp_path) as line:
        inverter = SimulatedSunSpecInverter(FixedPv(4_000), FakeClock(), unit_id=3, base=0)
        await inverter.start_serial(str(line.device_end), baudrate=19200)
        client: Any = AsyncModbusSerialClient(
            str(line.agent_end), baudrate=19200, timeout=1.0, retries=0
        )
        await client.connect()
        try:
            chain = await discover(client, 3)
        finally:
            client.close()
            await inverter.stop()
    assert chain.base == 0
    assert list(chain.models) == _expected(inverter, INVERTER_CHAIN)


# --- the simulators' values --------------------------------------------------------------


InverterRig = tuple[SimulatedSunSpecInverter, FakeClock, Any, SunSpecChain]


@pytest.fixture
async def inverter() -> AsyncIterator[InverterRig]:
    clock = FakeClock()
    device = SimulatedSunSpecInverter(FixedPv(6_000), clock, rated_w=10_000)
    port = await device.start()
    client = await _client(port)
    try:
        yield device, clock, client, await discover(client, device.unit_id)
    finally:
        client.close()
        await device.stop()


async def _read_point(client: Any, chain: SunSpecChain, model_id: int, path: str) -> float:
    """One point, decoded with the agent's layout: raw x 10^sf (16-bit points only)."""
    model = chain.find([model_id])
    assert model is not None
    point = resolve_point(model_id, path, model.length)
    raw = await _read_signed(client, model.start + point.offset, point.type)
    if isinstance(point.sf, str):
        sf_point = resolve_point(model_id, point.sf, model.length)
        return raw * 10.0 ** await _read_signed(client, model.start + sf_point.offset, "sunssf")
    return float(raw)


async def _read_signed(client: Any, address: int, kind: str) -> int:
    response = await client.read_holding_registers(address, count=1, device_id=1)
    assert not response.isError()
    value = int(response.registers[0])
    return value - 0x10000 if kind in ("int16", "sunssf") and value >= 0x8000 else value


async def _write_point(client: Any, chain: SunSpecChain, model_id: int, path: str, raw: int) -> Any:
    model = chain.find([model_id])
    assert model is not None
    point = resolve_point(model_id, path, model.length)
    return await client.write_register(model.start + point.offset, raw & 0xFFFF, device_id=1)


async def test_the_meter_needs_its_scale_factors() -> None:
    meter = SimulatedSunSpecMeter(FixedMeter(METER_VALUES), FakeClock())
    port = await meter.start()
    client = await _client(port)
    try:
        chain = await discover(client, 1)
        power = await _read_point(client, chain, 203, "W")
        current = await _read_point(client, chain, 203, "AphA")
        raw_power = await _read_signed(client, chain.models[1].start + 18, "int16")
        imported = await _read_point(client, chain, 203, "W_SF")
    finally:
        client.close()
        await meter.stop()
    assert power == pytest.approx(METER_VALUES.total_power, abs=5)
    assert current == pytest.approx(101.5)
    assert raw_power == pytest.approx(METER_VALUES.total_power / 10, abs=1)  # W_SF = 1
    assert imported == 1


async def test_inverter_limit_applies_and_reverts_after_its_revert_time(
    inverter: InverterRig,
) -> None:
    device, clock, client, chain = inverter
    assert await _read_point(client, chain, 103, "W") == 6_000
    assert await _read_point(client, chain, 120, "WRtg") == 10_000
    assert not (await _write_point(client, chain, 123, "WMaxLimPct_RvrtTms", 10)).isError()
    assert not (await _write_point(client, chain, 123, "WMaxLimPct", 4_000)).isError()  # 40 %
    assert not (await _write_point(client, chain, 123, "WMaxLim_Ena", 1)).isError()
    clock.now += 5
    assert await _read_point(client, chain, 123, "WMaxLimPct") == pytest.approx(40)
    assert await _read_point(client, chain, 103, "W") == 4_000
    assert device.limit_pct == pytest.approx(40)
    dc = await _read_point(client, chain, 160, "module[1].DCW")
    dc += await _read_point(client, chain, 160, "module[2].DCW")
    assert 4_000 < dc < 4_300
    clock.now += 6  # 11 s after the last write, past the 10 s revert time
    assert await _read_point(client, chain, 123, "WMaxLimPct") == pytest.approx(100)
    assert await _read_point(client, chain, 103, "W") == 6_000


async def test_inverter_refuses_a_limit_above_100_percent(
    inverter: InverterRig,
) -> None:
    device, _clock, client, chain = inverter
    response = await _write_point(client, chain, 123, "WMaxLimPct", 15_000)  # 150 %
    assert response.isError()
    assert response.exception_code == 3
    refused = await _write_point(client, chain, 103, "W", 1)  # a measurement
    assert refused.isError()
    assert refused.exception_code == 2
    assert device.limit_pct == 100


async def test_inverter_produces_nothing_at_night() -> None:
    clock = FakeClock(now=2 * 3600)
    inverter = SimulatedSunSpecInverter(DayCurvePv(peak_w=8_000), clock)
    assert inverter.ac_power_w == 0
    clock.now = 12 * 3600
    inverter.update()
    assert inverter.ac_power_w == pytest.approx(8_000)
    assert inverter.dc_power_w > inverter.ac_power_w


async def test_battery_soc_rises_while_it_is_made_to_charge() -> None:
    clock = FakeClock()
    battery = SimulatedSunSpecBattery(clock, capacity_wh=10_000, max_power_w=5_000, soc_pct=50)
    port = await battery.start()
    client = await _client(port)
    try:
        chain = await discover(client, 1)
        start = await _read_point(client, chain, 124, "ChaState")
        # Charge at 50 % of WChaMax: cap charging at +50 %, and discharging at -50 % (a floor).
        assert not (await _write_point(client, chain, 124, "InWRte", 5_000)).isError()
        assert not (await _write_point(client, chain, 124, "OutWRte", -5_000)).isError()
        assert not (await _write_point(client, chain, 124, "StorCtl_Mod", 3)).isError()
        clock.now += 720  # 12 minutes at 2.5 kW AC
        soc = await _read_point(client, chain, 124, "ChaState")
        battery_w = await _read_point(client, chain, 802, "W")
        refused = await _write_point(client, chain, 124, "InWRte", 12_000)  # 120 %
    finally:
        client.close()
        await battery.stop()
    assert start == pytest.approx(50)
    assert battery.power_w == pytest.approx(2_500)
    assert soc == pytest.approx(50 + 500 * 0.97 / 10_000 * 100, abs=0.1)
    assert battery_w < 0  # model 802: + = discharging
    assert refused.isError()
    assert refused.exception_code == 3


def test_battery_stops_at_its_reserve() -> None:
    clock = FakeClock()
    battery = SimulatedSunSpecBattery(clock, capacity_wh=1_000, max_power_w=5_000, soc_pct=12)
    battery.demand_w = -5_000
    battery.update()
    clock.now += 3600
    battery.update()
    assert battery.soc_pct == pytest.approx(battery.min_reserve_pct)
    assert battery.power_w == 0
