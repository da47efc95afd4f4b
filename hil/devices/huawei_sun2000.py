"""A simulated Huawei SUN2000 string inverter, served over real Modbus (pymodbus simulator).

The register addresses, types and gains below are typed from Huawei's "Solar Inverter Modbus
Interface Definitions" (V3.0 interface), Issue 05, 2023-02-16: holding registers only, the
document's register number is the wire address, 32-bit values high word first, power in kW
with gain 1000, energy in kWh with gain 100. They are deliberately not read from the agent's
profile: a wrong profile must not be able to hide behind a simulator built from it.

The inverter converts what the PV array offers (a day curve, or a fixed power in tests) into AC
power, capped by its rated power and by the active-power derating a client writes to 40125
(taken here as a percentage of the rated power Pn). A derating outside 0-100.0 %, what a
PV-only inverter is given, is refused with exception 3 (illegal data value); models with a
battery also take down to -100.0 % (charge from the grid), which this simulator does not. Its
energy counter integrates the AC power it showed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.serving import ModbusServing, modbus_unit

# Register numbers from the Huawei document (holding registers, number = wire address).
MODEL = 30000  # STR, 15 registers
SERIAL_NUMBER = 30015  # STR, 10 registers
PART_NUMBER = 30025  # STR, 10 registers
PV_INPUTS = 30071  # U16, number of PV strings
MPP_TRACKERS = 30072  # U16
RATED_POWER = 30073  # U32, kW, gain 1000
MAX_ACTIVE_POWER = 30075  # U32, kW, gain 1000 (Pmax)
ALARM_1 = 32008  # U16 bitfield
ALARM_2 = 32009  # U16 bitfield
ALARM_3 = 32010  # U16 bitfield
PV1_VOLTAGE = 32016  # I16, V, gain 10; PVn voltage at 32014 + 2n
PV1_CURRENT = 32017  # I16, A, gain 100; PVn current at 32015 + 2n
INPUT_POWER = 32064  # I32, kW, gain 1000
LINE_VOLTAGE_AB = 32066  # U16, V, gain 10 (BC 32067, CA 32068)
PHASE_A_VOLTAGE = 32069  # U16, V, gain 10 (B 32070, C 32071)
PHASE_A_CURRENT = 32072  # I32, A, gain 1000 (B 32074, C 32076)
PEAK_POWER_TODAY = 32078  # I32, kW, gain 1000
ACTIVE_POWER = 32080  # I32, kW, gain 1000
REACTIVE_POWER = 32082  # I32, kvar, gain 1000
POWER_FACTOR = 32084  # I16, gain 1000
GRID_FREQUENCY = 32085  # U16, Hz, gain 100
EFFICIENCY = 32086  # U16, %, gain 100
INTERNAL_TEMPERATURE = 32087  # I16, degC, gain 10
DEVICE_STATUS = 32089  # U16 code
FAULT_CODE = 32090  # U16
TOTAL_YIELD = 32106  # U32, kWh, gain 100
DAILY_YIELD = 32114  # U32, kWh, gain 100
POWER_DERATING_PCT = 40125  # I16, %, gain 10, read/write

PV_REGISTERS_MAX = 24  # PV1..PV24 have addresses in the document

# Device status codes (32089) the simulator shows.
STATUS_ON_GRID = 0x0200
STATUS_POWER_LIMITED = 0x0201
STATUS_NO_IRRADIATION = 0xA000

DERATING_RAW_RANGE = (0, 1000)  # 0.0 .. 100.0 % (gain 10); a PV-only inverter


@dataclass(frozen=True, slots=True)
class Nameplate:
    model: str = "SUN2000-100KTL-M1"
    serial_number: str = "TA2290017531"
    part_number: str = "01074797-001"
    rated_power_w: float = 100_000.0
    max_active_power_w: float = 110_000.0
    pv_inputs: int = 20
    mpp_trackers: int = 10


@dataclass(frozen=True, slots=True)
class InverterValues:
    """What the inverter shows, in the document's quantities with SI units (W, V, A, Hz, kWh)."""

    pv_voltage: tuple[float, ...]
    pv_current: tuple[float, ...]
    input_power_w: float
    phase_voltage: tuple[float, float, float]
    phase_current: tuple[float, float, float]
    active_power_w: float
    reactive_power_var: float
    power_factor: float
    frequency_hz: float
    efficiency_pct: float
    temperature_c: float
    status: int
    total_yield_kwh: float
    daily_yield_kwh: float
    peak_power_today_w: float
    derating_pct: float
    alarms: tuple[int, int, int]


