"""Wire faults between a pymodbus client and the simulated SDM630, and what the client sees.

The clients are set up as the agent's bus worker sets them up (retries and reconnects off), so
the exception each fault raises here is the one the agent has to classify. In pymodbus 3.16 a
reply that does not frame is dropped by the framer and ends as the same `ModbusIOException`
as no reply at all; only a lost connection raises `ConnectionException`.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from hil.devices.fault_proxy import (
    ProxyFault,
    RtuFault,
    RtuFaultRelay,
    TcpFaultProxy,
    TcpGarbage,
    rtu_reply_length,
)
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from hil.pty import PtyPair
from tests.sites import METER_VALUES

TIMEOUT_S = 0.3
NO_REPLY = "No response received after 0 retries"
RTU_UNIT = 7


def voltage_l1(response: Any) -> float:
    """Input registers 0-1 of an SDM630 are the L1 voltage, float32 high word first."""
    high, low = response.registers[:2]
    return float(struct.unpack(">f", struct.pack(">HH", high, low))[0])


async def read(client: Any, unit_id: int = 1, count: int = 2) -> Any:
    return await client.read_input_registers(0, count=count, device_id=unit_id)


async def assert_times_out(client: Any, unit_id: int = 1) -> None:
    started = time.monotonic()
    with pytest.raises(ModbusIOException, match=NO_REPLY):
        await read(client, unit_id)
    assert time.monotonic() - started >= TIMEOUT_S * 0.9


@pytest.fixture
async def proxy(
    fixed_meter: tuple[SimulatedSdm630, FixedMeter, int],
) -> AsyncIterator[TcpFaultProxy]:
    _, _, meter_port = fixed_meter
    proxy = TcpFaultProxy("127.0.0.1", meter_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture
async def tcp_client(proxy: TcpFaultProxy) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(
        "127.0.0.1", port=proxy.port, timeout=TIMEOUT_S, retries=0, reconnect_delay=0
    )
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def test_pass_gives_the_meters_registers(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    assert voltage_l1(await read(tcp_client)) == 231.25
    assert (proxy.passed, proxy.altered) == (1, 0)


@pytest.mark.parametrize("garbage", [TcpGarbage.NOISE, TcpGarbage.WRONG_TID])
async def test_garbage_the_framer_skips_looks_like_no_reply(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient, garbage: TcpGarbage
) -> None:
    proxy.set(ProxyFault.GARBAGE, garbage=garbage)
    await assert_times_out(tcp_client)
    assert tcp_client.connected

    proxy.clear()
    assert voltage_l1(await read(tcp_client)) == 231.25  # the same connection recovers
    assert (proxy.passed, proxy.altered) == (1, 1)


async def test_undecodable_reply_costs_the_connection(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    # pymodbus raises from inside the protocol's data_received; asyncio closes the socket and
    # the waiting request still ends by its timeout.
    proxy.set(ProxyFault.GARBAGE, garbage=TcpGarbage.UNDECODABLE)
    await assert_times_out(tcp_client)
    assert not tcp_client.connected
    with pytest.raises(ConnectionException):
        await read(tcp_client)

    proxy.clear()
    assert await tcp_client.connect()
    assert voltage_l1(await read(tcp_client)) == 231.25


async def test_truncated_reply_looks_like_no_reply(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    proxy.set(ProxyFault.TRUNCATE)
    await assert_times_out(tcp_client)

    proxy.clear()
    assert voltage_l1(await read(tcp_client)) == 231.25


async def test_short_reply_is_well_formed_with_fewer_registers(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    proxy.set(ProxyFault.SHORT)
    response = await read(tcp_client, count=4)
    assert not response.isError()
    assert len(response.registers) == 3
    assert voltage_l1(response) == 231.25


async def test_drop_times_out_and_the_connection_stays(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    proxy.set(ProxyFault.DROP)
    await assert_times_out(tcp_client)
    assert tcp_client.connected

    proxy.clear()
    assert voltage_l1(await read(tcp_client)) == 231.25


async def test_a_fault_for_one_unit_leaves_the_others_alone(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    proxy.set(ProxyFault.DROP, unit_id=2)
    assert voltage_l1(await read(tcp_client, unit_id=1)) == 231.25
    proxy.set(ProxyFault.DROP, unit_id=1)
    await assert_times_out(tcp_client, unit_id=1)
    assert (proxy.passed, proxy.altered) == (1, 1)


async def test_disconnect_closes_refuses_and_comes_back(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    proxy.set(ProxyFault.DISCONNECT)
    deadline = time.monotonic() + 1
    while tcp_client.connected:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    with pytest.raises(ConnectionException):
        await read(tcp_client)
    assert not await tcp_client.connect()  # connection refused
    assert proxy.disconnected == 1

    proxy.clear()
    assert await tcp_client.connect()
    assert voltage_l1(await read(tcp_client)) == 231.25


async def test_quick_switches_end_in_the_last_one(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    tcp_client.close()
    for fault in (ProxyFault.DISCONNECT, ProxyFault.PASS, ProxyFault.DISCONNECT):
        proxy.set(fault)
    await asyncio.sleep(0.01)
    assert not await tcp_client.connect()

    for fault in (ProxyFault.PASS, ProxyFault.DISCONNECT, ProxyFault.PASS):
        proxy.set(fault)
    assert await tcp_client.connect()
    assert voltage_l1(await read(tcp_client)) == 231.25


async def test_request_in_flight_when_the_link_drops_ends_by_timeout(
    proxy: TcpFaultProxy, tcp_client: AsyncModbusTcpClient
) -> None:
    # pymodbus does not fail a waiting request when its socket closes: it is a timeout, not a
    # ConnectionException, and only the next request finds the client disconnected.
    proxy.set(ProxyFault.DROP)
    waiting = asyncio.create_task(assert_times_out(tcp_client))
    await asyncio.sleep(0.05)
    proxy.set(ProxyFault.DISCONNECT)
    await waiting
    assert not tcp_client.connected


def test_rtu_reply_lengths() -> None:
    assert rtu_reply_length(bytes([7, 4, 4, 0, 0, 0, 0, 0xAA, 0xBB])) == 9
    assert rtu_reply_length(bytes([7, 4, 4, 0, 0])) is None
    assert rtu_reply_length(bytes([7, 0x84, 2, 0xAA, 0xBB])) == 5
    assert rtu_reply_length(bytes([7, 16, 0, 0, 0, 2, 0xAA, 0xBB])) == 8
    assert rtu_reply_length(bytes([7, 43, 14])) == 0  # not framed: passed on as it comes


@pytest.fixture
async def rtu_client(
    tmp_path: Path,
) -> AsyncIterator[tuple[RtuFaultRelay, AsyncModbusSerialClient]]:
    (tmp_path / "agent").mkdir()
    (tmp_path / "device").mkdir()
    with PtyPair(tmp_path / "agent") as agent_pair, PtyPair(tmp_path / "device") as device_pair:
        meter = SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic, unit_id=RTU_UNIT)
        await meter.start_serial(str(device_pair.device_end), baudrate=19200)
        relay = RtuFaultRelay(agent_pair.device_end, device_pair.agent_end)
        await relay.start()
        client = AsyncModbusSerialClient(
            str(agent_pair.agent_end),
            baudrate=19200,
            timeout=TIMEOUT_S,
            retries=0,
            reconnect_delay=0,
        )
        try:
            assert await client.connect()
            yield relay, client
        finally:
            client.close()
            await relay.stop()
            await meter.stop()


async def test_rtu_relay_faults(
    rtu_client: tuple[RtuFaultRelay, AsyncModbusSerialClient],
) -> None:
    relay, client = rtu_client
    assert voltage_l1(await read(client, RTU_UNIT)) == 231.25

    # A bad CRC is discarded by the framer: the same ModbusIOException as no reply.
    relay.set(RtuFault.CORRUPT_CRC)
    await assert_times_out(client, RTU_UNIT)
    relay.clear()
    assert voltage_l1(await read(client, RTU_UNIT)) == 231.25

    relay.set(RtuFault.DROP)
    await assert_times_out(client, RTU_UNIT)

    # Noise after a reply is ignored; noise before it makes pymodbus' frame hunt take the last
    # noise byte and the unit id (7, also a function code) for a frame that fails its CRC,
    # and the hunt then throws the whole buffer away, the real reply with it.
    relay.set(RtuFault.GARBAGE, noise_before=0, noise_after=4)
    assert voltage_l1(await read(client, RTU_UNIT)) == 231.25
    relay.set(RtuFault.GARBAGE, noise_before=4, noise_after=0)
    await assert_times_out(client, RTU_UNIT)

    relay.set(RtuFault.DROP, unit_id=RTU_UNIT + 1)  # another unit's fault
    assert voltage_l1(await read(client, RTU_UNIT)) == 231.25
    assert (relay.passed, relay.altered) == (3, 4)
