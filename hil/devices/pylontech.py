"""Simulated Pylontech low-voltage packs answering on a serial port (one end of a pty pair).

Frames and INFO layouts are typed here from Pylontech's "RS485-protocol-pylon-low-voltage"
V3.3 (2018-08-21), deliberately without importing agent.drivers.pylontech: a mistake in the
agent's codec must not be mirrored by the device it is tested against.

Several packs can share the line, each at its own ADR (V3.3 numbers the first pack 2); a
request for an address nobody owns goes unanswered, as on a real bus. The values move: each
pack integrates a settable current into its state of charge, its cell voltages follow an
LiFePO4 open-circuit curve plus the IR drop, temperatures drift and warm with current, and the
charge current limit tapers to zero over the last 10 % of charge. Tests freeze the clock to
get fixed values and read `SimulatedPack.report()` for what the pack will send.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import serial

_VER = 0x20  # protocol version 2.0, carried by every V3.3 frame
_CID1 = 0x46  # lithium iron battery
_ZERO_C_DK = 2731  # 0 degC in 0.1 K
_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")

# CID2 commands this pack knows
_ANALOG, _ALARMS, _PROTOCOL, _MAKER, _LIMITS = 0x42, 0x44, 0x4F, 0x51, 0x92
# RTN codes it answers malformed requests with
_RTN_OK, _RTN_VER, _RTN_CHKSUM, _RTN_LCHKSUM, _RTN_CID2 = 0x00, 0x01, 0x02, 0x03, 0x04

# LiFePO4 open-circuit voltage per cell over state of charge: (SoC %, mV)
_OCV_CURVE: tuple[tuple[float, float], ...] = (
    (0, 2900), (5, 3150), (10, 3200), (30, 3260), (60, 3295), (90, 3330), (98, 3380), (100, 3450),
)  # fmt: skip
_CELL_RESISTANCE_MOHM = 0.8
_CHARGE_VOLTAGE_LIMIT_MV = 53_200
_DISCHARGE_VOLTAGE_LIMIT_MV = 45_000
_NOISE = b"\x00\xffjunk\r\x13~2002"  # stray bytes, a CR and a cut-off frame start


class PackFault(StrEnum):
    """How a pack misbehaves right now; NONE is normal service."""

    NONE = "none"
    SILENT = "silent"  # no answer at all: powered off, broken pair
    BAD_CHECKSUM = "bad_checksum"  # a reply whose CHKSUM is wrong: line noise
    ERROR_RTN = "error_rtn"  # a well-formed reply refusing the request (RTN `rtn`)
    SLOW = "slow"  # the right answer, `delay_s` late
    NOISY = "noisy"  # the right answer after stray bytes on the line


@dataclass(slots=True)
class PackFaults:
    fault: PackFault = PackFault.NONE
    delay_s: float = 0.0
    rtn: int = 0x91  # master/slave communication error: a stack with a lost member
    requests_seen: int = 0  # every request addressed to the pack, answered or not

    def set(self, fault: PackFault, *, delay_s: float = 0.0, rtn: int | None = None) -> None:
        self.fault = fault
        self.delay_s = delay_s
        if rtn is not None:
            self.rtn = rtn

    def clear(self) -> None:
        self.set(PackFault.NONE)


@dataclass(frozen=True, slots=True)
class PackReport:
    """One moment of a pack in the protocol's own integer units, as it goes on the wire."""

    cell_mv: tuple[int, ...]
    temperatures_dk: tuple[int, ...]  # BMS board first, then the cell groups
    current_10ma: int  # + = charging
    voltage_mv: int
    remaining_mah: int
    total_mah: int
    cycles: int
    charge_limit_da: int  # 0.1 A
    discharge_limit_da: int  # 0.1 A, negative as packs send it
    charge_status: int  # the 0x92 status byte
    cell_states: tuple[int, ...]
    temperature_states: tuple[int, ...]
    current_states: tuple[int, int, int]  # charge current, pack voltage, discharge current
    status: tuple[int, int, int, int, int]  # 0x44 status 1..5


def _interpolate(curve: Sequence[tuple[float, float]], x: float) -> float:
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x <= x1:
            return y0 + (y1 - y0) * (max(x, x0) - x0) / (x1 - x0)
    return curve[-1][1]