PvSource = Callable[[], float]
"""What the PV array offers now, in W DC."""


class FixedPv:
    """A PV array that offers whatever a test sets."""

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def __call__(self) -> float:
        return self.watts


def local_hour() -> float:
    now = datetime.now()
    return now.hour + now.minute / 60 + now.second / 3600


class DayCurve:
    """A clear day: a sine bump from sunrise to sunset, with the hour from an injectable clock."""

    def __init__(
        self,
        peak_w: float,
        hour_of_day: Callable[[], float] = local_hour,
        sunrise_h: float = 6.0,
        sunset_h: float = 20.0,
    ) -> None:
        self._peak_w = peak_w
        self._hour_of_day = hour_of_day
        self._sunrise_h = sunrise_h
        self._sunset_h = sunset_h

    def __call__(self) -> float:
        hour = self._hour_of_day() % 24
        if not self._sunrise_h < hour < self._sunset_h:
            return 0.0
        phase = (hour - self._sunrise_h) / (self._sunset_h - self._sunrise_h)
        return self._peak_w * math.pow(math.sin(math.pi * phase), 1.5)


def _s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def _word(value: float, gain: float) -> list[int]:
    return [round(value * gain) & 0xFFFF]


def _dword(value: float, gain: float) -> list[int]:
    raw = round(value * gain) & 0xFFFFFFFF
    return [raw >> 16, raw & 0xFFFF]


def _text(value: str, registers: int) -> list[int]:
    raw = value.encode("ascii")[: registers * 2].ljust(registers * 2, b"\0")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


