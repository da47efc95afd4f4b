"""A simulated SunSpec battery inverter (models 1, 103 or 113, 124 and 802)."""

from __future__ import annotations

from collections.abc import Callable

from hil.devices.sunspec.image import Clock, fitting
from hil.devices.sunspec.inverter import GRID_HZ, GRID_V, ST_MPPT, ST_STANDBY
from hil.devices.sunspec.simulator import SunSpecSimulator

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
            for name, sf in fitting(factors, max_power_w / _EFFICIENCY).items():
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
        phase_a = abs(ac) / (3 * GRID_V)
        put(model, "A", phase_a * 3)
        for phase in "ABC":
            put(model, f"Aph{phase}", phase_a)
            put(model, f"PhVph{phase}", GRID_V)
        put(model, "W", ac)
        put(model, "Hz", GRID_HZ)
        put(model, "WH", self.energy_discharged_wh)
        put(model, "DCW", -self.dc_power_w)
        put(model, "DCV", self.battery_v)
        put(model, "DCA", -self.dc_power_w / self.battery_v)
        put(model, "TmpCab", 28.0)
        raw(model, "St", ST_MPPT if self.power_w else ST_STANDBY)
        raw(model, "Evt1", 0)
        raw(model, "Evt2", 0)


def _ignore(value: float, now: float) -> None:
    """Accepted and shown nowhere: the simulator has no behaviour behind this point."""
