"""A simulated Alfen NG9xx charging station (Eve Single/Double), served over real Modbus TCP.

The register addresses and types below are typed from Alfen's "Implementation of Modbus Slave
TCP/IP for Alfen NG9xx platform", version 2.3, 30-10-2020: holding registers only, the
document's register number is the wire address, big-endian (32/64-bit values high word
first), reserved or unavailable registers read as NaN (0xFFFF). Socket 1 answers on unit id 1,
socket 2 on unit id 2, the station on unit id 200. They are deliberately not read from the
agent's profile: a wrong profile must not be able to hide behind a simulator built from it.

What the station does (section 1.3.1 of the document): a write of the Modbus Slave Max Current
(1210) restarts its remaining valid time (1208) at the configured validity time; when that runs
out the socket falls back to the safe current (1212). A car draws the smaller of what it wants
and the applied current, on one or three phases; below 6 A nothing flows (IEC 61851-1 has no
smaller PWM current). The energy registers integrate the power drawn.

Write checks: the document says a value spanning several registers must be written whole or is
refused with an exception (section 1.3); that is illegal data address here, as is a write to a
read-only register. It gives no value range, so the simulator's range is an assumption: a max
current that is not a finite number in 0..station maximum, or a phase count other than 1 or 3,
is refused with illegal data value.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.serving import ModbusServing, modbus_unit

STATION_UNIT = 200

# 3.1 Product identification and 3.2 station status registers (unit id 200).
NAME = 100  # STRING, 17 registers
MANUFACTURER = 117  # STRING, 5 registers
TABLE_VERSION = 122  # SIGNED16
FIRMWARE_VERSION = 123  # STRING, 17 registers
PLATFORM_TYPE = 140  # STRING, 17 registers
SERIAL_NUMBER = 157  # STRING, 11 registers
DATE_YEAR = 168  # SIGNED16; month 169, day 170, hour 171, minute 172, second 173
UPTIME = 174  # UNSIGNED64, 0.001 s
TIME_ZONE = 178  # SIGNED16, minutes
STATION_MAX_CURRENT = 1100  # FLOAT32, A ("Station Active Max Current")
TEMPERATURE = 1102  # FLOAT32, degC
OCPP_STATE = 1104  # UNSIGNED16
SOCKET_COUNT = 1105  # UNSIGNED16

# 3.4 Socket measurement registers (unit id 1 or 2).
METER_STATE = 300  # UNSIGNED16 bitmask: 1 initialised, 2 updated
METER_AGE = 301  # UNSIGNED64, 0.001 s since the last measurement
METER_TYPE = 305  # UNSIGNED16: 0 RTU
VOLTAGE_LN = 306  # FLOAT32 x3, V (L1-N, L2-N, L3-N)
VOLTAGE_LL = 312  # FLOAT32 x3, V (L1-L2, L2-L3, L3-L1)
CURRENT_N = 318  # FLOAT32, A
CURRENT = 320  # FLOAT32 x3, A
CURRENT_SUM = 326  # FLOAT32, A
POWER_FACTOR = 328  # FLOAT32 x3 then sum at 334
FREQUENCY = 336  # FLOAT32, Hz
REAL_POWER = 338  # FLOAT32 x3 then sum at 344, W
APPARENT_POWER = 346  # FLOAT32 x3 then sum at 352, VA
REACTIVE_POWER = 354  # FLOAT32 x3 then sum at 360, var
ENERGY_DELIVERED = 362  # FLOAT64 x3 then sum at 374, Wh
ENERGY_CONSUMED = 378  # FLOAT64 x3 then sum at 390, Wh
AVAILABILITY = 1200  # UNSIGNED16: 1 operative, 0 inoperative
MODE3_STATE = 1201  # STRING, 5 registers
APPLIED_MAX_CURRENT = 1206  # FLOAT32, A
VALID_TIME = 1208  # UNSIGNED32, s, remaining before the fall-back to the safe current
MAX_CURRENT = 1210  # FLOAT32, A, read/write
SAFE_CURRENT = 1212  # FLOAT32, A
SETPOINT_ACCOUNTED = 1214  # UNSIGNED16: 1 yes, 0 no
PHASES = 1215  # UNSIGNED16, read/write: 1 or 3

MIN_PWM_CURRENT_A = 6.0  # below this IEC 61851-1 has no duty cycle: the car pauses


def _f32(value: float) -> list[int]:
    raw = struct.pack(">f", value)
    return [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]


def _f64(value: float) -> list[int]:
    raw = struct.pack(">d", value)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 8, 2)]


def _u32(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def _u64(value: int) -> list[int]:
    return [(value >> shift) & 0xFFFF for shift in (48, 32, 16, 0)]


def _s16(value: int) -> list[int]:
    return [value & 0xFFFF]


def _text(value: str, registers: int) -> list[int]:
    """Two ASCII characters per register, zero-terminated and zero-padded."""
    raw = value.encode("ascii")[: registers * 2 - 1].ljust(registers * 2, b"\0")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def decode_f32(words: list[int]) -> float:
    """A float32 register pair as a client wrote it, high word first."""
    return float(struct.unpack(">f", b"".join(w.to_bytes(2, "big") for w in words))[0])


@dataclass(slots=True)
class Car:
    """What the plugged-in car would draw if the station offered enough."""

    connected: bool = True
    wants_a: float = 16.0
    phases: int = 3  # the car's on-board charger: 1 or 3 phases


@dataclass(slots=True)
class Socket:
    """One socket: its meter, the car on it and the Modbus max current the EMS has written."""

    car: Car = field(default_factory=Car)
    voltage: tuple[float, float, float] = (231.25, 229.5, 233.75)
    frequency: float = 49.98
    power_factor: float = 0.96875
    safe_current_a: float = 6.0  # Active Load Balancing safe current (installer setting)
    phases_setting: int = 3  # register 1215
    available: bool = True
    energy_wh: list[float] = field(default_factory=lambda: [411_522.25, 398_117.5, 402_003.125])
    setpoint_a: float | None = None  # last Modbus Slave Max Current written
    setpoint_at: float = 0.0
    setpoint_valid: bool = False

    def remaining_valid_s(self, now: float, validity_s: float) -> int:
        if not self.setpoint_valid:
            return 0
        return max(0, math.ceil(validity_s - (now - self.setpoint_at)))

    def applied_current_a(self, station_max_a: float) -> float:
        """Actual applied max current: our setpoint while valid, else the safe current."""
        wanted = self.setpoint_a if self.setpoint_valid and self.setpoint_a is not None else None
        limit = self.safe_current_a if wanted is None else wanted
        return min(limit, station_max_a)

    def phases_in_use(self) -> int:
        return 1 if self.phases_setting == 1 or self.car.phases == 1 else 3

    def draw_a(self, station_max_a: float) -> float:
        """Current per phase the car draws now."""
        applied = self.applied_current_a(station_max_a)
        if not (self.available and self.car.connected) or applied < MIN_PWM_CURRENT_A:
            return 0.0
        return max(0.0, min(self.car.wants_a, applied))

    def currents(self, station_max_a: float) -> tuple[float, float, float]:
        draw = self.draw_a(station_max_a)
        if self.phases_in_use() == 1:
            return (draw, 0.0, 0.0)
        return (draw, draw, draw)

    def powers(self, station_max_a: float) -> tuple[float, float, float]:
        amps = self.currents(station_max_a)
        p1, p2, p3 = (v * i * self.power_factor for v, i in zip(self.voltage, amps, strict=True))
        return (p1, p2, p3)

    def mode3_state(self, station_max_a: float) -> str:
        if not self.car.connected:
            return "A"
        if self.applied_current_a(station_max_a) < MIN_PWM_CURRENT_A or not self.available:
            return "B1"  # connected, no PWM offered
        if self.draw_a(station_max_a) <= 0.0:
            return "B2"  # PWM offered, the car does not take it
        return "C2"


@dataclass(frozen=True, slots=True)
class StationInfo:
    """The station's nameplate (unit id 200); fixed, so tests can compare it."""

    name: str = "ALF_SIM_0001"
    manufacturer: str = "Alfen NV"
    firmware: str = "4.10.0-SIM"
    platform: str = "NG920"
    serial_number: str = "ACE0012345"
    boot_time: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class SimulatedAlfen(ModbusServing):
    """An NG9xx station with one or two sockets on one Modbus TCP port.

    `sockets[0]` is unit id 1, `sockets[1]` unit id 2. Everything is computed from `clock`
    (monotonic seconds) when the station is accessed, so a test moves time by moving its clock.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        sockets: int = 1,
        validity_s: float = 60.0,
        station_max_a: float = 32.0,
        info: StationInfo | None = None,
    ) -> None:
        if sockets not in (1, 2):
            raise ValueError("an NG9xx station has one or two sockets")
        self._clock = clock
        self.sockets = [Socket() for _ in range(sockets)]
        self.validity_s = validity_s
        self.station_max_a = station_max_a
        self.temperature_c = 35.9375
        self.info = info or StationInfo()
        self.faults = FaultSwitch()
        self.writes: list[tuple[int, int, list[int]]] = []  # (unit id, address, words) accepted
        self._started = clock()
        self._last = self._started

    # --- the station's behaviour ------------------------------------------------------------

    def advance(self) -> float:
        """Bring energy counters and setpoint validity up to now; returns now.

        A setpoint that ran out since the last access is dropped at the moment it ran out, so
        the energy counted before and after that moment uses the current drawn at the time.
        """
        now = self._clock()
        for socket in self.sockets:
            expiry = socket.setpoint_at + self.validity_s
            if socket.setpoint_valid and expiry <= now:
                self._integrate(socket, self._last, expiry)
                socket.setpoint_valid = False  # fall back to the safe current
                self._integrate(socket, expiry, now)
            else:
                self._integrate(socket, self._last, now)
        self._last = now
        return now

    def _integrate(self, socket: Socket, start: float, end: float) -> None:
        hours = max(end - start, 0.0) / 3600
        for phase, watts in enumerate(socket.powers(self.station_max_a)):
            socket.energy_wh[phase] += watts * hours

    def socket(self, unit_id: int) -> Socket:
        return self.sockets[unit_id - 1]

    def socket_words(self, unit_id: int) -> dict[int, list[int]]:
        """What the socket's registers hold now, by start address (document's numbers)."""
        socket = self.socket(unit_id)
        now = self._clock()
        limit = self.station_max_a
        voltage, amps, watts = socket.voltage, socket.currents(limit), socket.powers(limit)
        volt_amps = [v * i for v, i in zip(voltage, amps, strict=True)]
        words: dict[int, list[int]] = {
            METER_STATE: [0x03],
            METER_AGE: _u64(250),
            METER_TYPE: [0],
            CURRENT_SUM: _f32(sum(amps)),
            POWER_FACTOR + 6: _f32(socket.power_factor),
            FREQUENCY: _f32(socket.frequency),
            REAL_POWER + 6: _f32(sum(watts)),
            APPARENT_POWER + 6: _f32(sum(volt_amps)),
            ENERGY_DELIVERED + 12: _f64(sum(socket.energy_wh)),
            ENERGY_CONSUMED + 12: _f64(0.0),
            AVAILABILITY: [1 if socket.available else 0],
            MODE3_STATE: _text(socket.mode3_state(limit), 5),
            APPLIED_MAX_CURRENT: _f32(socket.applied_current_a(limit)),
            VALID_TIME: _u32(socket.remaining_valid_s(now, self.validity_s)),
            MAX_CURRENT: _f32(socket.setpoint_a or 0.0),
            SAFE_CURRENT: _f32(socket.safe_current_a),
            SETPOINT_ACCOUNTED: [1 if socket.setpoint_valid else 0],
            PHASES: [socket.phases_setting],
        }
        for n in range(3):
            words[VOLTAGE_LN + 2 * n] = _f32(voltage[n])
            words[VOLTAGE_LL + 2 * n] = _f32(math.sqrt(3) * (voltage[n] + voltage[(n + 1) % 3]) / 2)
            words[CURRENT + 2 * n] = _f32(amps[n])
            words[POWER_FACTOR + 2 * n] = _f32(socket.power_factor)
            words[REAL_POWER + 2 * n] = _f32(watts[n])
            words[APPARENT_POWER + 2 * n] = _f32(volt_amps[n])
            words[ENERGY_DELIVERED + 4 * n] = _f64(socket.energy_wh[n])
            words[ENERGY_CONSUMED + 4 * n] = _f64(0.0)
        return words

    def station_words(self) -> dict[int, list[int]]:
        """What the station registers (unit id 200) hold now."""
        uptime_s = max(self._clock() - self._started, 0.0)
        at = self.info.boot_time + timedelta(seconds=uptime_s)
        return {
            NAME: _text(self.info.name, 17),
            MANUFACTURER: _text(self.info.manufacturer, 5),
            TABLE_VERSION: [1],
            FIRMWARE_VERSION: _text(self.info.firmware, 17),
            PLATFORM_TYPE: _text(self.info.platform, 17),
            SERIAL_NUMBER: _text(self.info.serial_number, 11),
            DATE_YEAR: [at.year, at.month, at.day, at.hour, at.minute, at.second],
            UPTIME: _u64(int(uptime_s * 1000)),
            TIME_ZONE: _s16(0),
            STATION_MAX_CURRENT: _f32(self.station_max_a),
            TEMPERATURE: _f32(self.temperature_c),
            OCPP_STATE: [1],
            SOCKET_COUNT: [len(self.sockets)],
        }

    def _write_socket(self, unit_id: int, address: int, values: list[int]) -> ExcCodes | None:
        socket = self.socket(unit_id)
        end = address + len(values)
        if address == MAX_CURRENT and end == MAX_CURRENT + 2:
            amps = decode_f32(values)
            if not math.isfinite(amps) or not 0.0 <= amps <= self.station_max_a:
                return ExcCodes.ILLEGAL_VALUE
            socket.setpoint_a = amps
            socket.setpoint_at = self._clock()
            socket.setpoint_valid = True
        elif address == PHASES and end == PHASES + 1:
            if values[0] not in (1, 3):
                return ExcCodes.ILLEGAL_VALUE
            socket.phases_setting = values[0]
        else:  # half a float, or a read-only register
            return ExcCodes.ILLEGAL_ADDRESS
        self.writes.append((unit_id, address, list(values)))
        return None

    # --- Modbus ------------------------------------------------------------------------------

    def devices(self) -> list[SimDevice]:
        """One pymodbus device per unit id; reads fill every register with NaN first."""
        nan = 0xFFFF

        def socket_blocks() -> list[SimData]:
            return [
                SimData(300, count=126, values=nan, datatype=DataType.REGISTERS),
                SimData(1200, count=16, values=nan, datatype=DataType.REGISTERS),
            ]

        def station_blocks() -> list[SimData]:
            return [
                SimData(100, count=79, values=nan, datatype=DataType.REGISTERS),
                SimData(1100, count=6, values=nan, datatype=DataType.REGISTERS),
            ]

        # Input registers mirror the holding layout so that function 4 reaches the access
        # callback, which refuses it as the station does.
        units = [
            modbus_unit(
                unit_id,
                functools.partial(self._socket_access, unit_id),
                socket_blocks(),
                socket_blocks(),
            )
            for unit_id in range(1, len(self.sockets) + 1)
        ]
        units.append(
            modbus_unit(STATION_UNIT, self._station_access, station_blocks(), station_blocks())
        )
        return units

    async def _socket_access(
        self,
        unit_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        refused = await self._admit(function_code)
        if refused is not None:
            return refused
        self.advance()
        if set_values is not None:
            return self._write_socket(unit_id, address, [int(v) for v in set_values])
        _fill(registers, start_address, self.socket_words(unit_id))
        return None

    async def _station_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        refused = await self._admit(function_code)
        if refused is not None:
            return refused
        self.advance()
        if set_values is not None:
            return ExcCodes.ILLEGAL_ADDRESS  # nothing writable here (SCN is not simulated)
        _fill(registers, start_address, self.station_words())
        return None

    async def _admit(self, function_code: int) -> ExcCodes | None:
        fault = await self.faults.apply()
        if fault is not None:
            return fault
        if function_code not in (3, 6, 16):  # section 1.1: the functions the station supports
            return ExcCodes.ILLEGAL_FUNCTION
        return None

    def sim_devices(self) -> list[SimDevice]:
        return self.devices()


def _fill(registers: list[int], start_address: int, words: dict[int, list[int]]) -> None:
    for address, value in words.items():
        offset = address - start_address
        registers[offset : offset + len(value)] = value
