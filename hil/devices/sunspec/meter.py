"""A simulated SunSpec meter (models 1 and 203) fed by the SDM630 simulator's sources."""

from __future__ import annotations

import math
from collections.abc import Mapping

from hil.devices.sdm630 import MeterSource, MeterValues
from hil.devices.sunspec.image import Clock
from hil.devices.sunspec.simulator import SunSpecSimulator

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
