"""Pylontech low-voltage BMS serial protocol: the INFO parsers, one per command's reply.

Facts from Pylontech's "RS485-protocol-pylon-low-voltage" V3.3 (2018-08-21). INFO is what
`pylontech.decode_response` returns, already turned from hex ASCII into bytes; its fields are
big-endian. Scales: cell and pack voltage in mV, pack current signed in 10 mA (+ = charging),
capacities in mAh, temperatures in 0.1 K with 2731 as 0 degC, 0x92 current limits signed in
0.1 A. A parser raises `FrameError` (short_reply or decode) for INFO it cannot use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from agent.drivers.pylontech import FrameError

KELVIN_OFFSET_DK = 2731  # 0 degC in the protocol's 0.1 K
EXTENDED_CAPACITY = 4  # "user defined number" announcing the 3-byte capacity fields (> 65 Ah)


class _Info:
    """Reads big-endian fields off a reply's INFO, refusing to run past its end."""

    def __init__(self, info: bytes) -> None:
        self._info = info
        self._at = 0

    def raw(self, count: int) -> bytes:
        if self._at + count > len(self._info):
            raise FrameError("short_reply", f"INFO ends after {len(self._info)} bytes")
        chunk = self._info[self._at : self._at + count]
        self._at += count
        return chunk

    def _take(self, count: int) -> int:
        return int.from_bytes(self.raw(count), "big")

    def u8(self) -> int:
        return self._take(1)

    def u16(self) -> int:
        return self._take(2)

    def s16(self) -> int:
        value = self._take(2)
        return value - 0x10000 if value & 0x8000 else value

    def u24(self) -> int:
        return self._take(3)

    def text(self, count: int) -> str:
        return self.raw(count).decode("ascii", errors="replace").strip("\x00 ")


def _celsius(deci_kelvin: int) -> float:
    return (deci_kelvin - KELVIN_OFFSET_DK) / 10


@dataclass(frozen=True, slots=True)
class AnalogValues:
    """INFO of 0x42 for one pack."""

    info_flag: int
    address: int
    cell_voltages_mv: tuple[int, ...]
    temperatures_c: tuple[float, ...]  # the first is the BMS board, the others cell groups
    current_a: float  # + = charging
    voltage_v: float
    remaining_ah: float
    total_ah: float
    cycles: int
    user_defined: int  # 2: capacities in the 2-byte fields; 4: in the extended 3-byte ones

    @property
    def soc_pct(self) -> float | None:
        """Remaining over total capacity; None when the pack reports no total."""
        if self.total_ah <= 0:
            return None
        return min(100.0, max(0.0, self.remaining_ah * 100 / self.total_ah))


_MAX_CELLS = 48  # sanity bounds: a count beyond these is a misread, not a pack
_MAX_TEMPERATURES = 16


def parse_analog_values(info: bytes) -> AnalogValues:
    data = _Info(info)
    info_flag, address, cells = data.u8(), data.u8(), data.u8()
    if not 0 < cells <= _MAX_CELLS:
        raise FrameError("decode", f"implausible cell count {cells}")
    cell_mv = tuple(data.u16() for _ in range(cells))
    count = data.u8()
    if count > _MAX_TEMPERATURES:
        raise FrameError("decode", f"implausible temperature count {count}")
    temperatures = tuple(_celsius(data.u16()) for _ in range(count))
    current_10ma, voltage_mv = data.s16(), data.u16()
    remaining_mah, user_defined, total_mah, cycles = data.u16(), data.u8(), data.u16(), data.u16()
    if user_defined >= EXTENDED_CAPACITY:
        remaining_mah, total_mah = data.u24(), data.u24()
    return AnalogValues(
        info_flag=info_flag,
        address=address,
        cell_voltages_mv=cell_mv,
        temperatures_c=temperatures,
        current_a=current_10ma / 100,
        voltage_v=voltage_mv / 1000,
        remaining_ah=remaining_mah / 1000,
        total_ah=total_mah / 1000,
        cycles=cycles,
        user_defined=user_defined,
    )


class ChargeStatus(IntFlag):
    """The charge/discharge status byte of 0x92."""

    FULL_CHARGE_REQUEST = 0x08
    CHARGE_IMMEDIATELY_2 = 0x10  # SOC 9-13 %
    CHARGE_IMMEDIATELY_1 = 0x20  # SOC 5-9 %
    DISCHARGE_ENABLE = 0x40
    CHARGE_ENABLE = 0x80