def _limit_state(value: float, low: float, high: float) -> int:
    return 0x01 if value < low else 0x02 if value > high else 0x00


class SimulatedPack:
    """One pack: state of charge, cells, temperatures and limits, advanced by the clock."""

    def __init__(
        self,
        address: int = 2,
        *,
        cells: int = 15,
        capacity_ah: float = 50.0,
        soc_pct: float = 50.0,
        current_a: float = 0.0,
        max_current_a: float | None = None,
        cycles: int = 0,
        ambient_c: float = 24.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self.cells = cells
        self.capacity_ah = capacity_ah
        self.current_a = current_a  # settable; + = charging
        self.max_current_a = capacity_ah / 2 if max_current_a is None else max_current_a
        self.ambient_c = ambient_c
        self.protection = 0  # status 1 bits to show in 0x44 (trip protections on demand)
        self.cell_faults = 0  # status 4/5 bits: cell n faulty = bit n-1
        self.faults = PackFaults()
        self._clock = clock
        self._charge_ah = capacity_ah * soc_pct / 100
        self._discharged_ah = 0.0
        self._first_cycles = cycles
        self._warming_c = 0.0
        self._last = clock()

    @property
    def soc_pct(self) -> float:
        self._advance()
        return self._charge_ah * 100 / self.capacity_ah

    @soc_pct.setter
    def soc_pct(self, value: float) -> None:
        self._advance()
        self._charge_ah = self.capacity_ah * min(100.0, max(0.0, value)) / 100

    def effective_current_a(self) -> float:
        """The current that flows: the BMS opens the path at full (charging) or empty."""
        full = self._charge_ah >= self.capacity_ah and self.current_a > 0
        empty = self._charge_ah <= 0 and self.current_a < 0
        return 0.0 if full or empty else self.current_a

    def _advance(self) -> None:
        now = self._clock()
        seconds = max(0.0, now - self._last)
        self._last = now
        current = self.effective_current_a()
        hours = seconds / 3600
        self._charge_ah = min(self.capacity_ah, max(0.0, self._charge_ah + current * hours))
        self._discharged_ah += max(0.0, -current) * hours
        # Joule heating settles at about 1 degC per (0.1 C)^2 over a ten-minute time constant.
        target = (current / (0.1 * self.capacity_ah)) ** 2 * 0.3
        self._warming_c += (target - self._warming_c) * (1 - math.exp(-seconds / 600))

    def charge_limit_a(self, soc: float) -> float:
        return self.max_current_a * min(1.0, max(0.0, (100 - soc) / 10))

    def discharge_limit_a(self, soc: float) -> float:
        return self.max_current_a * min(1.0, max(0.0, soc / 10))

    def report(self) -> PackReport:
        self._advance()
        soc = self._charge_ah * 100 / self.capacity_ah
        current = self.effective_current_a()
        base_mv = _interpolate(_OCV_CURVE, soc) + current * _CELL_RESISTANCE_MOHM
        cell_mv = tuple(round(base_mv + (3 * n) % 7 - 3) for n in range(self.cells))
        now = self._last
        groups = 4
        temps_c = [self.ambient_c + 3.0 + self._warming_c / 2]  # the board sits by the MOSFETs
        temps_c += [
            self.ambient_c + self._warming_c + 0.4 * math.sin(now / 300 + g) for g in range(groups)
        ]
        temperatures_dk = tuple(round(t * 10) + _ZERO_C_DK for t in temps_c)
        charge_limit = self.charge_limit_a(soc)
        discharge_limit = self.discharge_limit_a(soc)
        status = (0x80 if charge_limit > 0 else 0) | (0x40 if discharge_limit > 0 else 0)
        status |= 0x20 if 5 <= soc < 9 else 0x10 if 9 <= soc < 13 else 0
        voltage_mv = sum(cell_mv)
        return PackReport(
            cell_mv=cell_mv,
            temperatures_dk=temperatures_dk,
            current_10ma=round(current * 100),
            voltage_mv=voltage_mv,
            remaining_mah=round(self._charge_ah * 1000),
            total_mah=round(self.capacity_ah * 1000),
            cycles=self._first_cycles + int(self._discharged_ah / self.capacity_ah),
            charge_limit_da=round(charge_limit * 10),
            discharge_limit_da=-round(discharge_limit * 10),
            charge_status=status,
            cell_states=tuple(_limit_state(mv, 2950, 3600) for mv in cell_mv),
            temperature_states=tuple(_limit_state(t, 0.0, 50.0) for t in temps_c),
            current_states=(
                0x02 if current > charge_limit + 1 else 0x00,
                _limit_state(voltage_mv, 2950 * self.cells, 3600 * self.cells),
                0x02 if -current > discharge_limit + 1 else 0x00,
            ),
            status=(
                self.protection & 0xFF,
                0x06,  # charge and discharge MOSFETs on
                0x08 if soc >= 100 else 0x00,  # fully charged
                self.cell_faults & 0xFF,
                (self.cell_faults >> 8) & 0xFF,
            ),
        )


def analog_info(address: int, r: PackReport) -> bytes:
    """0x42 INFO: INFOFLAG, address, cells, temperatures, current, voltage, capacities."""
    out = struct.pack(">BBB", 0x00, address, len(r.cell_mv))
    out += struct.pack(f">{len(r.cell_mv)}H", *r.cell_mv)
    out += struct.pack(f">B{len(r.temperatures_dk)}H", len(r.temperatures_dk), *r.temperatures_dk)
    out += struct.pack(">hH", r.current_10ma, r.voltage_mv)
    if r.total_mah <= 0xFFFF:
        return out + struct.pack(">HBHH", r.remaining_mah, 2, r.total_mah, r.cycles)
    # Above 65 Ah the 2-byte fields read FFFF and user-defined 4 adds two 3-byte fields.
    out += struct.pack(">HBHH", 0xFFFF, 4, 0xFFFF, r.cycles)
    return out + r.remaining_mah.to_bytes(3, "big") + r.total_mah.to_bytes(3, "big")


def limits_info(address: int, r: PackReport) -> bytes:
    """0x92 INFO: voltage limits (mV), current limits (0.1 A), status byte."""
    return struct.pack(
        ">BHHhhB",
        address,
        _CHARGE_VOLTAGE_LIMIT_MV,
        _DISCHARGE_VOLTAGE_LIMIT_MV,
        r.charge_limit_da,
        r.discharge_limit_da,
        r.charge_status,
    )


def alarm_info(address: int, r: PackReport) -> bytes:
    """0x44 INFO: a state byte per cell and temperature, three more, status 1..5."""
    out = struct.pack(">BBB", 0x00, address, len(r.cell_states)) + bytes(r.cell_states)
    out += bytes([len(r.temperature_states), *r.temperature_states])
    return out + bytes(r.current_states) + bytes(r.status)


def maker_info(battery: str, software: tuple[int, int], maker: str) -> bytes:
    """0x51 INFO: battery name (10 chars), software version (2 bytes), manufacturer (20)."""
    return (
        battery.encode("ascii").ljust(10, b" ")[:10]
        + bytes(software)
        + maker.encode("ascii").ljust(20, b" ")[:20]
    )


def reply_frame(address: int, rtn: int, info: bytes = b"", *, corrupt: bool = False) -> bytes:
    """SOI VER ADR CID1 RTN LENGTH INFO CHKSUM EOI, every field but SOI/EOI in hex ASCII."""
    info_hex = info.hex().upper()
    lenid = len(info_hex)
    nibble_sum = (lenid >> 8) + ((lenid >> 4) & 0xF) + (lenid & 0xF)
    lchksum = (16 - nibble_sum % 16) % 16
    body = f"{_VER:02X}{address:02X}{_CID1:02X}{rtn:02X}{lchksum:X}{lenid:03X}{info_hex}"
    checksum = (0x10000 - sum(body.encode("ascii")) % 0x10000) % 0x10000
    if corrupt:
        checksum ^= 0x0101
    return b"~" + f"{body}{checksum:04X}".encode("ascii") + b"\r"


@dataclass(frozen=True, slots=True)
class _Request:
    address: int
    command: int
    rtn: int  # what the request deserves: 0, or the RTN for its defect


def parse_request(frame: bytes) -> _Request | None:
    """Read a request; None when even its address cannot be trusted (then a pack is silent)."""
    text = frame[1:-1].decode("ascii", errors="replace")
    if len(text) < 16 or not set(text) <= _HEX_DIGITS:
        return None
    ver, address, cid1, cid2 = (int(text[i : i + 2], 16) for i in range(0, 8, 2))
    length = int(text[8:12], 16)
    lenid = length & 0x0FFF
    nibble_sum = (lenid >> 8) + ((lenid >> 4) & 0xF) + (lenid & 0xF)
    checksum = (0x10000 - sum(text[:-4].encode("ascii")) % 0x10000) % 0x10000
    if int(text[-4:], 16) != checksum:
        rtn = _RTN_CHKSUM
    elif (length >> 12) != (16 - nibble_sum % 16) % 16 or lenid != len(text) - 16:
        rtn = _RTN_LCHKSUM
    elif ver != _VER and cid2 != _PROTOCOL:  # anyone may ask which version we speak
        rtn = _RTN_VER
    elif cid1 != _CID1 or cid2 not in (_ANALOG, _ALARMS, _PROTOCOL, _MAKER, _LIMITS):
        rtn = _RTN_CID2
    else:
        rtn = _RTN_OK
    return _Request(address, cid2, rtn)


class SimulatedPylontech:
    """The packs on one serial line, served from an asyncio reader on the port's descriptor."""

    def __init__(
        self,
        packs: Sequence[SimulatedPack],
        *,
        battery_name: str = "US2000C",
        manufacturer: str = "PYLON",
        software: tuple[int, int] = (1, 4),
    ) -> None:
        self.packs = list(packs)
        self.battery_name = battery_name
        self.manufacturer = manufacturer
        self.software = software
        self._port: serial.Serial | None = None
        self._buffer = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()

    def pack(self, address: int) -> SimulatedPack:
        return next(p for p in self.packs if p.address == address)

    async def start(self, port: str, baudrate: int = 9600) -> None:
        self._port = serial.Serial(port, baudrate=baudrate, timeout=0, write_timeout=0)
        asyncio.get_running_loop().add_reader(self._port.fileno(), self._on_readable)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        port, self._port = self._port, None
        if port is not None:
            asyncio.get_running_loop().remove_reader(port.fileno())
            port.close()

    def _on_readable(self) -> None:
        if self._port is None:
            return
        try:
            self._buffer += os.read(self._port.fileno(), 1024)
        except BlockingIOError:
            return
        except OSError:
            self._buffer.clear()  # the agent's end went away; wait for it to come back
            return
        while (end := self._buffer.find(b"\r")) >= 0:
            start = self._buffer.rfind(b"~", 0, end)
            frame = bytes(self._buffer[start : end + 1]) if start >= 0 else b""
            del self._buffer[: end + 1]
            if frame:
                self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        request = parse_request(frame)
        if request is None:
            return
        pack = next((p for p in self.packs if p.address == request.address), None)
        if pack is None:
            return  # another device's address, or nobody's: a real line stays quiet too
        pack.faults.requests_seen += 1
        faults = pack.faults
        if faults.fault is PackFault.SILENT:
            return
        reply = self._reply(pack, request)
        delay = faults.delay_s if faults.fault is PackFault.SLOW else 0.0
        if faults.fault is PackFault.NOISY:
            reply = _NOISE + reply
        task = asyncio.get_running_loop().create_task(self._send(reply, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply(self, pack: SimulatedPack, request: _Request) -> bytes:
        address = pack.address
        fault = pack.faults.fault
        if request.rtn != _RTN_OK:
            return reply_frame(address, request.rtn)
        if fault is PackFault.ERROR_RTN:
            return reply_frame(address, pack.faults.rtn)
        if request.command == _MAKER:
            info = maker_info(self.battery_name, self.software, self.manufacturer)
        elif request.command == _PROTOCOL:
            info = b""  # the answer is the VER field itself
        elif request.command == _LIMITS:
            info = limits_info(address, pack.report())
        elif request.command == _ALARMS:
            info = alarm_info(address, pack.report())
        else:
            info = analog_info(address, pack.report())
        return reply_frame(address, _RTN_OK, info, corrupt=fault is PackFault.BAD_CHECKSUM)

    async def _send(self, data: bytes, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        view = memoryview(data)
        while view and self._port is not None:
            try:
                view = view[os.write(self._port.fileno(), view) :]
            except BlockingIOError:
                await asyncio.sleep(0.002)
