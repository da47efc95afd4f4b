"""Pylontech BMS: the codec against hand-made frames, then packs over a real tty pair.

The literal frames follow "RS485-protocol-pylon-low-voltage" V3.3; their LENGTH fields are
worked out by hand in the comments, their CHKSUM by `framed` below, which is written from the
document's wording and shares nothing with the agent's codec.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.app import Agent
from agent.config import Device, SerialBus
from agent.config_loader import ConfigError, load_config
from agent.drivers.modbus_device import PollResult
from agent.drivers.pylontech import Command, FrameError, ReturnCode, decode_response, encode_request
from agent.drivers.pylontech_bms import PylontechBms
from agent.drivers.pylontech_info import (
    Alarm,
    ChargeStatus,
    parse_alarm_info,
    parse_analog_values,
    parse_charge_management,
    parse_manufacturer_info,
)
from agent.drivers.pylontech_link import PylontechLink, take_frame
from agent.state import utc_now
from hil.devices.pylontech import PackFault, PackReport, SimulatedPack, SimulatedPylontech
from hil.pty import PtyPair
from tests.sites import WriteSite


def framed(body: str) -> bytes:
    """'~' + body + CHKSUM + CR; CHKSUM = -(sum of the body's ASCII codes) mod 65536."""
    total = sum(ord(char) for char in body)
    return f"~{body}{(65536 - total % 65536) % 65536:04X}\r".encode("ascii")


def test_a_request_frame_is_the_documented_one() -> None:
    # '2','0','0','2','4','6','4','2','E','0','0','2','0','2' add up to 0x02CD;
    # 0x10000 - 0x02CD = 0xFD33. LENGTH E002: LENID 2, nibbles 0+0+2 = 2, -2 mod 16 = E.
    assert encode_request(2, Command.GET_ANALOG_VALUES) == b"~20024642E00202FD33\r"
    assert framed("20024642E00202") == b"~20024642E00202FD33\r"


# VER 20, ADR 02, CID1 46, RTN 00. INFO is 55 bytes = 110 = 0x06E characters;
# LCHKSUM: 0 + 6 + E = 20, 20 mod 16 = 4, -4 mod 16 = C, so LENGTH = C06E.
ANALOG_BODY = (
    "20024600C06E"
    "10" "02" "0F"  # INFOFLAG, pack address 2, 15 cells
    "0CEE0CF00CEC0CEF0CED"  # 3310 3312 3308 3311 3309 mV
    "0CF10CEE0CEB0CF20CEE"  # 3313 3310 3307 3314 3310 mV
    "0CEF0CED0CF00CEE0CEA"  # 3311 3309 3312 3310 3306 mV
    "05" "0BBD"  # 5 temperatures; BMS board 3005 dK = 27.4 degC
    "0B9C0B9E0B9B0BA1"  # cell groups 2972 2974 2971 2977 dK = 24.1 24.3 24.0 24.6 degC
    "FB2E"  # current -1234 x 10 mA = -12.34 A (discharging)
    "C1F4"  # pack voltage 49652 mV
    "927C" "02" "C350" "007B"  # remaining 37500 mAh, user-defined 2, total 50000 mAh, 123 cycles
)  # fmt: skip


def test_analog_values_of_fifteen_cells_and_five_temperatures() -> None:
    response = decode_response(framed(ANALOG_BODY))
    assert (response.version, response.address, response.rtn) == (0x20, 2, 0)
    values = parse_analog_values(response.info)
    assert values.address == 2
    assert values.cell_voltages_mv == (
        3310, 3312, 3308, 3311, 3309, 3313, 3310, 3307, 3314, 3310, 3311, 3309, 3312, 3310, 3306,
    )  # fmt: skip
    assert values.temperatures_c == (27.4, 24.1, 24.3, 24.0, 24.6)
    assert values.current_a == -12.34
    assert values.voltage_v == 49.652
    assert values.remaining_ah == 37.5
    assert values.total_ah == 50.0
    assert values.cycles == 123
    assert values.user_defined == 2
    assert values.soc_pct == 75.0


def test_capacities_come_from_the_extended_fields_when_user_defined_is_4() -> None:
    # One cell, no temperatures, to keep it short: INFO = 3 + 2 + 1 + 2+2 + 2+1+2+2 + 3+3
    # = 23 bytes = 46 = 0x02E characters; 0 + 2 + E = 16, -16 mod 16 = 0: LENGTH 002E.
    body = (
        "20034600002E" "00" "03" "01" "0CE4" "00"  # ADR 3: 1 cell of 3300 mV, no temperatures
        "07D0" "0CE4"  # 20.00 A, 3300 mV
        "FFFF" "04" "FFFF" "0005"  # 2-byte capacities unused, user-defined 4, 5 cycles
        "013880" "0186A0"  # remaining 80000 mAh, total 100000 mAh
    )  # fmt: skip
    values = parse_analog_values(decode_response(framed(body)).info)
    assert (values.current_a, values.voltage_v) == (20.0, 3.300)
    assert (values.remaining_ah, values.total_ah, values.cycles) == (80.0, 100.0, 5)
    assert values.soc_pct == 80.0


def test_charge_management_limits_and_status() -> None:
    # INFO = 10 bytes = 20 = 0x014 characters; 0 + 1 + 4 = 5, -5 mod 16 = B: LENGTH B014.
    body = (
        "20024600B014" "02"
        "CFD0" "AFC8"  # charge voltage limit 53200 mV, discharge voltage limit 45000 mV
        "00FA" "FF06"  # charge current limit 250, discharge -250 (0.1 A)
        "C0"  # charge and discharge enabled
    )  # fmt: skip
    values = parse_charge_management(decode_response(framed(body)).info)
    assert values.charge_voltage_limit_v == 53.2
    assert values.discharge_voltage_limit_v == 45.0
    assert values.charge_current_limit_a == 25.0
    assert values.discharge_current_limit_a == -25.0
    assert values.status == ChargeStatus.CHARGE_ENABLE | ChargeStatus.DISCHARGE_ENABLE


def test_alarm_info_becomes_bits_and_words() -> None:
    # INFO = 3 + 15 + 1 + 5 + 3 + 5 = 32 bytes = 64 = 0x040 characters; -4 mod 16 = C: C040.
    body = (
        "20024600C040" "00" "02"
        "0F" "000002" "000000000000000000000000"  # 15 cells: cell 3 above its upper limit
        "05" "0001000000"  # 5 temperatures: temperature 2 below its lower limit
        "00" "02" "00"  # charge current, pack voltage (above its upper limit), discharge current
        "01" "06" "08" "04" "00"  # status 1-5: module over voltage protection; cell 3 faulty
    )  # fmt: skip
    info = parse_alarm_info(decode_response(framed(body)).info)
    assert info.alarms == (
        Alarm.CELL_OVER_VOLTAGE
        | Alarm.TEMPERATURE_LOW
        | Alarm.PACK_OVER_VOLTAGE
        | Alarm.CELL_FAULT
        | Alarm.PROTECT_MODULE_OVER_VOLTAGE
    )
    assert info.descriptions() == [
        "cell 3 voltage above upper limit",
        "temperature 2 below lower limit",
        "pack voltage above upper limit",
        "cell 3 fault",
        "module over voltage protection",
    ]


GOOD = "20024600B01402CFD0AFC800FAFF06C0"


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        pytest.param(framed(GOOD)[:-5] + b"0000\r", "garbage", id="frame checksum"),
        pytest.param(framed(GOOD.replace("B014", "A014")), "garbage", id="LENGTH checksum"),
        pytest.param(framed(GOOD.replace("CFD0", "CFG0")), "garbage", id="non-hex character"),
        pytest.param(framed(GOOD)[:-1], "garbage", id="no CR"),
        pytest.param(framed("200246020000"), "exception", id="RTN 02, empty INFO"),
    ],
)
def test_unusable_frames_are_refused_with_their_error_class(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as refused:
        decode_response(frame)
    assert refused.value.reason == reason
    if reason == "exception":
        assert refused.value.rtn == ReturnCode.CHECKSUM_ERROR
        assert "checksum error" in str(refused.value)


def test_stray_bytes_before_a_frame_are_dropped() -> None:
    buffer = bytearray(b"\x00\xffnoise\r~2002" + framed(GOOD) + b"~20")
    assert take_frame(buffer) == framed(GOOD)
    assert buffer == bytearray(b"~20")  # the start of the next frame stays
    assert take_frame(buffer) is None


def test_the_simulated_pack_integrates_current_and_tapers_its_limit() -> None:
    now = [0.0]
    pack = SimulatedPack(capacity_ah=50.0, soc_pct=80.0, current_a=25.0, clock=lambda: now[0])
    first = pack.report()
    now[0] = 0.25 * 3600  # 15 minutes at 25 A put 6.25 Ah (12.5 %) in: 92.5 %
    second = pack.report()
    assert second.remaining_mah - first.remaining_mah == 6250
    assert min(second.cell_mv) > min(first.cell_mv)
    assert (first.charge_limit_da, second.charge_limit_da) == (250, 188)  # 25 A x 7.5 / 10
    assert second.temperatures_dk != first.temperatures_dk
    now[0] = 0.6 * 3600  # full: the BMS stops the current and allows no more charge
    full = pack.report()
    assert (full.remaining_mah, full.current_10ma, full.charge_limit_da) == (50000, 0, 0)


@dataclass
class Line:
    simulator: SimulatedPylontech
    link: PylontechLink
    pack: SimulatedPack  # 50 Ah at address 2
    big_pack: SimulatedPack  # 100 Ah at address 3


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    def frozen() -> float:
        return 1000.0  # values stand still, so a reading can be compared to the report

    with PtyPair(tmp_path) as pty:
        pack = SimulatedPack(2, soc_pct=64.0, current_a=-12.5, cycles=37, clock=frozen)
        big_pack = SimulatedPack(3, capacity_ah=100.0, soc_pct=95.0, current_a=8.0, clock=frozen)
        simulator = SimulatedPylontech([pack, big_pack])
        await simulator.start(str(pty.device_end), baudrate=9600)
        bus = SerialBus(type="serial", name="bms-line", port=str(pty.agent_end))
        link = PylontechLink(bus)
        assert await link.connect()
        assert link.connected
        try:
            yield Line(simulator, link, pack, big_pack)
        finally:
            link.close()
            await simulator.stop()


def make_bms(address: int, timeout_s: float = 0.3) -> PylontechBms:
    device = Device(
        id=f"battery-{address}", kind="battery", profile="pylontech", bus="bms-line",
        unit_id=address,
    )  # fmt: skip
    return PylontechBms(device, time.monotonic, utc_now, timeout_s=timeout_s)


def values(result: PollResult) -> dict[str, float]:
    return {reading.quantity: reading.value for reading in result.readings}


def expected(report: PackReport, cells: int, capacity_ah: float) -> dict[str, float]:
    """What the agent should make of a report, computed from the protocol's units."""
    volts = report.voltage_mv / 1000
    amps = report.current_10ma / 100
    cell_temps = [(dk - 2731) / 10 for dk in report.temperatures_dk[1:]]
    return {
        "soc": report.remaining_mah * 100 / report.total_mah,
        "battery_voltage": volts,
        "battery_current": amps,
        "battery_power": volts * amps,
        "charge_current_limit": report.charge_limit_da / 10,
        "discharge_current_limit": -report.discharge_limit_da / 10,
        "cell_voltage_min": min(report.cell_mv) / 1000,
        "cell_voltage_max": max(report.cell_mv) / 1000,
        "cell_temperature_min": min(cell_temps),
        "cell_temperature_max": max(cell_temps),
        "temperature": (report.temperatures_dk[0] - 2731) / 10,
        "capacity": capacity_ah * cells * 3.2,
        "alarms": 0.0,
    }


async def test_a_poll_reads_the_simulated_pack(line: Line) -> None:
    bms = make_bms(2)
    result = await bms.poll(line.link)
    assert (result.error, result.failed, result.requests) == (None, [], 3)  # 0x42, 0x92, 0x44
    got = values(result)
    assert got == pytest.approx(expected(line.pack.report(), cells=15, capacity_ah=50.0))
    assert got["soc"] == pytest.approx(64.0)
    assert got["battery_current"] == -12.5
    assert got["charge_current_limit"] == 25.0
    assert got["capacity"] == 2400.0
    assert set(got) == set(bms.max_age_s()) == set(bms.quantities)

    second = await bms.poll(line.link)
    assert second.requests == 2  # alarms only every tenth poll
    assert "alarms" not in values(second)


async def test_manufacturer_info_and_protocol_version(line: Line) -> None:
    reply = await line.link.exchange(encode_request(2, Command.GET_MANUFACTURER_INFO), 0.3)
    info = parse_manufacturer_info(decode_response(reply).info)
    assert (info.battery_name, info.software_version, info.manufacturer) == (
        "US2000C", (1, 4), "PYLON",
    )  # fmt: skip
    reply = await line.link.exchange(encode_request(3, Command.GET_PROTOCOL_VERSION), 0.3)
    assert decode_response(reply).version == 0x20  # the answer is the VER field: 2.0


async def test_two_packs_share_the_line(line: Line) -> None:
    result = await make_bms(3).poll(line.link)
    assert result.error is None
    got = values(result)
    assert got == pytest.approx(expected(line.big_pack.report(), cells=15, capacity_ah=100.0))
    assert got["soc"] == pytest.approx(95.0)
    assert got["charge_current_limit"] == 25.0  # 50 A tapered over the last 10 %


async def test_tripped_protections_show_in_the_alarms(line: Line) -> None:
    line.pack.protection = 0x04  # status 1 bit 2: charge over current
    result = await make_bms(2).poll(line.link)
    assert values(result)["alarms"] == float(Alarm.PROTECT_CHARGE_OVER_CURRENT)


async def test_a_silent_pack_times_out_then_recovers(line: Line) -> None:
    bms = make_bms(2, timeout_s=0.2)
    line.pack.faults.set(PackFault.SILENT)
    started = time.monotonic()
    result = await bms.poll(line.link)
    elapsed = time.monotonic() - started
    assert result.error == "timeout"
    assert result.requests == 1  # no timeout spent per command
    assert result.readings == []
    assert set(result.failed) == set(bms.quantities)
    assert 0.2 <= elapsed < 0.4
    assert line.pack.faults.requests_seen == 1

    line.pack.faults.clear()
    recovered = await bms.poll(line.link)
    assert recovered.error is None
    assert values(recovered)["battery_current"] == -12.5


@pytest.mark.parametrize(
    ("fault", "error"),
    [(PackFault.BAD_CHECKSUM, "garbage"), (PackFault.ERROR_RTN, "exception")],
)
async def test_a_bad_reply_is_classified_and_the_poll_goes_on(
    line: Line, fault: PackFault, error: str
) -> None:
    bms = make_bms(2)
    line.pack.faults.set(fault)
    result = await bms.poll(line.link)
    assert result.error == error
    assert result.requests == 3  # the pack answers, so every command is still tried
    assert result.readings == []
    assert set(result.failed) == set(bms.quantities)

    line.pack.faults.clear()
    assert (await bms.poll(line.link)).error is None


async def test_noise_and_a_late_reply_do_not_confuse_the_next_exchange(line: Line) -> None:
    bms = make_bms(2, timeout_s=0.15)
    line.pack.faults.set(PackFault.NOISY)
    assert (await bms.poll(line.link)).error is None

    line.pack.faults.set(PackFault.SLOW, delay_s=0.25)
    assert (await bms.poll(line.link)).error == "timeout"
    line.pack.faults.clear()
    await asyncio.sleep(0.15)  # the late 0x42 reply lands in the agent's input meanwhile
    result = await bms.poll(line.link)
    assert result.error is None
    assert values(result)["charge_current_limit"] == 25.0  # not the stale 0x42 reply


async def test_a_missing_port_is_refused_with_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "ttyUSB9"
    link = PylontechLink(SerialBus(type="serial", name="bms-line", port=str(missing)))
    with caplog.at_level(logging.WARNING, logger="agent.drivers.pylontech_link"):
        assert await link.connect() is False
        assert await link.connect() is False
    assert not link.connected
    assert len(caplog.records) == 1  # the retry does not repeat it
    assert str(missing) in caplog.text
    assert "No such file or directory" in caplog.text
    with pytest.raises(ConnectionError):
        await link.exchange(encode_request(2, Command.GET_ANALOG_VALUES), 0.1)


async def test_a_vanished_line_is_a_connection_error(tmp_path: Path) -> None:
    pty = PtyPair(tmp_path).__enter__()
    link = PylontechLink(SerialBus(type="serial", name="bms-line", port=str(pty.agent_end)))
    try:
        assert await link.connect()
        pty.__exit__(None, None, None)  # socat gone: like a USB adapter pulled out
        result = await make_bms(2).poll(link)
    finally:
        link.close()
        pty.__exit__(None, None, None)
    assert (result.error, result.requests, result.readings) == ("connection", 1, [])


PYLONTECH_SITE = """
[site]
name = "test-site"
grid_import_limit_kw = 63

[[buses]]
name = "bms"
type = "serial"
port = "{port}"
baudrate = 9600
timeout_s = 0.5
protocol = "pylontech"

[[devices]]
id = "battery"
kind = "battery"
profile = "pylontech-rs485"
bus = "bms"
unit_id = 2
poll_interval_s = 0.3

[control]
cycle_s = 0.2

[prometheus]
enabled = false
"""


async def test_the_agent_reads_a_pack_through_its_site_config(
    tmp_path: Path, write_site: WriteSite
) -> None:
    pack = SimulatedPack(2, soc_pct=72.0, current_a=-10.0)
    with PtyPair(tmp_path) as pty:
        simulator = SimulatedPylontech([pack])
        await simulator.start(str(pty.device_end))
        agent = Agent(load_config(write_site(PYLONTECH_SITE.format(port=pty.agent_end))))
        running = asyncio.create_task(agent.run())
        try:
            deadline = time.monotonic() + 5
            while agent.state.snapshot().value("battery", "soc") is None:
                assert time.monotonic() < deadline, "no SoC from the pack"
                await asyncio.sleep(0.05)
            snap = agent.state.snapshot()
        finally:
            agent.stop()
            await running
            await simulator.stop()
    assert snap.value("battery", "soc") == pytest.approx(72.0, abs=0.2)
    assert snap.value("battery", "battery_current") == pytest.approx(-10.0, abs=0.05)


def test_a_pylontech_profile_on_a_modbus_bus_is_refused(write_site: WriteSite) -> None:
    text = PYLONTECH_SITE.format(port="/dev/ttyUSB0").replace('protocol = "pylontech"\n', "")
    with pytest.raises(ConfigError) as caught:
        load_config(write_site(text))
    assert any(
        "devices[battery].bus = 'bms': bus bms speaks modbus, profile pylontech-rs485 pylontech"
        in line
        for line in caught.value.lines()
    )
