"""The plan's PV limit as each inverter's active-power limit (SunSpec WMaxLimPct, Huawei 40125).

The plan gives one figure for the site; every inverter gets the same share of its own rating,
so a larger inverter keeps a larger share. No limit means 100 %, renewed like any setpoint, so
an inverter whose revert timer runs returns to full power only when the agent is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from agent.control.actuator import unchanged_and_fresh
from agent.drivers.setpoints import SetpointError

log = logging.getLogger(__name__)

STEP_PCT = 1.0


class PvActuator:
    def __init__(
        self,
        submits: Mapping[str, Callable[[str, str, float], None]],  # inverter -> submit_write
        renew_s: float = 60.0,
    ) -> None:
        self._submits = dict(submits)
        self._renew_after = renew_s / 2
        self._last: tuple[float, float] | None = None

    def apply(
        self, pv_limit_kw: float | None, rated_w: Mapping[str, float | None], now: float
    ) -> None:
        known = {d: w for d, w in rated_w.items() if w and d in self._submits}
        if not known:
            return
        total_kw = sum(known.values()) / 1000
        pct = 100.0 if pv_limit_kw is None else min(max(pv_limit_kw / total_kw * 100, 0.0), 100.0)
        pct = round(pct, 1)
        if unchanged_and_fresh(self._last, pct, now, STEP_PCT, self._renew_after):
            return
        for device in known:
            try:
                self._submits[device](device, "power_limit_pct", pct)
            except SetpointError as exc:
                log.error("%s: %s", device, exc)
        self._last = (pct, now)