class SimulatedSun2000(ModbusServing):
    """A SUN2000 on a Modbus TCP port or serial line; `values` is what it showed last."""

    EFFICIENCY = 0.985
    MIN_DC_W = 50.0  # below this the inverter waits for irradiation

    def __init__(
        self,
        source: PvSource,
        clock: Callable[[], float],
        unit_id: int = 1,
        nameplate: Nameplate | None = None,
        phase_voltage: tuple[float, float, float] = (231.4, 229.7, 232.6),
        frequency_hz: float = 50.02,
        power_factor: float = 0.993,
        total_yield_kwh: float = 123_456.78,
    ) -> None:
        self._source = source
        self._clock = clock
        self.unit_id = unit_id
        self.nameplate = nameplate or Nameplate()
        self._phase_voltage = phase_voltage
        self._frequency_hz = frequency_hz
        self._power_factor = power_factor
        self._total_kwh = total_yield_kwh
        self._daily_kwh = 0.0
        self._peak_w = 0.0
        self.derating_pct = 100.0
        self.alarms: tuple[int, int, int] = (0, 0, 0)  # Alarm 1, 2, 3 bits as the device shows
        self.faults = FaultSwitch()
        self.reads = 0
        self.writes = 0
        self._last = clock()
        self.values = self._compute()

    def advance(self) -> InverterValues:
        """Count the energy of the power shown since the last access, then show the new state."""
        now = self._clock()
        kwh = self.values.active_power_w / 1000 * max(now - self._last, 0.0) / 3600
        self._total_kwh += kwh
        self._daily_kwh += kwh
        self._last = now
        self.values = self._compute()
        return self.values

    def _compute(self) -> InverterValues:
        plate = self.nameplate
        offered = max(self._source(), 0.0)
        cap = min(plate.max_active_power_w, plate.rated_power_w * self.derating_pct / 100)
        if offered < self.MIN_DC_W:
            ac, status = 0.0, STATUS_NO_IRRADIATION
        else:
            ac = min(offered * self.EFFICIENCY, cap)
            limited = offered * self.EFFICIENCY > cap and self.derating_pct < 100
            status = STATUS_POWER_LIMITED if limited else STATUS_ON_GRID
        dc = ac / self.EFFICIENCY
        self._peak_w = max(self._peak_w, ac)
        inputs = plate.pv_inputs
        lit = offered >= self.MIN_DC_W
        voltages = tuple(612.3 + 1.7 * n if lit else 0.0 for n in range(inputs))
        currents = tuple(0.0 if v == 0 else dc / inputs / v for v in voltages)
        pf = self._power_factor if ac else 1.0
        phase_current = tuple(ac / 3 / (v * pf) for v in self._phase_voltage)
        return InverterValues(
            pv_voltage=voltages,
            pv_current=currents,
            input_power_w=dc,
            phase_voltage=self._phase_voltage,
            phase_current=(phase_current[0], phase_current[1], phase_current[2]),
            active_power_w=ac,
            reactive_power_var=ac * math.tan(math.acos(pf)),
            power_factor=pf,
            frequency_hz=self._frequency_hz,
            efficiency_pct=self.EFFICIENCY * 100 if ac else 0.0,
            temperature_c=31.5 + 18.0 * ac / plate.rated_power_w,
            status=status,
            total_yield_kwh=self._total_kwh,
            daily_yield_kwh=self._daily_kwh,
            peak_power_today_w=self._peak_w,
            derating_pct=self.derating_pct,
            alarms=self.alarms,
        )

    def register_words(self) -> dict[int, list[int]]:
        """Every register the simulator fills, from `values` and the nameplate, as sent."""
        v, plate = self.values, self.nameplate
        words: dict[int, list[int]] = {
            MODEL: _text(plate.model, 15),
            SERIAL_NUMBER: _text(plate.serial_number, 10),
            PART_NUMBER: _text(plate.part_number, 10),
            PV_INPUTS: [plate.pv_inputs],
            MPP_TRACKERS: [plate.mpp_trackers],
            RATED_POWER: _dword(plate.rated_power_w / 1000, 1000),
            MAX_ACTIVE_POWER: _dword(plate.max_active_power_w / 1000, 1000),
            ALARM_1: [v.alarms[0]],
            ALARM_2: [v.alarms[1]],
            ALARM_3: [v.alarms[2]],
            INPUT_POWER: _dword(v.input_power_w / 1000, 1000),
            ACTIVE_POWER: _dword(v.active_power_w / 1000, 1000),
            PEAK_POWER_TODAY: _dword(v.peak_power_today_w / 1000, 1000),
            REACTIVE_POWER: _dword(v.reactive_power_var / 1000, 1000),
            POWER_FACTOR: _word(v.power_factor, 1000),
            GRID_FREQUENCY: _word(v.frequency_hz, 100),
            EFFICIENCY: _word(v.efficiency_pct, 100),
            INTERNAL_TEMPERATURE: _word(v.temperature_c, 10),
            DEVICE_STATUS: [v.status],
            FAULT_CODE: [0],
            TOTAL_YIELD: _dword(v.total_yield_kwh, 100),
            DAILY_YIELD: _dword(v.daily_yield_kwh, 100),
            POWER_DERATING_PCT: _word(v.derating_pct, 10),
        }
        for n in range(min(len(v.pv_voltage), PV_REGISTERS_MAX)):
            words[PV1_VOLTAGE + 2 * n] = _word(v.pv_voltage[n], 10)
            words[PV1_CURRENT + 2 * n] = _word(v.pv_current[n], 100)
        a, b, c = v.phase_voltage
        for offset, phase_v in enumerate(v.phase_voltage):
            words[PHASE_A_VOLTAGE + offset] = _word(phase_v, 10)
            words[PHASE_A_CURRENT + 2 * offset] = _dword(v.phase_current[offset], 1000)
        for offset, (x, y) in enumerate(((a, b), (b, c), (c, a))):
            line = math.sqrt(x * x + y * y + x * y)  # phasors 120 degrees apart
            words[LINE_VOLTAGE_AB + offset] = _word(line, 10)
        return words

    def device(self) -> SimDevice:
        """Holding registers in the document's three areas; the gaps answer exception 2."""
        holding = [
            SimData(30000, count=90, values=0, datatype=DataType.REGISTERS, readonly=True),
            SimData(32000, count=120, values=0, datatype=DataType.REGISTERS, readonly=True),
            SimData(POWER_DERATING_PCT, count=1, values=1000, datatype=DataType.REGISTERS),
        ]
        return modbus_unit(self.unit_id, self._on_access, holding)  # refuses the other blocks

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if (fault := await self.faults.apply()) is not None:
            return fault
        if function_code not in (3, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        self.advance()
        if set_values is not None:
            refused = self._write(address, [int(v) for v in set_values])
            if refused is not None:
                return refused
            self.values = self._compute()  # a new derating shows at once
        else:
            self.reads += 1
            for first, words in self.register_words().items():
                offset = first - start_address
                registers[offset : offset + len(words)] = words
        return None

    def _write(self, address: int, values: list[int]) -> ExcCodes | None:
        """Range-check every written register before taking any of them."""
        low, high = DERATING_RAW_RANGE
        for index, raw in enumerate(values):
            if address + index == POWER_DERATING_PCT and not low <= _s16(raw) <= high:
                return ExcCodes.ILLEGAL_VALUE
        for index, raw in enumerate(values):
            if address + index == POWER_DERATING_PCT:
                self.derating_pct = _s16(raw) / 10
        self.writes += 1
        return None

    def sim_devices(self) -> list[SimDevice]:
        return [self.device()]
