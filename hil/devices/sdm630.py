"""A simulated Eastron SDM630 three-phase meter, served over real Modbus (pymodbus simulator).

The register addresses below are typed from Eastron's "SDM630 Modbus Protocol" document
(input registers 30001..., float32, high word first), deliberately not read from the agent's
profile: a wrong profile must not be able to hide behind a simulator built from it.

Values are computed when the meter is read, from a `MeterSource`: a load curve with noise for
the demo, or fixed values that a test sets and compares against.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.serving import ModbusServing, modbus_unit

# Register numbers from the Eastron document (3xxxx = input register, address = number - 30001).
_INPUT_REGISTERS: dict[int, str] = {
    30001: "voltage_l1",
    30003: "voltage_l2",
    30005: "voltage_l3",
    30007: "current_l1",
    30009: "current_l2",
    30011: "current_l3",
    30013: "power_l1",
    30015: "power_l2",
    30017: "power_l3",
    30043: "average_voltage",
    30049: "current_sum",
    30053: "total_power",
    30063: "power_factor",
    30071: "frequency",
    30073: "import_kwh",
    30075: "export_kwh",
    30343: "total_kwh",
}
_INPUT_BLOCK_REGISTERS = 0x0180  # the meter answers reads anywhere in 30001..30384


@dataclass(frozen=True, slots=True)
class MeterValues:
    """What the meter shows, in the meter's own units (V, A, W, Hz, kWh)."""

    voltage: tuple[float, float, float]
    current: tuple[float, float, float]
    power: tuple[float, float, float]
    power_factor: float
    frequency: float
    import_kwh: float
    export_kwh: float

    @property
    def total_power(self) -> float:
        return sum(self.power)

    def register_values(self) -> dict[str, float]:
        return {
            "voltage_l1": self.voltage[0],
            "voltage_l2": self.voltage[1],
            "voltage_l3": self.voltage[2],
            "current_l1": self.current[0],
            "current_l2": self.current[1],
            "current_l3": self.current[2],
            "power_l1": self.power[0],
            "power_l2": self.power[1],
            "power_l3": self.power[2],
            "average_voltage": sum(self.voltage) / 3,
            "current_sum": sum(self.current),
            "total_power": self.total_power,
            "power_factor": self.power_factor,
            "frequency": self.frequency,
            "import_kwh": self.import_kwh,
            "export_kwh": self.export_kwh,
            "total_kwh": self.import_kwh + self.export_kwh,
        }


MeterSource = Callable[[float], MeterValues]
"""Given monotonic seconds, what the meter shows now."""


class FixedMeter:
    """Holds whatever values a test sets."""

    def __init__(self, values: MeterValues) -> None:
        self.values = values

    def __call__(self, now: float) -> MeterValues:
        return self.values


class LoadCurveMeter:
    """A site's grid connection over a day: a daily load curve, phase imbalance and noise.

    The energy registers integrate the power actually shown, so they rise consistently with it.
    """

    def __init__(
        self,
        base_kw: float = 80.0,
        swing_kw: float = 60.0,
        voltage_v: float = 230.0,
        seed: int = 1,
        day_offset_s: float = 0.0,
    ) -> None:
        self._base_w = base_kw * 1000
        self._swing_w = swing_kw * 1000
        self._voltage = voltage_v
        self._random = random.Random(seed)
        self._day_offset_s = day_offset_s
        self._import_kwh = 10_000.0
        self._export_kwh = 250.0
        self._last: float | None = None

    def __call__(self, now: float) -> MeterValues:
        hour = ((now + self._day_offset_s) / 3600) % 24
        # Two humps (morning and evening) on a night floor, like a taxi hub's charging load.
        shape = (
            0.5
            - 0.3 * math.cos(2 * math.pi * (hour - 3) / 24)
            - 0.2 * math.cos(4 * math.pi * (hour - 3) / 24)
        )
        total = self._base_w + self._swing_w * shape
        total *= 1 + self._random.gauss(0, 0.02)
        shares = (0.35, 0.33, 0.32)
        power = tuple(total * share for share in shares)
        voltage = tuple(self._voltage + self._random.gauss(0, 1.2) for _ in range(3))
        power_factor = 0.97
        current = tuple(p / (v * power_factor) for p, v in zip(power, voltage, strict=True))
        if self._last is not None:
            hours = max(now - self._last, 0.0) / 3600
            if total >= 0:
                self._import_kwh += total / 1000 * hours
            else:
                self._export_kwh += -total / 1000 * hours
        self._last = now
        return MeterValues(
            voltage=(voltage[0], voltage[1], voltage[2]),
            current=(current[0], current[1], current[2]),
            power=(power[0], power[1], power[2]),
            power_factor=power_factor,
            frequency=50.0 + self._random.gauss(0, 0.01),
            import_kwh=self._import_kwh,
            export_kwh=self._export_kwh,
        )


def _float_words(value: float) -> tuple[int, int]:
    raw = struct.pack(">f", value)
    return int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big")


class SimulatedSdm630(ModbusServing):
    """An SDM630 on a Modbus TCP port; `values` is what it showed on its last read."""

    def __init__(
        self,
        source: MeterSource,
        clock: Callable[[], float],
        unit_id: int = 1,
    ) -> None:
        self._source = source
        self._clock = clock
        self.unit_id = unit_id
        self.values: MeterValues = source(clock())
        self.reads = 0
        self.faults = FaultSwitch()

    def device(self) -> SimDevice:
        """The pymodbus simulator device: input registers only, like the real meter's 3xxxx."""
        inputs = [SimData(0, count=_INPUT_BLOCK_REGISTERS, values=0, datatype=DataType.REGISTERS)]
        holding = [SimData(0, count=2, values=0, datatype=DataType.REGISTERS)]
        # `_on_access` refuses coil reads as the meter does.
        return modbus_unit(self.unit_id, self._on_access, holding, inputs)

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
        if function_code in (1, 2, 5, 15):
            return ExcCodes.ILLEGAL_FUNCTION
        if function_code != 4:
            return None
        self.values = self._source(self._clock())
        self.reads += 1
        shown = self.values.register_values()
        for number, name in _INPUT_REGISTERS.items():
            offset = number - 30001 - start_address
            high, low = _float_words(shown[name])
            registers[offset] = high
            registers[offset + 1] = low
        return None

    def sim_devices(self) -> list[SimDevice]:
        return [self.device()]