@dataclass(frozen=True, slots=True)
class ChargeManagement:
    """INFO of 0x92: the limits the BMS wants the inverter to respect now."""

    address: int
    charge_voltage_limit_v: float
    discharge_voltage_limit_v: float
    charge_current_limit_a: float
    discharge_current_limit_a: float  # as sent: packs send it negative
    status: ChargeStatus


def parse_charge_management(info: bytes) -> ChargeManagement:
    data = _Info(info)
    address, charge_mv, discharge_mv = data.u8(), data.u16(), data.u16()
    charge_da, discharge_da, status = data.s16(), data.s16(), data.u8()
    return ChargeManagement(
        address=address,
        charge_voltage_limit_v=charge_mv / 1000,
        discharge_voltage_limit_v=discharge_mv / 1000,
        charge_current_limit_a=charge_da / 10,
        discharge_current_limit_a=discharge_da / 10,
        status=ChargeStatus(status),
    )


class AlarmState(IntEnum):
    """The per-value alarm state byte of 0x44."""

    NORMAL = 0x00
    BELOW_LOWER_LIMIT = 0x01
    ABOVE_UPPER_LIMIT = 0x02
    OTHER_ERROR = 0xF0


class Alarm(IntFlag):
    """0x44 reduced to one integer: the `alarms` quantity's bits.

    Bits 0-9 summarise the per-value states; bits 16-23 are status 1 (the protections the
    BMS has tripped) shifted up by 16, so its reserved bit 3 stays unused.
    """

    CELL_UNDER_VOLTAGE = 1 << 0
    CELL_OVER_VOLTAGE = 1 << 1
    TEMPERATURE_LOW = 1 << 2
    TEMPERATURE_HIGH = 1 << 3
    CHARGE_CURRENT = 1 << 4
    PACK_UNDER_VOLTAGE = 1 << 5
    PACK_OVER_VOLTAGE = 1 << 6
    DISCHARGE_CURRENT = 1 << 7
    OTHER_ERROR = 1 << 8
    CELL_FAULT = 1 << 9  # status 4/5: a cell's voltage measurement failed
    PROTECT_MODULE_OVER_VOLTAGE = 1 << 16
    PROTECT_CELL_UNDER_VOLTAGE = 1 << 17
    PROTECT_CHARGE_OVER_CURRENT = 1 << 18
    PROTECT_DISCHARGE_OVER_CURRENT = 1 << 20
    PROTECT_DISCHARGE_OVER_TEMPERATURE = 1 << 21
    PROTECT_CHARGE_OVER_TEMPERATURE = 1 << 22
    PROTECT_MODULE_UNDER_VOLTAGE = 1 << 23


_STATUS1_SHIFT = 16
_STATUS1_BITS = 0xF7  # bit 3 is reserved
_STATE_TEXT: dict[int, str] = {
    AlarmState.BELOW_LOWER_LIMIT: "below lower limit",
    AlarmState.ABOVE_UPPER_LIMIT: "above upper limit",
    AlarmState.OTHER_ERROR: "other error",
}
_PROTECTION_TEXT: dict[Alarm, str] = {
    Alarm.PROTECT_MODULE_OVER_VOLTAGE: "module over voltage protection",
    Alarm.PROTECT_CELL_UNDER_VOLTAGE: "cell under voltage protection",
    Alarm.PROTECT_CHARGE_OVER_CURRENT: "charge over current protection",
    Alarm.PROTECT_DISCHARGE_OVER_CURRENT: "discharge over current protection",
    Alarm.PROTECT_DISCHARGE_OVER_TEMPERATURE: "discharge over temperature protection",
    Alarm.PROTECT_CHARGE_OVER_TEMPERATURE: "charge over temperature protection",
    Alarm.PROTECT_MODULE_UNDER_VOLTAGE: "module under voltage protection",
}


def _state_bits(state: int, low: Alarm, high: Alarm) -> Alarm:
    if state == AlarmState.NORMAL:
        return Alarm(0)
    if state == AlarmState.BELOW_LOWER_LIMIT:
        return low
    if state == AlarmState.ABOVE_UPPER_LIMIT:
        return high
    return Alarm.OTHER_ERROR  # 0xF0, or a code the document does not define


