"""Current per phase: the room each phase of the connection has for the cars, and what is left.

The cars' limits are power; a phase's fuse is amps. A 1-phase car puts all its current on its
phase, a 3-phase car a third of its power on each; the site's own load (derived from the meter's
phase currents) and the battery (3-phase, symmetric) take their share first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from agent.control.observe import Observation
from agent.control.site_model import ALL_PHASES, Phase, SiteModel


class PhaseRoom:
    def __init__(self, site: SiteModel) -> None:
        self.site = site
        self._by_device = {c.device: c for c in site.connectors}

    def room_a(
        self, obs: Observation, battery_kw: float, margin_kw: float
    ) -> Mapping[Phase, float]:
        """The amps each phase has for the cars with the battery at `battery_kw` (+ discharge);
        unlimited without phase limits, none while the currents are unknown."""
        limit_a = self.site.phase_limit_a
        if limit_a is None:
            return dict.fromkeys(ALL_PHASES, math.inf)
        if obs.phase_a is None:  # currents unknown: assume the worst
            return dict.fromkeys(ALL_PHASES, 0.0)
        volts = self.site.voltage_v
        margin_a = margin_kw * 1000 / (3 * volts)
        ev_a = dict.fromkeys(ALL_PHASES, 0.0)
        for device, view in obs.connectors.items():
            connector = self._by_device[device]
            if view.power_kw is None:
                continue
            amps = view.power_kw * 1000 / (volts * len(connector.phases))
            for phase in connector.phases:
                ev_a[phase] += amps
        # The measured currents include what the battery does now; count what it will do.
        battery_a = ((obs.battery_kw or 0.0) - battery_kw) * 1000 / (3 * volts)
        return {
            p: max(limit_a - margin_a - (obs.phase_a[p] - ev_a[p]) - battery_a, 0.0)
            for p in ALL_PHASES
        }

    def left_a(self, room_a: Mapping[Phase, float], kw: Mapping[str, float]) -> dict[Phase, float]:
        """The amps each phase still carries after the cars' shares."""
        volts = self.site.voltage_v
        left = dict(room_a)
        for device, power in kw.items():
            connector = self._by_device[device]
            amps = power * 1000 / (volts * len(connector.phases))
            for phase in connector.phases:
                left[phase] = max(left[phase] - amps, 0.0)
        return left

    def left_kw(self, room_a: Mapping[Phase, float], kw: Mapping[str, float]) -> float:
        """The balanced three-phase power the phases still carry after the cars' shares."""
        if self.site.phase_limit_a is None:
            return math.inf
        left = self.left_a(room_a, kw)
        return max(3 * self.site.voltage_v * min(left.values()) / 1000, 0.0)
