"""The plan's battery power as SunSpec model 124 rates, written when it moved or needs renewal.

Model 124 has no power setpoint: `InWRte` caps charging and `OutWRte` caps discharging, each in
percent of `WChaMax`, and a negative rate turns the opposite cap into a floor. So discharging
exactly p % is `OutWRte = p, InWRte = -p`, charging exactly c % is `InWRte = c, OutWRte = -c`,
and 0 holds the battery. The profile's `prepare` writes set `StorCtl_Mod = 3` and the revert
timer, so a battery the agent stops talking to returns to its own behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.control.actuator import unchanged_and_fresh
from agent.drivers.setpoints import SetpointError

log = logging.getLogger(__name__)

STEP_PCT = 1.0  # smaller moves wait for the renewal


class BatteryActuator:
    def __init__(
        self,
        device: str,
        submit: Callable[[str, str, float], None],
        renew_s: float = 60.0,
    ) -> None:
        self.device = device
        self._submit = submit
        self._renew_after = renew_s / 2
        self._last: tuple[float, float] | None = None  # (percent, when)

    def apply(self, battery_kw: float | None, max_charge_w: float | None, now: float) -> None:
        """`battery_kw` + = discharge; nothing is written while the rating is unknown."""
        if battery_kw is None or not max_charge_w:
            return
        pct = max(min(battery_kw * 1000 / max_charge_w * 100, 100.0), -100.0)
        pct = round(pct, 1)
        if unchanged_and_fresh(self._last, pct, now, STEP_PCT, self._renew_after):
            return
        try:
            # Both cases in one: discharge p = (InWRte -p, OutWRte p); charge c = (c, -c).
            self._submit(self.device, "charge_rate_pct", -pct)
            self._submit(self.device, "discharge_rate_pct", pct)
        except SetpointError as exc:
            log.error("%s: %s", self.device, exc)
            return
        self._last = (pct, now)
