"""A simulated ABB Terra AC wallbox, served over real Modbus TCP or RTU (pymodbus simulator).

The register addresses, types and units below are typed from ABB's "Terra AC Charger Modbus
Communication" (v1.7; 4022h, 4024h and 4109h as v1.11 adds them), chapter 4, "Terra AC Wallbox
as Secondary Device": holding registers at 4000h-4025h (read) and 4100h-4109h (write),
unsigned integers, 32-bit values high word first, currents in mA, voltages in 0.1 V. We could
not read the document's full tables; the addresses were cross-checked against independent
implementations that cite it (see agent/drivers/profiles/abb-terra-ac.toml). They are
deliberately not read from the agent's profile: a wrong profile must not be able to hide
behind a simulator built from it.

What the wallbox does: it applies the current limit last written to 4100h, capped by its rated
current; a car draws the smaller of what it wants and that limit, on one or three phases, and
below 6 A nothing flows (IEC 61851-1 has no smaller PWM current). The wallbox watches the bus:
when no request arrived for the communication timeout (4106h, default 60 s), it drops the
Modbus limit, applies the fall-back limit (4109h; 0 A stops the session, as v1.7 describes)
and sets the "Modbus communication lost" error bit until a new limit is written. Energy
registers integrate the power drawn; the session counter restarts when a car is plugged in.

Write checks (the simulator's, the document's ranges were not available): a 32-bit value must
be written whole, and write-only registers cannot be read (illegal data address); a current
limit above the rated current, a communication timeout below 10 s, or an unknown command code
is refused with illegal data value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.serving import ModbusServing, modbus_unit

# Readable registers (function 3).
SERIAL_NUMBER = 0x4000  # 4 registers, byte-packed
FIRMWARE_VERSION = 0x4004  # 2 registers: major, minor, patch, spare bytes
MAX_RATED_CURRENT = 0x4006  # u32, mA (max rated / user settable current)
ERROR_CODE = 0x4008  # u32, one bit per error
SOCKET_LOCK_STATE = 0x400A  # u32: 0x001 cable in wallbox, 0x010 locked, 0x100 cable in car
CHARGING_STATE = 0x400C  # u32: state code in bits 8-14, bit 15 "below commanded current"
CURRENT_LIMIT = 0x400E  # u32, mA, the limit in force
CURRENT_L1 = 0x4010  # u32, mA; L2 at 4012h, L3 at 4014h
VOLTAGE_L1 = 0x4016  # u32, 0.1 V; L2 at 4018h, L3 at 401Ah
ACTIVE_POWER = 0x401C  # u32, W
SESSION_ENERGY = 0x401E  # u32, Wh, energy delivered in the charging session
COMMUNICATION_TIMEOUT = 0x4020  # u16, s
MODBUS_CURRENT_LIMIT = 0x4022  # u32, mA, the limit last set by Modbus (v1.11)
FALLBACK_LIMIT = 0x4024  # u16, A (v1.11)
READ_BLOCK = (0x4000, 0x26)

# Write-only registers (functions 6 and 16).
SET_CURRENT_LIMIT = 0x4100  # u32, mA
SET_SOCKET_LOCK = 0x4103  # u16: 0 unlock, 1 lock
START_STOP = 0x4105  # u16: 0 start, 1 stop
SET_COMMUNICATION_TIMEOUT = 0x4106  # u16, s
SET_FALLBACK_LIMIT = 0x4109  # u16, A (v1.11)
WRITE_BLOCK = (0x4100, 0x0A)

# Charging state codes (bits 8-14 of 400Ch-400Dh).
STATE_A, STATE_B1, STATE_B2, STATE_C1, STATE_C2, STATE_OTHER = range(6)
BELOW_COMMANDED = 0x8000
ERROR_MODBUS_LOST = 1 << 14

MIN_PWM_CURRENT_A = 6.0
MIN_TIMEOUT_S = 10  # third-party notes on v1.7: settable 10-65535 s


def _u32(value: float) -> list[int]:
    raw = max(0, min(round(value), 0xFFFFFFFF))
    return [(raw >> 16) & 0xFFFF, raw & 0xFFFF]


@dataclass(slots=True)
class Car:
    """What the plugged-in car would draw if the wallbox offered enough."""

    connected: bool = True
    wants_a: float = 16.0
    phases: int = 3


@dataclass(slots=True)
class Wallbox:
    """The wallbox's state; tests set the car and read everything else."""

    car: Car = field(default_factory=Car)
    rated_current_a: float = 32.0
    phases: int = 3  # how the wallbox is wired
    voltage: tuple[float, float, float] = (231.7, 229.4, 233.8)
    communication_timeout_s: int = 60
    fallback_limit_a: int = 0
    modbus_limit_a: float | None = None  # None: never written, or dropped on a timeout
    communication_lost: bool = False
    stopped: bool = False  # a stop command (4105h = 1) ends the session until a start
    session_wh: float = 0.0
    total_wh: float = 1_234_567.0
    errors: int = 0

    def limit_a(self) -> float:
        """The current limit in force (400Eh)."""
        if self.modbus_limit_a is not None:
            wanted = self.modbus_limit_a
        elif self.communication_lost:
            wanted = float(self.fallback_limit_a)
        else:
            wanted = self.rated_current_a
        return min(wanted, self.rated_current_a)

    def phases_in_use(self) -> int:
        return 1 if self.phases == 1 or self.car.phases == 1 else 3

    def draw_a(self) -> float:
        limit = self.limit_a()
        if not self.car.connected or self.stopped or limit < MIN_PWM_CURRENT_A:
            return 0.0
        return max(0.0, min(self.car.wants_a, limit))

    def currents(self) -> tuple[float, float, float]:
        draw = self.draw_a()
        return (draw, 0.0, 0.0) if self.phases_in_use() == 1 else (draw, draw, draw)

    def power_w(self) -> float:
        return sum(v * i for v, i in zip(self.voltage, self.currents(), strict=True))

    def state_code(self) -> int:
        if not self.car.connected:
            return STATE_A
        if self.stopped:
            return STATE_OTHER
        if self.limit_a() < MIN_PWM_CURRENT_A:
            return STATE_C1  # the car is ready, no PWM offered
        if self.car.wants_a <= 0:
            return STATE_B2
        return STATE_C2

    def state_word(self) -> int:
        """Register 400Dh: the state code in the high byte, bit 15 below commanded current."""
        below = self.state_code() == STATE_C2 and self.draw_a() < self.limit_a()
        return (self.state_code() << 8) | (BELOW_COMMANDED if below else 0)

    def error_code(self) -> int:
        return self.errors | (ERROR_MODBUS_LOST if self.communication_lost else 0)


