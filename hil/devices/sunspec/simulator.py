"""The generic simulated SunSpec device: image, pymodbus serving, faults and checked writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.serving import ModbusServing, modbus_unit
from hil.devices.sunspec.image import Clock, SunSpecImage

_Apply = Callable[[float, float], None]  # (value written, now)


@dataclass(frozen=True, slots=True)
class _Control:
    """A writable point: accepted range (in the point's unit) and what a write does."""

    low: float
    high: float
    apply: _Apply


class SunSpecSimulator(ModbusServing):
    """What the three devices share: the image, pymodbus serving, faults and writes."""

    def __init__(
        self,
        models: Sequence[tuple[int, int]],
        clock: Clock,
        unit_id: int,
        base: int,
        model_name: str,
    ) -> None:
        self.image = SunSpecImage(base, models)
        self.faults = FaultSwitch()
        self.unit_id = unit_id
        self.reads = 0
        self.writes = 0
        self._clock = clock
        self._controls: dict[tuple[int, str], _Control] = {}
        self.image.put_raw(1, "Mn", "edge-agent HIL")
        self.image.put_raw(1, "Md", model_name)
        self.image.put_raw(1, "Vr", "1.0.0")
        self.image.put_raw(1, "SN", f"SIM-{model_name}-{unit_id}")
        self.image.put_raw(1, "DA", unit_id)

    @property
    def base(self) -> int:
        return self.image.base

    def update(self) -> None:
        """Bring the simulated values up to the clock's now (reads do this themselves)."""
        self._advance(self._clock())
        self._publish()

    def _advance(self, now: float) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        raise NotImplementedError

    def _control(self, model_id: int, name: str, low: float, high: float, apply: _Apply) -> None:
        self._controls[(model_id, name)] = _Control(low, high, apply)

    def device(self) -> SimDevice:
        """Holding registers from the base on; coils and input registers are refused."""
        holding = [
            SimData(self.image.base, count=self.image.size, values=0, datatype=DataType.REGISTERS)
        ]
        return modbus_unit(self.unit_id, self._on_access, holding)

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
        now = self._clock()
        self._advance(now)
        if set_values is not None:
            failed = self._write(address, [int(v) for v in set_values], now)
            if failed is not None:
                return failed
            self.writes += 1
        else:
            self.reads += 1
        self._publish()
        image = self.image.registers()
        offset = self.image.base - start_address
        registers[offset : offset + len(image)] = image
        return None

    def _write(self, address: int, values: list[int], now: float) -> ExcCodes | None:
        """All points of a write are checked before any takes effect."""
        decoded = self.image.decode_write(address, values)
        if isinstance(decoded, ExcCodes):
            return decoded
        accepted: list[tuple[_Control, float]] = []
        for model_id, path, point, raw in decoded:
            control = self._controls.get((model_id, path))
            if control is None:
                return ExcCodes.ILLEGAL_ADDRESS  # read-only or not simulated
            value = self.image.value_of(point, raw)
            if not control.low <= value <= control.high:
                return ExcCodes.ILLEGAL_VALUE
            accepted.append((control, value))
        for control, value in accepted:
            control.apply(value, now)
        return None

    def sim_devices(self) -> list[SimDevice]:
        return [self.device()]
