"""What the battery does each cycle: the cars first, then storing what they leave, then the plan.

Energy first: the battery covers what the cars want beyond the grid's room (peak shaving) and
stores the PV surplus; once the cars' shares are known it stores the grid room they leave
while storing pays, so that the next shortfall finds it full. Then cost: the time-of-use
planner's path (charge in cheap hours, discharge in dear ones), a discharge never beyond what
the site draws now. Within the rating, the SoC window and what the BMS allows; an unknown SoC
means no battery power.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from agent.control.observe import Observation
from agent.control.planner import Planner
from agent.control.site_model import SiteModel
from agent.control.sliding import SlidingMax

SOC_TAPER = 0.02  # power fades out over the last 2 % of SoC at either end of the window


class BatteryPolicy:
    def __init__(self, site: SiteModel, planner: Planner | None) -> None:
        self.site = site
        self.planner = planner  # replanned off the control path by whoever runs the strategy
        self.limits = site.battery_limits if site.battery is not None else None
        self.wall_now: datetime | None = None  # the last grid reading's time, for replans
        self._promised = SlidingMax(site.charger_delay_s)
        self._last_kw = 0.0
        self._cost_discharge_kw = 0.0  # the planner's discharge this cycle, in dear hours
        self._planned_charge_kw = 0.0  # the planner's charge this cycle

    def first_cut(
        self, obs: Observation, grid_room: float, wanted: float, non_controllable: float
    ) -> float:
        """+ discharge, - charge, before the cars' shares are known."""
        if self.limits is None or obs.battery_soc is None:
            return 0.0
        max_out, max_in = self.window(obs)
        planned = self._planned_kw(obs)
        self._planned_charge_kw = max(-planned, 0.0)  # from the grid: once the cars are served
        shave = wanted - grid_room
        self._cost_discharge_kw = 0.0 if self.storing_pays(obs) else max(planned, 0.0)
        if shave > 0:
            return min(max(shave, planned), max_out)
        surplus = -non_controllable - wanted  # PV the site and the cars do not use
        if surplus > 0:
            return -min(surplus, grid_room - wanted, max_in)
        if planned <= 0:
            return 0.0  # a planned charge waits for the cars' shares (`settle`)
        site_draw = non_controllable + obs.ev_kw()
        return min(planned, max_out, max(site_draw, 0.0))

    def covered_kw(self, battery_kw: float) -> float:
        """What the cars' budget may count on: a fading discharge will be lower by the time the
        chargers follow, so the budget counts it as it will be then."""
        fading = min(battery_kw - self._last_kw, 0.0) * (self.site.charger_delay_s + 2)
        self._last_kw = battery_kw
        return max(battery_kw + fading, 0.0) if battery_kw > 0 else battery_kw

    def settle(
        self,
        obs: Observation,
        battery_kw: float,
        grid_room: float,
        exposed_kw: float,
        site_draw_kw: float,
        room_left_kw: Callable[[], float],
    ) -> float:
        """The battery once the cars' limits are known (`exposed_kw`: what they may draw;
        `site_draw_kw`: what the site will draw, its own load net of PV and the cars not
        waiting for cheaper hours: those charge only from PV nothing else takes)."""
        phased = self.site.phase_limit_a is not None
        # Asked only where it decides (a discharge without a phase limit never stores): the
        # unused-PV look-ahead walks the plan, every cycle.
        storing = (
            (battery_kw <= 0 or phased)
            and self.storing_pays(obs)
            and not self._pv_needs_the_room(obs)
        )
        if battery_kw > 0 and not (storing and phased):
            # Discharge for what the cars may draw under the limits they hold, not for what
            # they were estimated to want, and for the plan no more than the site will draw:
            # the rest would be exported, or charge cars that can wait for cheaper hours.
            cost_kw = min(self._cost_discharge_kw, max(site_draw_kw, 0.0))
            needed = min(battery_kw, max(exposed_kw - grid_room, cost_kw))
            if not phased:
                return needed
            # The phases' room counted on the discharge: hand back only what they still carry.
            return max(needed, battery_kw - max(room_left_kw(), 0.0))
        # Storing from the grid takes only the room the cars' limits leave (on every phase):
        # all of it while storing pays (unless PV will want the room), else what the plan asks.
        if storing:
            wanted = math.inf
        elif battery_kw <= 0:
            wanted = self._planned_charge_kw + battery_kw
        else:
            return battery_kw
        if wanted <= 0:
            return battery_kw
        return battery_kw - max(min(room_left_kw(), self.window(obs)[1] + battery_kw, wanted), 0.0)

    def window(self, obs: Observation) -> tuple[float, float]:
        """(most discharge, most charge) in kW now; (0, 0) without a battery or its SoC.

        The least of the rating, the SoC window and what the BMS allows now (its current limits,
        its temperature window; nothing from a BMS that stopped answering). Tapered at both SoC
        ends: a battery that stops dead at a bound would leave the cars' share uncovered (or
        the PV unabsorbed) for the chargers' whole response delay.
        """
        limits = self.limits
        soc = obs.battery_soc
        if limits is None or soc is None:
            return 0.0, 0.0
        out = limits.max_discharge_kw * min(max((soc - limits.soc_min) / SOC_TAPER, 0.0), 1.0)
        into = limits.max_charge_kw * min(max((limits.soc_max - soc) / SOC_TAPER, 0.0), 1.0)
        return min(out, obs.bms.discharge_kw), min(into, obs.bms.charge_kw)

    def _pv_needs_the_room(self, obs: Observation) -> bool:
        """The plan sees PV it cannot use ahead: the grid then fills only what the plan asks."""
        planner = self.planner
        return planner is not None and obs.at is not None and planner.expects_unused_pv(obs.at)

    def storing_pays(self, obs: Observation) -> bool:
        planner = self.planner
        return planner is not None and obs.at is not None and planner.storing_pays(obs.at)

    def command(self, planned_kw: float, now: float) -> float:
        """What the battery is told: the most discharge promised to the cars in the last delay.

        The cars' budget counts `planned_kw` at once, but the chargers take the delay to follow
        a cut; so when the discharge is to fall, the battery keeps covering the old promise
        until the cars have been cut.
        """
        return self._promised.update(now, planned_kw)

    def _planned_kw(self, obs: Observation) -> float:
        """The planner's battery power for now (+ discharge), fed with this cycle's sample."""
        planner = self.planner
        if planner is None or obs.at is None or obs.grid_kw is None:
            return 0.0
        load = obs.grid_kw + (obs.battery_kw or 0.0) + (obs.pv_kw or 0.0)
        planner.record(obs.at, load, obs.pv_kw or 0.0)
        self.wall_now = obs.at
        planned = planner.planned_kw(obs.at)
        return 0.0 if planned is None else planned
