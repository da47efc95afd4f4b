"""A simulated SunSpec PV inverter (models 1, 103, 120, 123, 160) and the PV sources it takes."""

from __future__ import annotations

import math
from collections.abc import Callable

from hil.devices.sunspec.image import Clock, fitting
from hil.devices.sunspec.simulator import SunSpecSimulator

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
ST_SLEEPING, ST_MPPT, ST_THROTTLED, ST_STANDBY = 2, 4, 5, 8
_DC_OVER_AC = 1.03  # DC input a little above AC output: conversion losses
_MODULE_SHARE = (0.55, 0.45)
_MODULE_VOLTAGE = (610.0, 590.0)
GRID_V, GRID_HZ = 230.0, 50.0


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
            for name, sf in fitting(factors, rated_w * _DC_OVER_AC).items():
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
        put(120, "ARtg", self.rated_w / (3 * GRID_V))
        raw(160, "N", len(_MODULE_SHARE))
        raw(160, "Evt", 0)
        for n in range(len(_MODULE_SHARE)):
            raw(160, f"module[{n + 1}].ID", n + 1)
            raw(160, f"module[{n + 1}].IDStr", f"PV{n + 1}")
            raw(160, f"module[{n + 1}].DCEvt", 0)

    def _publish(self) -> None:
        put, raw = self.image.put, self.image.put_raw
        ac = self.ac_power_w
        phase_a = ac / (3 * GRID_V)
        put(103, "A", phase_a * 3)
        for phase, volts in zip("ABC", (GRID_V, GRID_V + 1.5, GRID_V - 1.2), strict=True):
            put(103, f"Aph{phase}", phase_a)
            put(103, f"PhVph{phase}", volts)
        put(103, "W", ac)
        put(103, "Hz", GRID_HZ)
        put(103, "VA", ac)
        put(103, "VAr", 0.0)
        put(103, "PF", 100.0 if ac > 0 else None)
        put(103, "WH", self.energy_wh)
        dc_volts = sum(_MODULE_VOLTAGE) / len(_MODULE_VOLTAGE)
        put(103, "DCW", self.dc_power_w)
        put(103, "DCV", dc_volts if ac > 0 else None)
        put(103, "DCA", self.dc_power_w / dc_volts)
        put(103, "TmpCab", 30.0 + 15.0 * ac / self.rated_w)
        state = ST_SLEEPING if self.available_w <= 0 else ST_MPPT
        if 0 < self.limit_w < self.available_w:
            state = ST_THROTTLED
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
            raw(160, f"{module}.DCSt", ST_MPPT if dc > 0 else ST_SLEEPING)
