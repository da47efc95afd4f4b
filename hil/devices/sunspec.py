"""Simulated SunSpec devices (meter, PV inverter, battery), served over real Modbus.

The register image is built with pysunspec2's own model classes (`sunspec2.device.Model`):
point offsets, encodings, which scale factor belongs to which point and the "not implemented"
values all come from pysunspec2 and the SunSpec Alliance's model definitions it ships. It
deliberately does not use the agent's `agent/drivers/sunspec_models.py`: a layout bug there
must show up as a wrong reading, not be mirrored here. Marker, bases and the end model
(0xFFFF, L = 0) follow the SunSpec Information Model Specification.

Values are computed when the device is read, from the clock the constructor takes, so they
move on their own (PV over the day, a battery's state of charge) and a test can step time.

Sign conventions (the SunSpec JSON does not state one for models 103 and 802, so these are the
simulator's, stated for profile authors): model 203 W is positive when the site imports; model
103 W is positive when the inverter delivers AC power, so a battery inverter shows charging as
negative W; model 802 W and A are positive when the battery discharges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice
from sunspec2.device import Model

from hil.devices.faults import FaultSwitch
from hil.devices.sdm630 import MeterSource, MeterValues
from hil.devices.serving import ModbusServing

SUNSPEC_BASES = (40000, 0, 50000)
_MARKER = (0x5375, 0x6E53)  # "SunS"
_END = (0xFFFF, 0)

Clock = Callable[[], float]
"""Seconds; monotonic for the demo, a stepped fake in tests."""

# Raw ranges a value is clamped to; each type's "not implemented" marker stays out of reach.
_RAW_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-0x7FFF, 0x7FFF),
    "uint16": (0, 0xFFFE),
    "count": (0, 0xFFFE),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFE),
    "sunssf": (-10, 10),
    "enum16": (0, 0xFFFE),
    "bitfield16": (0, 0xFFFE),
    "bitfield32": (0, 0xFFFFFFFE),
}
_ACCUMULATORS = {"acc16": 1 << 16, "acc32": 1 << 32, "acc64": 1 << 64}  # these wrap around
_FLOATS = {"float32", "float64"}
_POWER_SFS = {"W_SF", "VA_SF", "VAr_SF", "DCW_SF", "WChaMax_SF", "WChaDisChaMax_SF"}


def _fitting(factors: Mapping[str, int], peak: float) -> dict[str, int]:
    """The power scale factors raised until `peak` fits an int16: large sites need W_SF 1+."""
    shift = 0
    while peak / 10 ** (factors.get("W_SF", 0) + shift) > 0x7FFF:
        shift += 1
    return {n: sf + shift if n in _POWER_SFS else sf for n, sf in factors.items()}


class SunSpecImage:
    """The marker, a chain of pysunspec2 models and the end model, from `base` on."""

    def __init__(self, base: int, models: Sequence[tuple[int, int]]) -> None:
        """`models`: (model id, repeats of its repeating group) in chain order."""
        if base not in SUNSPEC_BASES:
            raise ValueError(f"SunSpec base must be one of {SUNSPEC_BASES}, not {base}")
        self.base = base
        self.models: dict[int, Any] = {}
        self.starts: dict[int, int] = {}
        address = base + 2
        for model_id, repeats in models:
            if model_id in self.models:
                raise ValueError(f"model {model_id} twice; the simulator serves each once")
            model = _new_model(model_id, repeats)
            self.models[model_id] = model
            self.starts[model_id] = address
            address += model.len
        self.size = address + 2 - base
        self._by_address: dict[int, tuple[int, str, Any]] = {}
        for model_id, model in self.models.items():
            for path, point in _all_points(model):
                self._by_address[self.starts[model_id] + point.offset] = (model_id, path, point)

    def chain(self) -> list[tuple[int, int, int]]:
        """(model id, address of its ID register, L) in order: what discovery should find."""
        return [(mid, self.starts[mid], m.len - 2) for mid, m in self.models.items()]

    def registers(self) -> list[int]:
        """The whole image as register values, base first."""
        data = bytearray()
        for model in self.models.values():
            data.extend(model.get_mb())
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return [*_MARKER, *words, *_END]

    def point(self, model_id: int, path: str) -> Any:
        """A pysunspec2 point by "Name" or "group[n].Name" (n from 1)."""
        model = self.models[model_id]
        if "[" not in path:
            return model.points[path]
        group, rest = path.split("[", 1)
        index, name = rest.split("].", 1)
        return model.groups[group][int(index) - 1].points[name]

    def put(self, model_id: int, path: str, value: float | None) -> None:
        """Show `value` (in the point's unit) through the point's own scale factor.

        None shows the point as not implemented.
        """
        point = self.point(model_id, path)
        if value is None:
            point.set_value(None)
            return
        kind = point.pdef["type"]
        if kind in _FLOATS:
            point.set_value(float(value))
            return
        raw = round(value / 10 ** self._scale_factor(point))
        if kind in _ACCUMULATORS:
            raw %= _ACCUMULATORS[kind]
        elif kind in _RAW_RANGES:
            low, high = _RAW_RANGES[kind]
            raw = min(max(raw, low), high)
        point.set_value(raw)

    def put_raw(self, model_id: int, path: str, raw: int | str | None) -> None:
        self.point(model_id, path).set_value(raw)

    def value_of(self, point: Any, raw: int | float) -> float:
        """A raw register value of `point` in its unit (for writes the device receives)."""
        if point.pdef["type"] in _FLOATS:
            return float(raw)
        return float(raw * 10 ** self._scale_factor(point))

    def _scale_factor(self, point: Any) -> int:
        if point.sf_value is not None and point.sf is None:
            return int(point.sf_value)  # a constant in the definition
        if point.sf is None:
            return 0
        holder = point.group.points.get(point.sf) or point.model.points.get(point.sf)
        sf = holder.value if holder is not None else None
        if sf is None:
            raise ValueError(f"scale factor {point.sf} of {point.pdef['name']} is not set")
        return int(sf)

    def decode_write(
        self, address: int, values: Sequence[int]
    ) -> list[tuple[int, str, Any, int | float]] | ExcCodes:
        """Split a write into whole points: (model id, path, point, raw value) each."""
        writes: list[tuple[int, str, Any, int | float]] = []
        index = 0
        while index < len(values):
            found = self._by_address.get(address + index)
            if found is None:
                return ExcCodes.ILLEGAL_ADDRESS  # the marker, a header or mid-point
            model_id, path, point = found
            words = values[index : index + point.len]
            if len(words) < point.len:
                return ExcCodes.ILLEGAL_ADDRESS  # half a 32-bit point
            data = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in words)
            writes.append((model_id, path, point, point.info.data_to(data)))
            index += point.len
        return writes


def _new_model(model_id: int, repeats: int) -> Any:
    """A pysunspec2 model sized for `repeats` instances of its repeating group."""
    probe = Model(model_id=model_id)
    length = probe.len - 2
    groups = probe.model_def["group"].get("groups", [])
    if repeats:
        if len(groups) != 1:
            raise ValueError(f"model {model_id} has no single repeating group")
        length += repeats * sum(int(p["size"]) for p in groups[0]["points"])
    model = Model(model_id=model_id, model_len=length)
    if model.error_info:
        raise ValueError(f"pysunspec2 model {model_id}: {model.error_info.strip()}")
    return model


def _all_points(model: Any) -> list[tuple[str, Any]]:
    found = [(name, point) for name, point in model.points.items()]
    for group_name, groups in model.groups.items():
        for number, group in enumerate(groups if isinstance(groups, list) else [groups], 1):
            found.extend((f"{group_name}[{number}].{n}", p) for n, p in group.points.items())
    return found


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
        inputs = [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
        no_bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        return SimDevice(
            self.unit_id, simdata=(no_bits, no_bits, holding, inputs), action=self._on_access
        )

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


# --- meter -------------------------------------------------------------------------------

# Chosen so that a profile ignoring scale factors reads visibly wrong values (W off by 10x,
# A by 100x). int16 limits what they can show: A_SF -2 reaches 327.67 A, W_SF 1 327 kW.
METER_SCALE_FACTORS: dict[str, int] = {
    "A_SF": -2,
    "V_SF": -1,
    "Hz_SF": -2,
    "W_SF": 1,
    "VA_SF": 1,
    "VAR_SF": 1,
    "PF_SF": -1,  # model 203 shows the power factor in percent
    "TotWh_SF": 1,
}


class SimulatedSunSpecMeter(SunSpecSimulator):
    """A three-phase wye meter: models 1 and 203. `values` is what it showed last.

    Takes the same `MeterSource` as the SDM630 simulator (`FixedMeter` for tests,
    `LoadCurveMeter` for the demo); power positive = import.
    """

    def __init__(
        self,
        source: MeterSource,
        clock: Clock,
        unit_id: int = 1,
        base: int = 40000,
        scale_factors: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__([(1, 0), (203, 0)], clock, unit_id, base, "meter-203")
        self._source = source
        for name, sf in {**METER_SCALE_FACTORS, **(scale_factors or {})}.items():
            self.image.put_raw(203, name, sf)
        self.values: MeterValues = source(clock())
        self._publish()

    def _advance(self, now: float) -> None:
        self.values = self._source(now)

    def _publish(self) -> None:
        v, put = self.values, self.image.put
        apparent = [v.voltage[n] * v.current[n] for n in range(3)]
        reactive = [math.sqrt(max(apparent[n] ** 2 - v.power[n] ** 2, 0.0)) for n in range(3)]
        line = [_line_to_line(v.voltage[n], v.voltage[(n + 1) % 3]) for n in range(3)]
        for n, phase in enumerate("ABC"):
            put(203, f"Aph{phase}", v.current[n])
            put(203, f"PhVph{phase}", v.voltage[n])
            put(203, f"Wph{phase}", v.power[n])
            put(203, f"VAph{phase}", apparent[n])
            put(203, f"VARph{phase}", reactive[n])
            put(203, f"PFph{phase}", v.power_factor * 100)
        for n, pair in enumerate(("AB", "BC", "CA")):
            put(203, f"PhVph{pair}", line[n])
        put(203, "A", sum(v.current))
        put(203, "PhV", sum(v.voltage) / 3)
        put(203, "PPV", sum(line) / 3)
        put(203, "Hz", v.frequency)
        put(203, "W", v.total_power)
        put(203, "VA", sum(apparent))
        put(203, "VAR", sum(reactive))
        put(203, "PF", v.power_factor * 100)
        put(203, "TotWhImp", v.import_kwh * 1000)
        put(203, "TotWhExp", v.export_kwh * 1000)
        self.image.put_raw(203, "Evt", 0)


def _line_to_line(a: float, b: float) -> float:
    """Line-to-line voltage of two wye phases 120 degrees apart."""
    return math.sqrt(a * a + b * b + a * b)


# --- PV inverter -------------------------------------------------------------------------

PvSource = Callable[[float], float]
"""Given clock seconds, the DC power the PV array could deliver now (W)."""


class FixedPv:
    """Whatever available power a test sets."""

    def __init__(self, watts: float) -> None:
        self.watts = watts

    def __call__(self, now: float) -> float:
        return self.watts


class DayCurvePv:
    """A clear day: nothing before sunrise and after sunset, a sine arc peaking at noon.

    The time of day is (clock + day_offset_s) modulo 24 h; pass the offset that maps the
    simulator's clock onto local time.
    """

    def __init__(
        self,
        peak_w: float,
        day_offset_s: float = 0.0,
        sunrise_h: float = 6.0,
        sunset_h: float = 18.0,
    ) -> None:
        self.peak_w = peak_w
        self._offset = day_offset_s
        self._sunrise = sunrise_h
        self._sunset = sunset_h

    def __call__(self, now: float) -> float:
        hour = ((now + self._offset) / 3600) % 24
        if not self._sunrise < hour < self._sunset:
            return 0.0
        daylight = (hour - self._sunrise) / (self._sunset - self._sunrise)
        return self.peak_w * math.sin(math.pi * daylight)


_INVERTER_SF = {
    103: {"A_SF": -2, "V_SF": -1, "W_SF": 0, "Hz_SF": -2, "VA_SF": 0, "VAr_SF": 0, "PF_SF": -1,
          "WH_SF": 0, "DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "Tmp_SF": -1},
    120: {"WRtg_SF": 1, "VARtg_SF": 1, "VArRtg_SF": 1, "ARtg_SF": -1, "PFRtg_SF": -2},
    123: {"WMaxLimPct_SF": -2},
    160: {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0},
}  # fmt: skip
_ST_SLEEPING, _ST_MPPT, _ST_THROTTLED, _ST_STANDBY = 2, 4, 5, 8
_DC_OVER_AC = 1.03  # DC input a little above AC output: conversion losses
_MODULE_SHARE = (0.55, 0.45)
_MODULE_VOLTAGE = (610.0, 590.0)
_GRID_V, _GRID_HZ = 230.0, 50.0


class SimulatedSunSpecInverter(SunSpecSimulator):
    """A three-phase PV inverter: models 1, 103, 120, 123 and 160 (two MPPT modules).

    AC output is min(available PV, active-power limit); the limit (WMaxLimPct, % of WRtg)
    counts only while WMaxLim_Ena is 1 and falls back to 100 % once WMaxLimPct_RvrtTms seconds
    pass without a new write (0 = never).
    """

    def __init__(
        self,
        pv: PvSource,
        clock: Clock,
        unit_id: int = 1,
        base: int = 40000,
        rated_w: float = 10_000.0,
        energy_wh: float = 12_345_000.0,
    ) -> None:
        models = [(1, 0), (103, 0), (120, 0), (123, 0), (160, len(_MODULE_SHARE))]
        super().__init__(models, clock, unit_id, base, "inverter-103")
        self._pv = pv
        self.rated_w = rated_w
        self.available_w = 0.0
        self.ac_power_w = 0.0
        self.dc_power_w = 0.0
        self.energy_wh = energy_wh
        self.module_energy_wh = [energy_wh * share * _DC_OVER_AC for share in _MODULE_SHARE]
        self.limit_pct = 100.0
        self.limit_enabled = False
        self.limit_window_s = 0.0
        self.limit_revert_s = 0.0
        self.limit_ramp_s = 0.0
        self.connected = True
        self._limit_written_at: float | None = None
        self._last: float | None = None
        for model_id, factors in _INVERTER_SF.items():
            for name, sf in _fitting(factors, rated_w * _DC_OVER_AC).items():
                self.image.put_raw(model_id, name, sf)
        self._publish_static()
        self._control(123, "WMaxLimPct", 0, 100, self._set_limit)
        self._control(123, "WMaxLim_Ena", 0, 1, self._set_enabled)
        self._control(123, "WMaxLimPct_WinTms", 0, 0xFFFE, self._set_window)
        self._control(123, "WMaxLimPct_RvrtTms", 0, 0xFFFE, self._set_revert)
        self._control(123, "WMaxLimPct_RmpTms", 0, 0xFFFE, self._set_ramp)
        self._control(123, "Conn", 0, 1, self._set_connected)
        self.update()

    def _set_limit(self, value: float, now: float) -> None:
        self.limit_pct = value
        self._limit_written_at = now

    def _set_enabled(self, value: float, now: float) -> None:
        self.limit_enabled = value == 1
        self._limit_written_at = now

    def _set_window(self, value: float, now: float) -> None:
        self.limit_window_s = value

    def _set_revert(self, value: float, now: float) -> None:
        self.limit_revert_s = value
        self._limit_written_at = now

    def _set_ramp(self, value: float, now: float) -> None:
        self.limit_ramp_s = value

    def _set_connected(self, value: float, now: float) -> None:
        self.connected = value == 1

    @property
    def limit_w(self) -> float:
        """The active-power ceiling in force now."""
        if not self.connected:
            return 0.0
        return self.rated_w * (self.limit_pct / 100 if self.limit_enabled else 1.0)

    def _advance(self, now: float) -> None:
        if self._last is not None and now > self._last:
            hours = (now - self._last) / 3600
            self.energy_wh += self.ac_power_w * hours
            for n, share in enumerate(_MODULE_SHARE):
                self.module_energy_wh[n] += self.dc_power_w * share * hours
        self._last = now
        written = self._limit_written_at
        if 0 < self.limit_revert_s <= now - (written if written is not None else now):
            self.limit_pct = 100.0
            self._limit_written_at = None
        self.available_w = max(0.0, self._pv(now))
        self.ac_power_w = min(self.available_w, self.limit_w, self.rated_w)
        self.dc_power_w = self.ac_power_w * _DC_OVER_AC

    def _publish_static(self) -> None:
        put, raw = self.image.put, self.image.put_raw
        raw(120, "DERTyp", 4)  # PV
        put(120, "WRtg", self.rated_w)
        put(120, "VARtg", self.rated_w)
        for quadrant, sign in (("Q1", 1), ("Q2", 1), ("Q3", -1), ("Q4", -1)):
            put(120, f"VArRtg{quadrant}", sign * self.rated_w * 0.6)
            put(120, f"PFRtg{quadrant}", sign * 0.8)
        put(120, "ARtg", self.rated_w / (3 * _GRID_V))
        raw(160, "N", len(_MODULE_SHARE))
        raw(160, "Evt", 0)
        for n in range(len(_MODULE_SHARE)):
            raw(160, f"module[{n + 1}].ID", n + 1)
            raw(160, f"module[{n + 1}].IDStr", f"PV{n + 1}")
            raw(160, f"module[{n + 1}].DCEvt", 0)

    def _publish(self) -> None:
        put, raw = self.image.put, self.image.put_raw
        ac = self.ac_power_w
        phase_a = ac / (3 * _GRID_V)
        put(103, "A", phase_a * 3)
        for phase, volts in zip("ABC", (_GRID_V, _GRID_V + 1.5, _GRID_V - 1.2), strict=True):
            put(103, f"Aph{phase}", phase_a)
            put(103, f"PhVph{phase}", volts)
        put(103, "W", ac)
        put(103, "Hz", _GRID_HZ)
        put(103, "VA", ac)
        put(103, "VAr", 0.0)
        put(103, "PF", 100.0 if ac > 0 else None)
        put(103, "WH", self.energy_wh)
        dc_volts = sum(_MODULE_VOLTAGE) / len(_MODULE_VOLTAGE)
        put(103, "DCW", self.dc_power_w)
        put(103, "DCV", dc_volts if ac > 0 else None)
        put(103, "DCA", self.dc_power_w / dc_volts)
        put(103, "TmpCab", 30.0 + 15.0 * ac / self.rated_w)
        state = _ST_SLEEPING if self.available_w <= 0 else _ST_MPPT
        if 0 < self.limit_w < self.available_w:
            state = _ST_THROTTLED
        raw(103, "St", state)
        raw(103, "Evt1", 0)
        raw(103, "Evt2", 0)
        raw(123, "Conn", 1 if self.connected else 0)
        put(123, "WMaxLimPct", self.limit_pct)
        put(123, "WMaxLimPct_WinTms", self.limit_window_s)
        put(123, "WMaxLimPct_RvrtTms", self.limit_revert_s)
        put(123, "WMaxLimPct_RmpTms", self.limit_ramp_s)
        raw(123, "WMaxLim_Ena", 1 if self.limit_enabled else 0)
        seconds = int(self._last or 0.0)
        for n, (share, volts) in enumerate(zip(_MODULE_SHARE, _MODULE_VOLTAGE, strict=True)):
            module = f"module[{n + 1}]"
            dc = self.dc_power_w * share
            put(160, f"{module}.DCW", dc)
            put(160, f"{module}.DCV", volts if dc > 0 else 0.0)
            put(160, f"{module}.DCA", dc / volts)
            put(160, f"{module}.DCWH", self.module_energy_wh[n])
            raw(160, f"{module}.Tms", seconds & 0xFFFFFFFF)
            raw(160, f"{module}.DCSt", _ST_MPPT if dc > 0 else _ST_SLEEPING)


# --- battery -----------------------------------------------------------------------------

_BATTERY_SF = {
    103: {"A_SF": -2, "V_SF": -1, "W_SF": 0, "Hz_SF": -2, "VA_SF": 0, "VAr_SF": 0, "PF_SF": -1,
          "WH_SF": 0, "DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "Tmp_SF": -1},
    124: {"WChaMax_SF": 0, "WChaDisChaGra_SF": 0, "MinRsvPct_SF": -1, "ChaState_SF": -1,
          "StorAval_SF": -1, "InBatV_SF": -1, "InOutWRte_SF": -2},
    802: {"AHRtg_SF": -1, "WHRtg_SF": 1, "WChaDisChaMax_SF": 0, "SoC_SF": -1, "SoH_SF": 0,
          "V_SF": -1, "CellV_SF": -3, "A_SF": -1, "AMax_SF": -1, "W_SF": 0},
}  # fmt: skip
_CHARGE, _DISCHARGE = 1, 2  # StorCtl_Mod bits 0 and 1
_CHA_EMPTY, _CHA_DISCHARGING, _CHA_CHARGING, _CHA_FULL, _CHA_HOLDING = 2, 3, 4, 5, 6
_EFFICIENCY = 0.97  # one way, AC to DC or DC to AC
_CELLS = 120


class SimulatedSunSpecBattery(SunSpecSimulator):
    """A battery inverter: models 1, 103 (or 113 with `inverter_model`), 124 and 802.

    `demand_w` (+ = charge) is what the battery would do on its own; model 124 bounds it as
    Fronius-style devices do: with StorCtl_Mod bit 0 set, charging is capped at InWRte % of
    WChaMax; with bit 1 set, discharging at OutWRte % of WChaMax. A negative rate turns a cap
    into a floor (InWRte -20 = discharge at least 20 %), which is how a charge or discharge is
    forced. The state of charge integrates DC power over the clock and stops at its window:
    SoCMax above; SoCMin or MinRsvPct, whichever is higher, below. InWRte/OutWRte go back to
    100 % and StorCtl_Mod to 0 once InOutWRte_RvrtTms seconds pass without a write.
    """

    def __init__(
        self,
        clock: Clock,
        unit_id: int = 1,
        base: int = 40000,
        capacity_wh: float = 10_000.0,
        max_power_w: float = 5_000.0,
        soc_pct: float = 50.0,
        soc_min_pct: float = 5.0,
        soc_max_pct: float = 100.0,
        nominal_v: float = 400.0,
        inverter_model: int = 103,
    ) -> None:
        if inverter_model not in (103, 113):
            raise ValueError("inverter_model must be 103 (scaled integers) or 113 (floats)")
        models = [(1, 0), (inverter_model, 0), (124, 0), (802, 0)]
        super().__init__(models, clock, unit_id, base, f"battery-{inverter_model}")
        self._inverter_model = inverter_model
        self.capacity_wh = capacity_wh
        self.max_power_w = max_power_w
        self.nominal_v = nominal_v
        self.soc_pct = soc_pct
        self.soc_min_pct = soc_min_pct
        self.soc_max_pct = soc_max_pct
        self.demand_w = 0.0
        self.power_w = 0.0  # AC, + = charging
        self.dc_power_w = 0.0  # DC at the battery, + = charging
        self.w_cha_max = max_power_w
        self.stor_ctl_mod = 0
        self.in_w_rte_pct = 100.0
        self.out_w_rte_pct = 100.0
        self.min_reserve_pct = 10.0
        self.rate_window_s = 0.0
        self.rate_revert_s = 0.0
        self.rate_ramp_s = 0.0
        self.charge_from_grid = True
        self.energy_charged_wh = 0.0
        self.energy_discharged_wh = 0.0
        self.heartbeat = 0
        self._rates_written_at: float | None = None
        self._last: float | None = None
        for model_id, factors in _BATTERY_SF.items():
            if model_id == 103 and inverter_model == 113:
                continue  # model 113 is float32 throughout: no scale factors
            for name, sf in _fitting(factors, max_power_w / _EFFICIENCY).items():
                self.image.put_raw(model_id, name, sf)
        self._control(124, "WChaMax", 0, max_power_w, self._set("w_cha_max"))
        self._control(124, "WChaGra", 0, 100, _ignore)
        self._control(124, "WDisChaGra", 0, 100, _ignore)
        self._control(124, "StorCtl_Mod", 0, _CHARGE | _DISCHARGE, self._set_mode)
        self._control(124, "MinRsvPct", 0, 100, self._set("min_reserve_pct"))
        self._control(124, "InWRte", -100, 100, self._set_in_rate)
        self._control(124, "OutWRte", -100, 100, self._set_out_rate)
        self._control(124, "InOutWRte_WinTms", 0, 0xFFFE, self._set("rate_window_s"))
        self._control(124, "InOutWRte_RvrtTms", 0, 0xFFFE, self._set_revert)
        self._control(124, "InOutWRte_RmpTms", 0, 0xFFFE, self._set("rate_ramp_s"))
        self._control(124, "ChaGriSet", 0, 1, self._set_grid)
        self._control(802, "SoCRsvMin", 0, 100, self._set("min_reserve_pct"))
        self._control(802, "CtrlHb", 0, 0xFFFE, _ignore)
        self._control(802, "AlmRst", 0, 0xFFFE, _ignore)
        self._control(802, "SetOp", 1, 2, _ignore)
        self._control(802, "SetInvState", 1, 3, _ignore)
        self.update()

    def _set(self, attribute: str) -> Callable[[float, float], None]:
        def apply(value: float, now: float) -> None:
            setattr(self, attribute, value)

        return apply

    def _set_mode(self, value: float, now: float) -> None:
        self.stor_ctl_mod = int(value)
        self._rates_written_at = now

    def _set_in_rate(self, value: float, now: float) -> None:
        self.in_w_rte_pct = value
        self._rates_written_at = now

    def _set_out_rate(self, value: float, now: float) -> None:
        self.out_w_rte_pct = value
        self._rates_written_at = now

    def _set_revert(self, value: float, now: float) -> None:
        self.rate_revert_s = value
        self._rates_written_at = now

    def _set_grid(self, value: float, now: float) -> None:
        self.charge_from_grid = value == 1

    @property
    def soc_floor_pct(self) -> float:
        return max(self.soc_min_pct, self.min_reserve_pct)

    @property
    def battery_v(self) -> float:
        return self.nominal_v * (0.92 + 0.16 * self.soc_pct / 100)

    def _advance(self, now: float) -> None:
        if self._last is not None and now > self._last:
            hours = (now - self._last) / 3600
            before = self.soc_pct
            soc = before + self.dc_power_w * hours / self.capacity_wh * 100
            if self.dc_power_w > 0:
                soc = min(soc, max(self.soc_max_pct, before))
            elif self.dc_power_w < 0:
                soc = max(soc, min(self.soc_floor_pct, before))
            self.soc_pct = soc
            if self.power_w > 0:
                self.energy_charged_wh += self.power_w * hours
            else:
                self.energy_discharged_wh -= self.power_w * hours
        self._last = now
        written = self._rates_written_at
        if 0 < self.rate_revert_s <= now - (written if written is not None else now):
            self.in_w_rte_pct = self.out_w_rte_pct = 100.0
            self.stor_ctl_mod = 0
            self._rates_written_at = None
        self.power_w = self._target_w()
        if self.power_w > 0:
            self.dc_power_w = self.power_w * _EFFICIENCY
        else:
            self.dc_power_w = self.power_w / _EFFICIENCY
        self.heartbeat = (self.heartbeat + 1) % 0xFFFF

    def _target_w(self) -> float:
        top = self.w_cha_max
        high = top * self.in_w_rte_pct / 100 if self.stor_ctl_mod & _CHARGE else top
        low = -top * self.out_w_rte_pct / 100 if self.stor_ctl_mod & _DISCHARGE else -top
        target = min(max(self.demand_w, low), high)
        if target > 0 and self.soc_pct >= self.soc_max_pct:
            return 0.0
        if target < 0 and self.soc_pct <= self.soc_floor_pct:
            return 0.0
        return target

    def _charge_state(self) -> int:
        if self.power_w > 0:
            return _CHA_CHARGING
        if self.power_w < 0:
            return _CHA_DISCHARGING
        if self.soc_pct >= self.soc_max_pct:
            return _CHA_FULL
        if self.soc_pct <= self.soc_floor_pct:
            return _CHA_EMPTY
        return _CHA_HOLDING

    def _publish(self) -> None:
        self._publish_inverter()
        put, raw = self.image.put, self.image.put_raw
        volts = self.battery_v
        amp_hours = self.capacity_wh / self.nominal_v
        put(124, "WChaMax", self.w_cha_max)
        put(124, "WChaGra", 100)
        put(124, "WDisChaGra", 100)
        raw(124, "StorCtl_Mod", self.stor_ctl_mod)
        put(124, "MinRsvPct", self.min_reserve_pct)
        put(124, "ChaState", self.soc_pct)
        put(124, "StorAval", max(self.soc_pct - self.min_reserve_pct, 0.0) / 100 * amp_hours)
        put(124, "InBatV", volts)
        raw(124, "ChaSt", self._charge_state())
        put(124, "OutWRte", self.out_w_rte_pct)
        put(124, "InWRte", self.in_w_rte_pct)
        put(124, "InOutWRte_WinTms", self.rate_window_s)
        put(124, "InOutWRte_RvrtTms", self.rate_revert_s)
        put(124, "InOutWRte_RmpTms", self.rate_ramp_s)
        raw(124, "ChaGriSet", 1 if self.charge_from_grid else 0)
        put(802, "AHRtg", amp_hours)
        put(802, "WHRtg", self.capacity_wh)
        put(802, "WChaRteMax", self.max_power_w)
        put(802, "WDisChaRteMax", self.max_power_w)
        put(802, "SoCMax", self.soc_max_pct)
        put(802, "SoCMin", self.soc_min_pct)
        put(802, "SocRsvMax", self.soc_max_pct)
        put(802, "SoCRsvMin", self.min_reserve_pct)
        put(802, "SoC", self.soc_pct)
        put(802, "SoH", 98)
        raw(802, "ChaSt", self._charge_state())
        raw(802, "LocRemCtl", 0)  # remote
        raw(802, "Hb", self.heartbeat)
        raw(802, "Typ", 4)  # lithium-ion
        raw(802, "State", 3)  # connected
        for name in ("Evt1", "Evt2", "EvtVnd1", "EvtVnd2"):
            raw(802, name, 0)
        cell = volts / _CELLS
        put(802, "V", volts)
        put(802, "VMax", self.nominal_v * 1.08)
        put(802, "VMin", self.nominal_v * 0.92)
        put(802, "CellVMax", cell + 0.012)
        put(802, "CellVMin", cell - 0.009)
        put(802, "CellVAvg", cell)
        put(802, "A", -self.dc_power_w / volts)  # + = discharging
        put(802, "AChaMax", self.max_power_w / volts)
        put(802, "ADisChaMax", self.max_power_w / volts)
        put(802, "W", -self.dc_power_w)
        raw(802, "SetOp", 1)
        raw(802, "SetInvState", 3)

    def _publish_inverter(self) -> None:
        model = self._inverter_model
        put, raw = self.image.put, self.image.put_raw
        ac = -self.power_w  # + = delivering AC, i.e. discharging
        phase_a = abs(ac) / (3 * _GRID_V)
        put(model, "A", phase_a * 3)
        for phase in "ABC":
            put(model, f"Aph{phase}", phase_a)
            put(model, f"PhVph{phase}", _GRID_V)
        put(model, "W", ac)
        put(model, "Hz", _GRID_HZ)
        put(model, "WH", self.energy_discharged_wh)
        put(model, "DCW", -self.dc_power_w)
        put(model, "DCV", self.battery_v)
        put(model, "DCA", -self.dc_power_w / self.battery_v)
        put(model, "TmpCab", 28.0)
        raw(model, "St", _ST_MPPT if self.power_w else _ST_STANDBY)
        raw(model, "Evt1", 0)
        raw(model, "Evt2", 0)


def _ignore(value: float, now: float) -> None:
    """Accepted and shown nowhere: the simulator has no behaviour behind this point."""
