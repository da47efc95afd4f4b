"""The site battery: a store of energy with power limits, a SoC window and conversion losses.

FORMAT.md: "`battery`: ... 3-phase symmetric. Stored energy rises by charge power x
charge_efficiency and falls by discharge power ÷ discharge_efficiency". Power is measured at the
AC side (what the grid meter sees); sign as the format's: + discharges, - charges.
"""

from __future__ import annotations

from hil.scenario import BatterySpec


class Battery:
    """Runs the agent's power command for one step, clipped to what the battery can do."""

    __slots__ = ("_max_kwh", "_min_kwh", "spec", "stored_kwh")

    def __init__(self, spec: BatterySpec) -> None:
        self.spec = spec
        self.stored_kwh = spec.soc_init * spec.capacity_kwh
        self._min_kwh = spec.soc_min * spec.capacity_kwh
        self._max_kwh = spec.soc_max * spec.capacity_kwh

    @property
    def soc(self) -> float:
        return self.stored_kwh / self.spec.capacity_kwh

    def run(self, command_kw: float, dt_s: float) -> float:
        """Apply `command_kw` (+ discharge) for dt_s; return the average power actually run."""
        dt_h = dt_s / 3600.0
        if command_kw > 0.0:
            return self._discharge(min(command_kw, self.spec.max_discharge_kw), dt_h)
        if command_kw < 0.0:
            return -self._charge(min(-command_kw, self.spec.max_charge_kw), dt_h)
        return 0.0

    def _discharge(self, kw: float, dt_h: float) -> float:
        efficiency = self.spec.discharge_efficiency
        room_kwh = self.stored_kwh - self._min_kwh
        if room_kwh <= 0.0:
            return 0.0
        drawn_kwh = kw * dt_h / efficiency  # "falls by discharge power ÷ discharge_efficiency"
        if drawn_kwh < room_kwh:
            self.stored_kwh -= drawn_kwh
            return kw
        # Never cross soc_min within a step: run just the power that lands exactly on it.
        self.stored_kwh = self._min_kwh
        return room_kwh * efficiency / dt_h

    def _charge(self, kw: float, dt_h: float) -> float:
        efficiency = self.spec.charge_efficiency
        room_kwh = self._max_kwh - self.stored_kwh
        if room_kwh <= 0.0:
            return 0.0
        stored_kwh = kw * dt_h * efficiency  # "rises by charge power x charge_efficiency"
        if stored_kwh < room_kwh:
            self.stored_kwh += stored_kwh
            return kw
        # Never cross soc_max within a step: run just the power that lands exactly on it.
        self.stored_kwh = self._max_kwh
        return room_kwh / efficiency / dt_h