def _state_text(state: int) -> str:
    return _STATE_TEXT.get(state, f"state 0x{state:02X}")


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """INFO of 0x44 for one pack."""

    info_flag: int
    address: int
    cell_states: tuple[int, ...]
    temperature_states: tuple[int, ...]  # the first is the BMS board
    charge_current_state: int
    pack_voltage_state: int
    discharge_current_state: int
    status: tuple[int, int, int, int, int]  # status 1..5 as sent

    @property
    def cell_faults(self) -> tuple[int, ...]:
        """1-based numbers of the cells status 4 (cells 1-8) and 5 (9-16) flag as faulty."""
        bits = self.status[3] | (self.status[4] << 8)
        return tuple(n + 1 for n in range(16) if bits & (1 << n))

    @property
    def alarms(self) -> Alarm:
        flags = Alarm(0)
        for state in self.cell_states:
            flags |= _state_bits(state, Alarm.CELL_UNDER_VOLTAGE, Alarm.CELL_OVER_VOLTAGE)
        for state in self.temperature_states:
            flags |= _state_bits(state, Alarm.TEMPERATURE_LOW, Alarm.TEMPERATURE_HIGH)
        flags |= _state_bits(self.charge_current_state, Alarm.CHARGE_CURRENT, Alarm.CHARGE_CURRENT)
        flags |= _state_bits(
            self.pack_voltage_state, Alarm.PACK_UNDER_VOLTAGE, Alarm.PACK_OVER_VOLTAGE
        )
        flags |= _state_bits(
            self.discharge_current_state, Alarm.DISCHARGE_CURRENT, Alarm.DISCHARGE_CURRENT
        )
        if self.cell_faults:
            flags |= Alarm.CELL_FAULT
        return flags | Alarm((self.status[0] & _STATUS1_BITS) << _STATUS1_SHIFT)

    def descriptions(self) -> list[str]:
        """The alarms in words, one line each, for logs and the operator."""
        lines: list[str] = []
        for number, state in enumerate(self.cell_states, start=1):
            if state != AlarmState.NORMAL:
                lines.append(f"cell {number} voltage {_state_text(state)}")
        for number, state in enumerate(self.temperature_states, start=1):
            if state != AlarmState.NORMAL:
                where = "BMS board" if number == 1 else f"temperature {number}"
                lines.append(f"{where} {_state_text(state)}")
        for name, state in (
            ("charge current", self.charge_current_state),
            ("pack voltage", self.pack_voltage_state),
            ("discharge current", self.discharge_current_state),
        ):
            if state != AlarmState.NORMAL:
                lines.append(f"{name} {_state_text(state)}")
        lines.extend(f"cell {number} fault" for number in self.cell_faults)
        tripped = Alarm((self.status[0] & _STATUS1_BITS) << _STATUS1_SHIFT)
        lines.extend(text for flag, text in _PROTECTION_TEXT.items() if flag in tripped)
        return lines


def parse_alarm_info(info: bytes) -> AlarmInfo:
    data = _Info(info)
    info_flag, address, cells = data.u8(), data.u8(), data.u8()
    if cells > _MAX_CELLS:
        raise FrameError("decode", f"implausible cell count {cells}")
    cell_states = tuple(data.u8() for _ in range(cells))
    count = data.u8()
    if count > _MAX_TEMPERATURES:
        raise FrameError("decode", f"implausible temperature count {count}")
    temperature_states = tuple(data.u8() for _ in range(count))
    charge, voltage, discharge = data.u8(), data.u8(), data.u8()
    status = (data.u8(), data.u8(), data.u8(), data.u8(), data.u8())
    return AlarmInfo(
        info_flag=info_flag,
        address=address,
        cell_states=cell_states,
        temperature_states=temperature_states,
        charge_current_state=charge,
        pack_voltage_state=voltage,
        discharge_current_state=discharge,
        status=status,
    )


@dataclass(frozen=True, slots=True)
class ManufacturerInfo:
    """INFO of 0x51: battery name, software version, manufacturer name."""

    battery_name: str
    software_version: tuple[int, int]
    manufacturer: str


def parse_manufacturer_info(info: bytes) -> ManufacturerInfo:
    data = _Info(info)
    name = data.text(10)
    major, minor = data.u8(), data.u8()
    return ManufacturerInfo(name, (major, minor), data.text(20))