class SimulatedTerraAc(ModbusServing):
    """A Terra AC on a Modbus TCP port or a serial line; `wallbox` is inspectable and settable."""

    def __init__(self, clock: Callable[[], float], unit_id: int = 1) -> None:
        self._clock = clock
        self.unit_id = unit_id
        self.wallbox = Wallbox()
        self.faults = FaultSwitch()
        self.writes: list[tuple[int, list[int]]] = []  # (address, words) accepted
        self._last = clock()
        self._last_request = self._last

    # --- the wallbox's behaviour ------------------------------------------------------------

    def advance(self) -> float:
        """Bring energy and the communication watchdog up to now; returns now."""
        now = self._clock()
        box = self.wallbox
        deadline = self._last_request + box.communication_timeout_s
        if deadline <= now and not box.communication_lost:
            lost_at = max(deadline, self._last)
            self._integrate(self._last, lost_at)
            box.communication_lost = True
            box.modbus_limit_a = None
            self._integrate(lost_at, now)
        else:
            self._integrate(self._last, now)
        self._last = now
        return now

    def _integrate(self, start: float, end: float) -> None:
        wh = self.wallbox.power_w() * max(end - start, 0.0) / 3600
        self.wallbox.session_wh += wh
        self.wallbox.total_wh += wh

    def plug_in(self, car: Car) -> None:
        """A car is plugged in: a new session starts."""
        self.advance()
        self.wallbox.car = car
        car.connected = True
        self.wallbox.session_wh = 0.0
        self.wallbox.stopped = False

    def register_words(self) -> dict[int, list[int]]:
        """What the readable registers hold now, by start address (document's numbers)."""
        box = self.wallbox
        amps = box.currents()
        lock = 0x111 if box.car.connected else 0x000
        modbus_limit = box.modbus_limit_a if box.modbus_limit_a is not None else 0.0
        words: dict[int, list[int]] = {
            SERIAL_NUMBER: [0x2105, 0x0131, 0x0000, 0x0122],
            FIRMWARE_VERSION: [0x0108, 0x1500],  # 1.8.21
            MAX_RATED_CURRENT: _u32(box.rated_current_a * 1000),
            ERROR_CODE: _u32(box.error_code()),
            SOCKET_LOCK_STATE: _u32(lock),
            CHARGING_STATE: [0, box.state_word()],
            CURRENT_LIMIT: _u32(box.limit_a() * 1000),
            ACTIVE_POWER: _u32(box.power_w()),
            SESSION_ENERGY: _u32(box.session_wh),
            COMMUNICATION_TIMEOUT: [box.communication_timeout_s],
            MODBUS_CURRENT_LIMIT: _u32(modbus_limit * 1000),
            FALLBACK_LIMIT: [box.fallback_limit_a],
        }
        for n in range(3):
            words[CURRENT_L1 + 2 * n] = _u32(amps[n] * 1000)
            words[VOLTAGE_L1 + 2 * n] = _u32(box.voltage[n] * 10)
        return words

    def _write(self, address: int, values: list[int]) -> ExcCodes | None:
        box = self.wallbox
        if address == SET_CURRENT_LIMIT and len(values) == 2:
            milliamps = (values[0] << 16) | values[1]
            if milliamps > box.rated_current_a * 1000:
                return ExcCodes.ILLEGAL_VALUE
            box.modbus_limit_a = milliamps / 1000
            box.communication_lost = False
        elif len(values) != 1:
            return ExcCodes.ILLEGAL_ADDRESS  # half a u32, or several registers at once
        elif address == SET_COMMUNICATION_TIMEOUT:
            if values[0] < MIN_TIMEOUT_S:
                return ExcCodes.ILLEGAL_VALUE
            box.communication_timeout_s = values[0]
        elif address == START_STOP:
            if values[0] not in (0, 1):
                return ExcCodes.ILLEGAL_VALUE
            box.stopped = values[0] == 1
        elif address == SET_SOCKET_LOCK:
            if values[0] not in (0, 1):
                return ExcCodes.ILLEGAL_VALUE
        elif address == SET_FALLBACK_LIMIT:
            if values[0] > box.rated_current_a:
                return ExcCodes.ILLEGAL_VALUE
            box.fallback_limit_a = values[0]
        else:
            return ExcCodes.ILLEGAL_ADDRESS
        self.writes.append((address, list(values)))
        return None

    # --- Modbus ------------------------------------------------------------------------------

    def device(self) -> SimDevice:
        """The pymodbus device: the readable block and the write-only block, as holding."""

        def blocks() -> list[SimData]:
            return [
                SimData(READ_BLOCK[0], count=READ_BLOCK[1], values=0, datatype=DataType.REGISTERS),
                SimData(
                    WRITE_BLOCK[0], count=WRITE_BLOCK[1], values=0, datatype=DataType.REGISTERS
                ),
            ]

        # Input registers mirror the holding layout so that function 4 reaches the access
        # callback, which refuses it.
        return modbus_unit(self.unit_id, self._on_access, blocks(), blocks())

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        fault = await self.faults.apply()
        if fault is not None:
            return fault
        if function_code not in (3, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        self.advance()
        self._last_request = self._clock()  # any request keeps the bus healthy
        writing = address >= WRITE_BLOCK[0]
        if set_values is not None:
            if not writing:
                return ExcCodes.ILLEGAL_ADDRESS  # the 40xxh registers are read-only
            return self._write(address, [int(v) for v in set_values])
        if writing:
            return ExcCodes.ILLEGAL_ADDRESS  # the 41xxh registers are write-only
        for start, value in self.register_words().items():
            offset = start - start_address
            registers[offset : offset + len(value)] = value
        return None

    def sim_devices(self) -> list[SimDevice]:
        return [self.device()]
